package web

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mcpcert/mcp_cert_exporter/collector"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
)

func get(t *testing.T, h http.Handler, encoding string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", encoding)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body := rec.Body.Bytes()
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip body: %v", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("gzip body: %v", err)
		}
	}
	return resp, string(body)
}

// series flattens families to "name{labels}" -> value.
func series(f metricstest.Families) map[string]float64 {
	out := map[string]float64{}
	for name := range f {
		for _, s := range f.Samples(name, nil) {
			keys := make([]string, 0, len(s.Labels))
			for k, v := range s.Labels {
				keys = append(keys, fmt.Sprintf("%s=%q", k, v))
			}
			sort.Strings(keys)
			out[name+"{"+strings.Join(keys, ",")+"}"] = s.Value
		}
	}
	return out
}

// metricsCollector runs a collector with an endpoint that serves a good
// chain, one that serves an expired leaf and a file group holding the CA,
// all refreshed once.
func metricsCollector(t *testing.T) *collector.Collector {
	t.Helper()
	caFile, good, expired := testpki.GoodAndExpired(t)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
interval: 1h
endpoints:
  - {name: good, address: %q, posture: false, tls_config: {ca_file: %q, server_name: good.test}}
  - {name: expired, address: %q, posture: false, tls_config: {ca_file: %q, server_name: expired.test}}
files:
  - {name: ca, paths: [%q]}
`, good, caFile, expired, caFile, caFile)), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	c := collector.New(slog.New(slog.DiscardHandler))
	if err := c.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Run(t.Context()); close(done) }() // t.Context ends before cleanups run
	t.Cleanup(func() { <-done })
	deadline := time.Now().Add(30 * time.Second)
	for c.Refreshes() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 3 refreshes", c.Refreshes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

// The handler serves what the collector writes, the same series whatever
// the encoding, and promtool finds nothing wrong with them.
func TestMetricsHandlerEncodings(t *testing.T) {
	c := metricsCollector(t)
	var plain bytes.Buffer
	if err := c.WriteMetrics(&plain, prometheus.NewRegistry(), time.Now()); err != nil {
		t.Fatal(err)
	}
	want := series(metricstest.Parse(t, plain.String()))
	h := MetricsHandler(c, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	for _, enc := range []string{"identity", "gzip"} {
		t.Run(enc, func(t *testing.T) {
			resp, text := get(t, h, enc)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != metrics.TextFormat {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if wantGzip := enc == "gzip"; (resp.Header.Get("Content-Encoding") == "gzip") != wantGzip {
				t.Fatalf("Content-Encoding %q for Accept-Encoding %s", resp.Header.Get("Content-Encoding"), enc)
			}
			got := series(metricstest.Parse(t, text))
			for k, v := range want {
				g, ok := got[k]
				switch {
				case !ok:
					t.Errorf("missing %s", k)
				case strings.HasPrefix(k, "ssl_certificate_expiry_seconds{"):
					if d := g - v; d > 1 || d < -1 {
						t.Errorf("%s = %v, want about %v", k, g, v)
					}
				case strings.HasPrefix(k, "mcp_cert_exporter_verify_cache_"):
					// The caches are the process's: any handshake in between moves them.
				case g != v:
					t.Errorf("%s = %v, want %v", k, g, v)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					t.Errorf("unexpected %s", k)
				}
			}
			tooltest.CheckMetrics(t, text)
		})
	}
}

// Families that the cached text and the gatherer both hold are written
// once, with one header.
func TestMetricsHandlerMergesGatheredFamilies(t *testing.T) {
	c := metricsCollector(t)
	extra := prometheus.NewRegistry()
	gathered := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.LastRun.Name, Help: metrics.LastRun.Help}, metrics.LastRun.Labels)
	gathered.WithLabelValues("from-gatherer").Set(7)
	extra.MustRegister(gathered)
	_, text := get(t, MetricsHandler(c, extra, slog.New(slog.DiscardHandler)), "identity")
	if n := strings.Count(text, "# TYPE ssl_probe_last_run_timestamp_seconds "); n != 1 {
		t.Fatalf("%d TYPE lines for a family both sides hold", n)
	}
	f := metricstest.Parse(t, text)
	if v := f.One(t, "ssl_probe_last_run_timestamp_seconds", map[string]string{"target": "from-gatherer"}); v != 7 {
		t.Errorf("gathered sample = %v", v)
	}
	if n := len(f.Samples("ssl_probe_last_run_timestamp_seconds", nil)); n != 4 {
		t.Errorf("%d last-run samples, want 3 targets and the gathered one", n)
	}
}

// blockingGatherer holds its first Gather until release is closed.
type blockingGatherer struct {
	started chan struct{}
	release chan struct{}
	mu      sync.Mutex
	calls   int
}

func (g *blockingGatherer) Gather() ([]*dto.MetricFamily, error) {
	g.mu.Lock()
	g.calls++
	first := g.calls == 1
	g.mu.Unlock()
	if first {
		close(g.started)
		<-g.release
	}
	return nil, nil
}

// Scrapes that arrive while one is being rendered wait for it and share its
// body, so the work does not grow with the number of scrapers.
func TestConcurrentScrapesShareOneRendering(t *testing.T) {
	c := metricsCollector(t)
	g := &blockingGatherer{started: make(chan struct{}), release: make(chan struct{})}
	h := MetricsHandler(c, g, slog.New(slog.DiscardHandler))
	const scrapers = 8
	bodies := make([]string, scrapers)
	var wg sync.WaitGroup
	for i := range scrapers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, bodies[i] = get(t, h, "gzip")
		}()
		if i == 0 {
			<-g.started
		}
	}
	for waitingInFlight() != scrapers-1 {
		time.Sleep(time.Millisecond) // bounded by the test's own timeout
	}
	close(g.release)
	wg.Wait()
	if g.calls != 1 {
		t.Fatalf("%d scrapers rendered %d times, want once", scrapers, g.calls)
	}
	for i := range bodies {
		if bodies[i] != bodies[0] || bodies[i] == "" {
			t.Fatalf("scraper %d got a different or empty body", i)
		}
	}
}

// waitingInFlight counts goroutines blocked in singleflight waiting for a
// rendering already under way.
func waitingInFlight() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("sync.(*WaitGroup).Wait")) && bytes.Contains(g, []byte("singleflight.(*Group).Do")) {
			n++
		}
	}
	return n
}

type failingSource struct{ err error }

func (f failingSource) WriteMetrics(io.Writer, prometheus.Gatherer, time.Time) error { return f.err }
func (f failingSource) GzipMetrics(prometheus.Gatherer, time.Time) ([]byte, error)   { return nil, f.err }

// A source that cannot write its metrics fails the scrape with its error,
// as a registry's gather error does, rather than serving part of them.
func TestMetricsHandlerReportsWriteError(t *testing.T) {
	h := MetricsHandler(failingSource{errors.New("rendering x: broken")}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	for _, enc := range []string{"identity", "gzip"} {
		resp, body := get(t, h, enc)
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "rendering x: broken") {
			t.Fatalf("%s: status %d, body %q", enc, resp.StatusCode, body)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                       false,
		"gzip":                   true,
		"GZIP":                   true,
		"identity":               false,
		"deflate, gzip;q=1.0, *": true,
		"gzip;q=0":               false,
		"gzip; q=0.5":            true,
		"zstd, br":               false,
		"x-gzip":                 false,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
