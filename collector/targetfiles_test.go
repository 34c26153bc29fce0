package collector

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// awaitScrape polls cond until it holds; the file watcher and the first
// probes run on their own goroutines.
func awaitScrape(t *testing.T, what string, cond func(metricstest.Families) error, c *Collector) metricstest.Families {
	t.Helper()
	var err error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		fams := scrape(t, c)
		if err = cond(fams); err == nil {
			return fams
		}
	}
	t.Fatalf("%s: %v", what, err)
	return nil
}

// probed lists the targets with an ssl_probe_success sample.
func probed(f metricstest.Families) []string {
	out := f.LabelValues("ssl_probe_success", "target", nil)
	slices.Sort(out)
	return out
}

func wantTargets(want ...string) func(metricstest.Families) error {
	slices.Sort(want)
	return func(f metricstest.Families) error {
		if got := probed(f); !slices.Equal(got, want) {
			return fmt.Errorf("probed %v, want %v", got, want)
		}
		return nil
	}
}

func wantGauge(name, path string, v float64) func(metricstest.Families) error {
	return func(f metricstest.Families) error {
		s := f.Samples(name, map[string]string{"path": path})
		if len(s) != 1 || s[0].Value != v {
			return fmt.Errorf("%s{path=%q} = %v, want %v", name, path, s, v)
		}
		return nil
	}
}

// write replaces path by rename, as docs/configuration.md asks of the tools
// that write file_sd files: os.WriteFile truncates first, and a watcher that
// reads the empty file in between sees a valid file with no targets.
func write(t *testing.T, path, text string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTargetFiles rewrites file_sd files under a running collector: targets
// come and go with the files, a file that stops parsing keeps its targets,
// and targets outside the module's guard are never dialled.
func TestTargetFiles(t *testing.T) {
	cfg := &tls.Config{Certificates: []tls.Certificate{testpki.NewCA("Root").Leaf("localhost").TLS()}}
	a, b := serveCounting(t, "127.0.0.1", cfg), serveCounting(t, "127.0.0.1", cfg)
	outside := serveCounting(t, "127.0.0.2", cfg)
	useFakeDNS(t, map[string]string{"rebind.test": "127.0.0.2"})
	rebind := "rebind.test:" + outside.port
	dir := t.TempDir()
	sd := filepath.Join(dir, "sd")
	if err := os.Mkdir(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	ya, jc := filepath.Join(sd, "a.yml"), filepath.Join(sd, "c.json")
	write(t, ya, "- targets: ['"+a.addr+"']\n")
	c := startCollector(t, `
interval: 1h
modules:
  tls:
    allowed_targets: {hosts: [rebind.test], cidrs: [127.0.0.1/32]}
  other:
    allowed_targets: {cidrs: [127.0.0.1/32]}
target_files:
  - files: ["`+sd+`/*.yml", "`+sd+`/*.json"]
    module: tls
    refresh_interval: 50ms
`)
	if got := len(c.Config().Endpoints); got != 1 {
		t.Errorf("after Apply, %d endpoints, want the file's 1 at once", got)
	}
	awaitScrape(t, "first file", wantTargets(a.addr), c)
	awaitScrape(t, "load metric", wantGauge("mcp_cert_exporter_target_file_last_load_successful", ya, 1), c)

	write(t, ya, "- targets: ['"+a.addr+"', '"+b.addr+"']\n  labels: {team: x}\n")
	awaitScrape(t, "file rewritten", wantTargets(a.addr, b.addr), c)
	awaitScrape(t, "target count", wantGauge("mcp_cert_exporter_target_file_targets", ya, 2), c)

	write(t, ya, "- targets: ['"+a.addr+"'\n") // broken YAML: the previous targets stay
	awaitScrape(t, "bad file flagged", wantGauge("mcp_cert_exporter_target_file_last_load_successful", ya, 0), c)
	awaitScrape(t, "bad file keeps its targets", wantTargets(a.addr, b.addr), c)

	// JSON, a module per group, and targets that cost only themselves.
	write(t, jc, `[{"targets": ["`+outside.addr+`", "no-port", "`+rebind+`"]},
	               {"targets": ["127.0.0.1:1", "127.0.0.1:1"], "labels": {"__param_module": "other"}},
	               {"targets": ["127.0.0.1:2"], "labels": {"__param_module": "missing"}}]`)
	awaitScrape(t, "rejected targets", wantGauge("mcp_cert_exporter_target_file_rejected_targets", jc, 4), c)
	fams := awaitScrape(t, "json file", wantTargets(a.addr, b.addr, "127.0.0.1:1", rebind), c)
	// Allowed by name, it resolves outside the cidrs: never dialled.
	fams.One(t, "ssl_probe_error_info", map[string]string{"target": rebind, "reason": "DNS_FAILURE"})

	if err := os.Remove(ya); err != nil {
		t.Fatal(err)
	}
	fams = awaitScrape(t, "file removed", wantTargets("127.0.0.1:1", rebind), c)
	fams.Absent(t, "mcp_cert_exporter_target_file_last_load_successful", map[string]string{"path": ya})
	if n := outside.accepts.Load(); n != 0 {
		t.Errorf("%d connections to a target outside allowed_targets", n)
	}
}
