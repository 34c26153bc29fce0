package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

// probeJobs scrape /probe as the multi-target exporter guide relabels,
// with hashmod splitting the file_sd targets between two exporters: one job
// per exporter (shardJob), each keeping its share.
const probeJobs = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
%s`

const shardJob = `  - job_name: mcp_probe_%[1]d
    metrics_path: /probe
    params: {module: [tls]}
    file_sd_configs: [{files: [%[2]q], refresh_interval: 1s}]
    relabel_configs:
      - {source_labels: [__address__], target_label: __param_target}
      - {source_labels: [__param_target], target_label: instance}
      - {source_labels: [__param_target], modulus: 2, target_label: __tmp_shard, action: hashmod}
      - {source_labels: [__tmp_shard], regex: "%[1]d", action: keep}
      - {target_label: __address__, replacement: %[3]q}
`

// handshakeCounter is a TLS server on 127.0.0.1 that counts completed
// handshakes.
type handshakeCounter struct {
	addr string
	n    atomic.Int64
}

func serveHandshakes(t *testing.T, cfg *tls.Config) *handshakeCounter {
	t.Helper()
	h := &handshakeCounter{}
	h.addr = testpki.ServeRaw(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if tc.Handshake() == nil {
			h.n.Add(1)
			_, _ = io.Copy(io.Discard, tc)
		}
	})
	return h
}

var probingLine = regexp.MustCompile(`msg=probing .*?target=(\S+)`)

// probedTargets are the targets an exporter's debug log says it probed.
func (e *exporter) probedTargets() map[string]bool {
	out := map[string]bool{}
	for _, m := range probingLine.FindAllStringSubmatch(e.logs.String(), -1) {
		out[m[1]] = true
	}
	return out
}

// TestProbeShardedByPrometheus runs the multi-target pattern for real: a
// Prometheus discovers targets in a file_sd file, relabels them into
// /probe requests and splits them by hashmod between two exporters. Each
// target is probed by exactly one exporter, every target is probed, and a
// target added to the file later is picked up.
func TestProbeShardedByPrometheus(t *testing.T) {
	promBin := tooltest.Require(t, "prometheus")
	ca := testpki.NewCA("Root")
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{ca.Leaf("localhost").TLS()}}
	servers := map[string]*handshakeCounter{}
	for range 16 {
		s := serveHandshakes(t, tlsCfg)
		servers[s.addr] = s
	}
	dir := t.TempDir()
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM())
	cfg := writeConfig(t, filepath.Join(dir, "exporter.yml"), fmt.Sprintf(`
modules:
  tls:
    timeout: 5s
    tls_config: {ca_file: %q, server_name: localhost}
    allowed_targets: {cidrs: [127.0.0.1/32]}
`, caFile))
	exporters := []*exporter{startExporter(t, "--config.file="+cfg), startExporter(t, "--config.file="+cfg)}

	sd := filepath.Join(dir, "targets.yml")
	writeSD := func(addrs []string) {
		writeConfig(t, sd+".tmp", "- targets: ['"+strings.Join(addrs, "', '")+"']\n")
		if err := os.Rename(sd+".tmp", sd); err != nil { // Prometheus must never read half a file
			t.Fatal(err)
		}
	}
	addrs := slices.Sorted(maps.Keys(servers))
	writeSD(addrs[:len(addrs)-1])
	var jobs strings.Builder
	for i, e := range exporters {
		fmt.Fprintf(&jobs, shardJob, i, sd, e.addr)
	}
	promCfg := writeConfig(t, filepath.Join(dir, "prometheus.yml"), fmt.Sprintf(probeJobs, jobs.String()))
	prom := &stackProm{config: promCfg}
	prom.start(t, promBin)

	// Every target is up, verified, and reported under its own name as
	// the target label, by one job only; then so is one added to the file.
	awaitVerified(t, prom, addrs[:len(addrs)-1])
	writeSD(addrs)
	awaitVerified(t, prom, addrs)
	// Let a few more scrapes land on each exporter before comparing.
	before := exporters[0].probedCount() + exporters[1].probedCount()
	eventually(t, "more probes", func() bool { return exporters[0].probedCount()+exporters[1].probedCount() >= before+2*len(addrs) })

	seen := map[string]int{}
	for i, e := range exporters {
		mine := e.probedTargets()
		if len(mine) == 0 {
			t.Errorf("exporter %d probed nothing: hashmod should split %d targets", i, len(addrs))
		}
		for a := range mine {
			seen[a]++
		}
	}
	for _, a := range addrs {
		if seen[a] != 1 {
			t.Errorf("target %s probed by %d exporters, want exactly 1", a, seen[a])
		}
		if servers[a].n.Load() == 0 {
			t.Errorf("server %s saw no handshake", a)
		}
	}
	if len(seen) != len(addrs) {
		t.Errorf("exporters probed %d distinct targets, want %d", len(seen), len(addrs))
	}
	// Handshakes at the servers match probes at the exporters: none probes
	// twice (the probes logged catch up with every handshake counted, the
	// logs arriving through a pipe), and no probe is served from a cache
	// (every probe logged has its handshake, but those still in flight).
	probes := func() (n int64) {
		for _, e := range exporters {
			n += int64(e.probedCount())
		}
		return n
	}
	handshakes := func() (n int64) {
		for _, s := range servers {
			n += s.n.Load()
		}
		return n
	}
	h := handshakes()
	eventually(t, fmt.Sprintf("the exporters logging a probe for each of %d handshakes", h), func() bool { return probes() >= h })
	if p, h := probes(), handshakes(); p > h+int64(len(addrs)) {
		t.Errorf("%d probes logged but %d handshakes at the servers: more than one in flight per target", p, h)
	}
}

// probedCount is how many probes the exporter has logged.
func (e *exporter) probedCount() int {
	return len(probingLine.FindAllStringIndex(e.logs.String(), -1))
}

// awaitVerified waits until exactly addrs are reported verified, each by
// one job, with the target label equal to the instance label.
func awaitVerified(t *testing.T, prom *stackProm, addrs []string) {
	t.Helper()
	const query = `count by (instance) (ssl_certificate_verified == 1 and on (instance, target) label_replace(up, "target", "$1", "instance", "(.*)"))`
	await(t, fmt.Sprintf("%d targets verified through Prometheus", len(addrs)), func() error {
		v, err := prom.query(query)
		if err != nil {
			return err
		}
		got := map[string]model.SampleValue{}
		for _, s := range v.(model.Vector) {
			got[string(s.Metric["instance"])] = s.Value
		}
		for _, a := range addrs {
			if got[a] != 1 {
				return fmt.Errorf("%s is reported verified by %v jobs, want 1 (all: %v)", a, got[a], got)
			}
		}
		if len(got) != len(addrs) {
			return fmt.Errorf("%d targets verified, want %d: %v", len(got), len(addrs), got)
		}
		return nil
	})
}
