package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

func startCollector(t *testing.T, yml string) *Collector {
	t.Helper()
	cfg, err := config.Parse([]byte(yml), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	return runCollector(t, cfg)
}

func runCollector(t *testing.T, cfg *config.Config, opts ...Option) *Collector {
	t.Helper()
	c := New(slog.New(slog.DiscardHandler), opts...)
	if err := c.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// storeResult keeps r and its text as an endpoint target's refresh does,
// but not the posture text, which a refresh renders too: the benchmarks
// built on it measured that shape before the targets were rewritten.
func storeResult(t *target, r *probe.TLSResult) {
	t.kind.(*endpoint).res.last.Store(r)
	t.out.store(&t.out.result, t.kind.renderResult(time.Now()))
}

// scrape reads /metrics as main serves it to Prometheus: web.MetricsHandler
// adds only HTTP to what GzipMetrics writes (and WriteMetrics for clients
// that do not take gzip, the same text: metrics.TestGzipWritesWhatWriteWrites).
func scrape(t *testing.T, c *Collector) metricstest.Families {
	t.Helper()
	return metricstest.Parse(t, scrapeText(t, c))
}

func scrapeText(t *testing.T, c *Collector) string {
	t.Helper()
	body, err := c.GzipMetrics(prometheus.NewRegistry(), time.Now())
	if err != nil {
		t.Fatalf("/metrics would fail: %v", err)
	}
	text, err := gunzip(body)
	if err != nil {
		t.Fatalf("reading the gzip body: %v", err)
	}
	return string(text)
}

// gunzip reads a gzip body through, which checks its CRC and length.
func gunzip(body []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// A result whose metrics could not be rendered fails the scrape, as a
// registry's gather error does, rather than silently dropping the target.
func TestWriteMetricsReportsRenderError(t *testing.T) {
	c, _ := mixedCollector(t)
	c.targets[0].out.store(&c.targets[0].out.result, metrics.Failed(fmt.Errorf("rendering x: broken")))
	err := c.WriteMetrics(io.Discard, prometheus.NewRegistry(), time.Now())
	_, gzErr := c.GzipMetrics(prometheus.NewRegistry(), time.Now())
	for _, err := range []error{err, gzErr} {
		if err == nil || !strings.Contains(err.Error(), "rendering x: broken") {
			t.Fatalf("err = %v", err)
		}
	}
}

// Nothing a file group renders is lost to the text cache's line handling:
// a file name with a newline and quotes survives escaping.
func TestScrapeEscapesLabels(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd \"name\"\nwith newline.pem")
	if err := os.WriteFile(odd, testpki.NewCA("Root").PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, "interval: 1h\nfiles:\n  - {name: f, paths: [\""+dir+"/*.pem\"]}\n")
	eventually(t, "file read", func() bool { return c.Refreshes() == 1 })
	f := scrape(t, c)
	f.One(t, "ssl_certificate_expiry_seconds", map[string]string{"path": odd})
	f.One(t, "ssl_certificate_info", map[string]string{"path": odd, "role": probe.RoleRoot})
}

// A label value cut at limits.label_length is reported, not only marked in
// the value: the exporter's counter rises with each rendering that cut.
func TestLabelCutsAreCounted(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("a", 80)+".pem")
	testpki.WriteFile(t, dir, filepath.Base(long), testpki.NewCA("Root").PEM())
	c := startCollector(t, "interval: 1h\nlimits: {label_length: 64}\nfiles:\n  - {name: f, paths: [\""+dir+"/*.pem\"]}\n")
	t.Cleanup(func() { metrics.SetLabelLength(config.DefaultLimits.LabelLength) })
	eventually(t, "file read", func() bool { return c.Refreshes() == 1 })
	f := scrape(t, c)
	paths := f.LabelValues("ssl_certificate_info", "path", nil)
	if len(paths) != 1 || !strings.HasSuffix(paths[0], "…(cut)") || len(paths[0]) > 64 {
		t.Fatalf("path labels %q, want one cut to 64 bytes", paths)
	}
	if n := f.One(t, "mcp_cert_exporter_label_values_cut_total", nil); n < 1 {
		t.Errorf("mcp_cert_exporter_label_values_cut_total = %v after a cut", n)
	}
}

// mixedCollector has an endpoint that sends a chain, one that refuses, a
// file group with a good file, a broken one and a glob that matches
// nothing, and a trust store, all refreshed once. It returns the files' directory.
func mixedCollector(t *testing.T) (*Collector, string) {
	t.Helper()
	root := testpki.NewCA("Root")
	inter := root.Intermediate("Inter")
	good := testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{inter.Leaf("good").TLS(inter)}})
	dir := t.TempDir()
	caFile := testpki.WriteFile(t, dir, "ca.pem", root.PEM())
	testpki.WriteFile(t, dir, "certs/ok.pem", testpki.Bundle(inter.Leaf("file-ok"), inter))
	testpki.WriteFile(t, dir, "certs/broken.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	c := startCollector(t, `
interval: 1h
endpoints:
  - {name: good, address: "`+good+`", posture: false, tls_config: {ca_file: "`+caFile+`", server_name: localhost}}
  - {name: refused, address: "127.0.0.1:1", timeout: 2s, posture: false}
files:
  - {name: certs, paths: ["`+dir+`/certs/*.pem", "`+dir+`/missing/*.pem"]}
  - {name: roots, paths: ["`+caFile+`"], trust_store: true}
`)
	// Posture is off so that no scan lands between two scrapes a test compares.
	eventually(t, "all four targets refreshed", func() bool { return c.Refreshes() == 4 })
	return c, dir
}

// One broken endpoint and one broken file never hide the others.
func TestBrokenTargetsDoNotHideOthers(t *testing.T) {
	c, dir := mixedCollector(t)
	f := scrape(t, c)
	if v := f.One(t, "ssl_certificate_verified", map[string]string{"target": "good"}); v != 1 {
		t.Errorf("good verified = %v", v)
	}
	f.One(t, "ssl_probe_error_info", map[string]string{"target": "refused", "reason": "CONNECTION_REFUSED"})
	f.One(t, "ssl_certificate_expiry_seconds", map[string]string{"target": "certs", "subject_cn": "file-ok", "source": "file"})
	// A trust store's roots are told apart from the roots a served chain
	// depends on, which count under the endpoint.
	f.One(t, "ssl_certificate_expiry_seconds", map[string]string{"target": "roots", "subject_cn": "Root", "source": "trust_store", "role": "root"})
	f.One(t, "ssl_certificate_expiry_seconds", map[string]string{"target": "good", "subject_cn": "Root", "source": "endpoint", "role": "root"})
	f.One(t, "ssl_file_error_info", map[string]string{"target": "certs", "reason": "PARSE_ERROR", "path": filepath.Join(dir, "certs/broken.pem")})
	f.One(t, "ssl_file_error_info", map[string]string{"target": "certs", "reason": "NO_MATCH"})
	f.Absent(t, "ssl_certificate_verified", map[string]string{"target": "refused"})
	if v := f.One(t, "mcp_cert_exporter_targets", map[string]string{"kind": "endpoint"}); v != 2 {
		t.Errorf("endpoint targets = %v", v)
	}
}

// The countdown is computed at scrape time from the cached NotAfter.
func TestExpiryCountsDownBetweenScrapes(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA("Root")
	testpki.WriteFile(t, dir, "a.pem", ca.PEM())
	c := startCollector(t, "interval: 1h\nfiles:\n  - {name: f, paths: [\""+dir+"/a.pem\"]}\n")
	eventually(t, "file read", func() bool { return c.Refreshes() == 1 })
	first := scrape(t, c).One(t, "ssl_certificate_expiry_seconds", nil)
	time.Sleep(20 * time.Millisecond)
	second := scrape(t, c).One(t, "ssl_certificate_expiry_seconds", nil)
	if !(second < first) {
		t.Fatalf("expiry did not count down between scrapes: %v then %v", first, second)
	}
	want := time.Until(ca.Cert.NotAfter).Seconds()
	if d := second - want; d > 1 || d < -1 {
		t.Fatalf("expiry %v, want about %v", second, want)
	}
}

// Apply keeps cached results for unchanged targets and drops removed ones.
func TestApplyKeepsUnchangedResults(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA("Root")
	testpki.WriteFile(t, dir, "a.pem", ca.PEM())
	yml := "interval: 1h\nfiles:\n  - {name: f, paths: [\"" + dir + "/a.pem\"]}\n"
	c := startCollector(t, yml)
	var run float64
	eventually(t, "first read", func() bool {
		s := scrape(t, c).Samples("ssl_probe_last_run_timestamp_seconds", map[string]string{"target": "f"})
		if len(s) == 1 {
			run = s[0].Value
		}
		return len(s) == 1
	})
	cfg, err := config.Parse([]byte(yml+"  - {name: g, paths: [\""+dir+"/a.pem\"]}\n"), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	f := scrape(t, c)
	if v := f.One(t, "ssl_probe_last_run_timestamp_seconds", map[string]string{"target": "f"}); v != run {
		t.Errorf("unchanged target was refreshed or lost its result: %v -> %v", run, v)
	}
	eventually(t, "new target read at once", func() bool {
		return len(scrape(t, c).Samples("ssl_probe_last_run_timestamp_seconds", map[string]string{"target": "g"})) == 1
	})
	cfg, _ = config.Parse([]byte("interval: 1h\n"), "test.yml")
	if err := c.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	scrape(t, c).Absent(t, "ssl_probe_last_run_timestamp_seconds", nil)
}

// /metrics of a real collector passes client_golang's own lint.
func TestMetricsLint(t *testing.T) {
	dir := t.TempDir()
	testpki.WriteFile(t, dir, "a.pem", testpki.NewCA("Root").PEM())
	c := startCollector(t, "interval: 1h\nendpoints:\n  - {name: r, address: \"127.0.0.1:1\"}\nfiles:\n  - {name: f, paths: [\""+dir+"/a.pem\"]}\n")
	eventually(t, "both refreshed", func() bool {
		return len(scrape(t, c).Samples("ssl_probe_last_run_timestamp_seconds", nil)) == 2
	})
	problems, err := promlint.New(strings.NewReader(scrapeText(t, c))).Lint()
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("lint problems: %v", problems)
	}
	_ = os.Remove(dir)
}

// /metrics, the targets' cached text and the exporter's own metrics
// rendered at scrape time, is line for line what a registry writes for the
// same samples: parsed, gathered (which sorts each family's series) and
// encoded again by expfmt. The exporter's own families keep a registry's
// order too; the targets' series come in config order, not sorted.
func TestMetricsAreWhatARegistryWrites(t *testing.T) {
	c, _ := mixedCollector(t)
	c.self.observe("posture", time.Now(), false) // a second kind and result
	c.self.reloaded(true, time.Now())
	c.ondemand.requests.inc("tls", probeDenied)
	c.ondemand.requests.inc("", probeBadRequest)
	text := scrapeText(t, c)
	p := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	gathered, err := prometheus.Gatherers{prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return slices.Collect(maps.Values(parsed)), nil
	})}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for _, mf := range gathered {
		if _, err := expfmt.MetricFamilyToText(&want, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"mcp_cert_exporter_refresh_duration_seconds", "mcp_cert_exporter_refreshes_total",
		"mcp_cert_exporter_probe_requests_total", "ssl_certificate_info"} {
		if parsed[name] == nil {
			t.Fatalf("no %s in the scrape", name)
		}
	}
	if got, exp := sortedLines(text), sortedLines(want.String()); !slices.Equal(got, exp) {
		for i := range min(len(got), len(exp)) {
			if got[i] != exp[i] {
				t.Fatalf("sorted line %d:\n got %q\nwant %q", i+1, got[i], exp[i])
			}
		}
		t.Fatalf("%d lines, want %d", len(got), len(exp))
	}
	for name := range parsed {
		if !strings.HasPrefix(name, "mcp_cert_exporter_") {
			continue
		}
		if got, exp := familyLines(text, name), familyLines(want.String(), name); !slices.Equal(got, exp) {
			t.Errorf("%s:\n got %q\nwant %q", name, got, exp)
		}
	}
}

func sortedLines(text string) []string {
	return slices.Sorted(slices.Values(strings.Split(text, "\n")))
}

// familyLines are the samples of one family, in the order written.
func familyLines(text, name string) []string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (rest == "" || strings.ContainsAny(rest[:1], "_{ ")) {
			out = append(out, line)
		}
	}
	return out
}
