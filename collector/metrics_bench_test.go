package collector

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
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
	for _, j := range c.endpoints {
		j.store(&probe.TLSResult{
			Time: time.Now(), Success: true, Verified: true, Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256,
			Phases:       probe.Phases{Connect: 100 * time.Microsecond, Handshake: 700 * time.Microsecond},
			Certificates: certs,
		})
	}
	return c
}

var benchSizes = []int{1000, 10000}

// BenchmarkScrape is a whole /metrics request as main serves it, as
// Prometheus (gzip) and curl (identity) send it.
func BenchmarkScrape(b *testing.B) {
	for _, n := range benchSizes {
		for _, enc := range []string{"identity", "gzip"} {
			b.Run(fmt.Sprintf("endpoints=%d/encoding=%s", n, enc), func(b *testing.B) {
				c := cachedCollector(b, n)
				benchHandler(b, n, enc, c.MetricsHandler(prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
			})
		}
	}
}

// BenchmarkStore is what each endpoint refresh spends rendering its metrics.
func BenchmarkStore(b *testing.B) {
	c := cachedCollector(b, 1)
	j, res := c.endpoints[0], c.endpoints[0].last.Load()
	b.ReportAllocs()
	cpu := cpuSince(b)
	for b.Loop() {
		j.store(res)
	}
	perUnit(b, 1, cpu(), "endpoint")
}

func benchHandler(b *testing.B, n int, enc string, h http.Handler) {
	b.ReportAllocs()
	var size int
	cpu := cpuSince(b)
	for b.Loop() {
		size = scrapeOnce(b, h, enc)
	}
	perUnit(b, n, cpu(), "endpoint")
	b.ReportMetric(float64(size), "bytes")
}

func scrapeOnce(b *testing.B, h http.Handler, enc string) int {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", enc)
	w := &countingWriter{header: http.Header{}, code: http.StatusOK}
	h.ServeHTTP(w, req)
	if w.code != http.StatusOK {
		b.Fatalf("status %d", w.code)
	}
	return w.n
}

// countingWriter is a ResponseWriter that keeps nothing, so that the
// benchmark measures the handler rather than a recorder's buffer.
type countingWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *countingWriter) Header() http.Header  { return w.header }
func (w *countingWriter) WriteHeader(code int) { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
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
			j := c.files[0]
			j.run(context.Background())
			b.ReportAllocs()
			cpu := cpuSince(b)
			for b.Loop() {
				if !rescan {
					j.reader = certfile.NewFileReader()
				}
				j.run(context.Background())
			}
			perUnit(b, n, cpu(), "file")
			if got := len(j.last.Load().Files); got != n {
				b.Fatalf("%d files in the result, want %d", got, n)
			}
		})
	}
}
