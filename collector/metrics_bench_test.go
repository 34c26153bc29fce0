package collector

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// cachedCollector is a collector of n endpoints whose results are already
// cached, as after a refresh: the shape of a scrape at scale.
func cachedCollector(tb testing.TB, n int) *Collector {
	tb.Helper()
	ca := testpki.NewCA("Bench Root")
	leaf := ca.Leaf("localhost")
	certs := []probe.CertInfo{probe.CertInfoOf(leaf.Cert, probe.RoleLeaf), probe.CertInfoOf(ca.Cert, probe.RoleRoot)}
	var yml strings.Builder
	yml.WriteString("interval: 1h\nendpoints:\n")
	for i := range n {
		fmt.Fprintf(&yml, "  - {name: mcp-%05d, address: \"127.0.0.1:%d\"}\n", i, 1+i%60000)
	}
	cfg, err := config.Parse([]byte(yml.String()), "bench.yml")
	if err != nil {
		tb.Fatal(err)
	}
	c := New(slog.New(slog.DiscardHandler))
	if err := c.Apply(cfg); err != nil {
		tb.Fatal(err)
	}
	for _, t := range c.targets {
		storeResult(t, &probe.TLSResult{
			Time: time.Now(), Success: true, Verified: true, Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256,
			Phases:       probe.Phases{Connect: 100 * time.Microsecond, Handshake: 700 * time.Microsecond},
			Certificates: certs,
		})
	}
	return c
}

var benchSizes = []int{1000, 10000}

// BenchmarkScrape is the body of a /metrics answer, as web.MetricsHandler
// gets it for Prometheus (gzip, from the collector's segment cache) and
// curl (identity, into a buffer sized by the last body); the handler adds
// only headers. Between two scrapes a twentieth of the endpoints store a
// new result, as at a 5-minute interval and a 15-second scrape interval;
// only the scrape is timed.
func BenchmarkScrape(b *testing.B) {
	for _, n := range benchSizes {
		for _, enc := range []string{"identity", "gzip"} {
			b.Run(fmt.Sprintf("endpoints=%d/encoding=%s", n, enc), func(b *testing.B) {
				benchScrape(b, n, enc == "gzip", cachedCollector(b, n))
			})
		}
	}
}

// BenchmarkStore is what each endpoint refresh spends rendering the
// probe's result; BenchmarkRender adds the posture text, which a refresh
// renders too.
func BenchmarkStore(b *testing.B) {
	benchRender(b, func(t *target) { t.out.store(&t.out.result, t.kind.renderResult(time.Now())) })
}

func BenchmarkRender(b *testing.B) { benchRender(b, func(t *target) { t.render(true) }) }

func benchRender(b *testing.B, render func(*target)) {
	t := cachedCollector(b, 1).targets[0]
	b.ReportAllocs()
	cpu := cpuSince(b)
	for b.Loop() {
		render(t)
	}
	perUnit(b, 1, cpu(), "endpoint")
}

func benchScrape(b *testing.B, n int, gz bool, c *Collector) {
	b.ReportAllocs()
	reg, size, next := prometheus.NewRegistry(), 0, 0
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		for range n / 20 {
			t := c.targets[next%n]
			t.out.store(&t.out.result, t.kind.renderResult(time.Now()))
			next++
		}
		start := processCPU(b)
		b.StartTimer()
		if gz {
			body, err := c.GzipMetrics(reg, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			size = len(body)
		} else {
			var out bytes.Buffer
			out.Grow(size)
			if err := c.WriteMetrics(&out, reg, time.Now()); err != nil {
				b.Fatal(err)
			}
			size = out.Len()
		}
		cpu += processCPU(b) - start
	}
	perUnit(b, n, cpu, "endpoint")
	b.ReportMetric(float64(size), "bytes")
}

// perUnit reports wall and CPU time per endpoint or file. With two cores
// shared with other work, CPU time is the steadier of the two.
func perUnit(b *testing.B, n int, cpu time.Duration, unit string) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/"+unit)
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/"+unit)
}

// cpuSince returns a function that tells the process CPU time spent since.
func cpuSince(b *testing.B) func() time.Duration {
	start := processCPU(b)
	return func() time.Duration { return processCPU(b) - start }
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFileGroupRefresh is one refresh of a group of certificate
// files, read and rendered: the first, and a rescan when nothing changed.
func BenchmarkFileGroupRefresh(b *testing.B) {
	const n = 10000
	dir := b.TempDir()
	ca := testpki.NewCA("Bench Root")
	bundle := testpki.Bundle(ca.Leaf("localhost"), ca)
	old := time.Now().Add(-time.Hour) // past the reader's racy window, so it may cache
	for i := range n {
		p := testpki.WriteFile(b, dir, fmt.Sprintf("%03d/%d.pem", i%100, i), bundle)
		if err := os.Chtimes(p, old, old); err != nil {
			b.Fatal(err)
		}
	}
	cfg, err := config.Parse([]byte("files:\n  - {name: certs, paths: [\""+dir+"/**/*.pem\"]}\n"), "bench.yml")
	if err != nil {
		b.Fatal(err)
	}
	for _, rescan := range []bool{false, true} {
		b.Run(fmt.Sprintf("files=%d/rescan=%v", n, rescan), func(b *testing.B) {
			c := New(slog.New(slog.DiscardHandler))
			if err := c.Apply(cfg); err != nil {
				b.Fatal(err)
			}
			j := c.targets[0]
			f := j.kind.(*fileGroup)
			j.refresh(context.Background())
			b.ReportAllocs()
			cpu := cpuSince(b)
			for b.Loop() {
				if !rescan {
					f.reader = certfile.NewFileReader()
				}
				j.refresh(context.Background())
			}
			perUnit(b, n, cpu(), "file")
			if got := len(f.res.last.Load().Files); got != n {
				b.Fatalf("%d files in the result, want %d", got, n)
			}
		})
	}
}
