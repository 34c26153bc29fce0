package collector

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// BenchmarkCollect is the collector's share of a scrape, per endpoint.
func BenchmarkCollect(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			c := cachedCollector(b, n)
			ch := make(chan prometheus.Metric, 1024)
			done := make(chan int)
			go func() {
				k := 0
				for range ch {
					k++
				}
				done <- k
			}()
			b.ReportAllocs()
			cpu := cpuSince(b)
			for b.Loop() {
				c.Collect(ch)
			}
			perEndpoint(b, n, cpu())
			close(ch)
			<-done
		})
	}
}

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

// BenchmarkScrapeConstMetrics is the same request served by promhttp from
// Collect, the path MetricsHandler replaces, for comparison.
func BenchmarkScrapeConstMetrics(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("endpoints=%d/encoding=gzip", n), func(b *testing.B) {
			c := cachedCollector(b, n)
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			benchHandler(b, n, "gzip", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		})
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
	perEndpoint(b, 1, cpu())
}

func benchHandler(b *testing.B, n int, enc string, h http.Handler) {
	b.ReportAllocs()
	var size int
	cpu := cpuSince(b)
	for b.Loop() {
		size = scrapeOnce(b, h, enc)
	}
	perEndpoint(b, n, cpu())
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

// perEndpoint reports wall and CPU time per endpoint. With two cores shared
// with other work, CPU time is the steadier of the two.
func perEndpoint(b *testing.B, n int, cpu time.Duration) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/endpoint")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/endpoint")
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
