package collector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// postureWorld is a set of real TLS servers on 127.0.0.1 with one CA.
type postureWorld struct {
	dir      string
	caFile   string
	ca       *testpki.Cert
	leaf     *testpki.Cert
	client   [2]string // cert_file, key_file
	clientCA *testpki.Cert
}

func newPostureWorld(t *testing.T) *postureWorld {
	dir := t.TempDir()
	ca := testpki.NewCA("Posture CA")
	clientCA := testpki.NewCA("Posture Client CA")
	client := clientCA.Issue(testpki.Options{CN: "exporter", Client: true})
	return &postureWorld{
		dir: dir, ca: ca, clientCA: clientCA,
		caFile: testpki.WriteFile(t, dir, "ca.pem", ca.PEM()),
		leaf:   ca.Issue(testpki.Options{NotAfter: time.Now().Add(30 * 24 * time.Hour)}),
		client: [2]string{testpki.WriteFile(t, dir, "client.crt", client.PEM()), testpki.WriteFile(t, dir, "client.key", client.KeyPEM())},
	}
}

func (w *postureWorld) serve(t *testing.T, mod func(*tls.Config)) string {
	cfg := &tls.Config{Certificates: []tls.Certificate{w.leaf.TLS()}}
	if mod != nil {
		mod(cfg)
	}
	return testpki.Serve(t, cfg)
}

func (w *postureWorld) endpoint(name, addr string) config.Endpoint {
	return config.Endpoint{Name: name, Address: addr, TLSConfig: config.TLSConfig{CAFile: w.caFile}}
}

// refreshAll runs every job of the collector once, endpoints first, in this
// goroutine: the scheduler's timing is tested elsewhere.
func refreshAll(t *testing.T, c *Collector) {
	t.Helper()
	ctx := context.Background()
	c.mu.RLock()
	targets := c.targets
	c.mu.RUnlock()
	for _, t := range targets {
		t.refresh(ctx)
	}
	for _, j := range scanJobs(c) {
		j.run(ctx)
	}
}

func applyConfig(t *testing.T, c *Collector, cfg *config.Config) {
	t.Helper()
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(cfg); err != nil {
		t.Fatal(err)
	}
}

func TestPostureMetrics(t *testing.T) {
	w := newPostureWorld(t)
	off := false
	legacy := w.endpoint("legacy", w.serve(t, func(c *tls.Config) {
		c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS12
	}))
	mtls := w.endpoint("mtls", w.serve(t, func(c *tls.Config) {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, testpki.Pool(w.clientCA)
	}))
	mtls.TLSConfig.CertFile, mtls.TLSConfig.KeyFile = w.client[0], w.client[1]
	optional := w.endpoint("optional", w.serve(t, func(c *tls.Config) {
		c.ClientAuth, c.ClientCAs = tls.VerifyClientCertIfGiven, testpki.Pool(w.clientCA)
	}))
	optional.TLSConfig.CertFile, optional.TLSConfig.KeyFile = w.client[0], w.client[1]
	pinned := w.endpoint("pinned", w.serve(t, nil))
	pinned.PinSHA256 = []string{spkiPin(testpki.NewCA("Not ours"))}
	caPinned := w.endpoint("ca-pinned", pinned.Address)
	caPinned.PinSHA256 = []string{spkiPin(w.ca)}
	quiet := w.endpoint("quiet", legacy.Address)
	quiet.Posture, quiet.PinSHA256 = &off, caPinned.PinSHA256
	hsts := config.Endpoint{Name: "hsts", URL: serveHSTS(t, w), TLSConfig: config.TLSConfig{CAFile: w.caFile}}

	c := New(slog.New(slog.DiscardHandler))
	applyConfig(t, c, &config.Config{Endpoints: []config.Endpoint{legacy, mtls, optional, pinned, caPinned, quiet, hsts}})
	refreshAll(t, c)
	f := scrape(t, c)
	// Posture metrics are kept as text when results are stored, not rendered
	// at scrape time: the text must pass promtool as a whole.
	tooltest.CheckMetrics(t, scrapeText(t, c))

	target := func(name string, kv ...string) map[string]string {
		m := map[string]string{"target": name}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	want := []struct {
		metric string
		labels map[string]string
		value  float64
	}{
		{"ssl_tls_version_accepted", target("legacy", "version", "TLS 1.0"), 1},
		{"ssl_tls_version_accepted", target("legacy", "version", "TLS 1.3"), 0},
		{"ssl_tls_version_accepted", target("mtls", "version", "TLS 1.0"), 0},
		{"ssl_tls_version_accepted", target("mtls", "version", "TLS 1.3"), 1},
		{"ssl_cipher_suite_accepted", target("legacy", "version", "TLS 1.0", "cipher", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "secure", "false"), 1},
		{"ssl_cipher_suite_accepted", target("legacy", "version", "TLS 1.2", "cipher", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "secure", "true"), 1},
		{"ssl_policy_violation_info", target("legacy", "rule", "min_version"), 1},
		{"ssl_policy_violation_info", target("legacy", "rule", "allow_insecure_ciphers"), 1},
		{"ssl_client_cert_required", target("mtls"), 1},
		{"ssl_client_cert_required", target("optional"), 0},
		{"ssl_certificate_pin_match", target("pinned"), 0},
		{"ssl_certificate_pin_match", target("ca-pinned"), 1},
		{"ssl_certificate_pin_match", target("quiet"), 1},
		{"ssl_ocsp_stapled", target("legacy"), 0},
		{"ssl_hsts_max_age_seconds", target("hsts"), 600},
		{"ssl_certificate_last_change_timestamp_seconds", target("legacy"), metrics.Unix(w.leaf.Cert.NotBefore)},
		{"mcp_cert_exporter_refreshes_total", map[string]string{"kind": "posture", "result": "success"}, 6},
	}
	for _, x := range want {
		if got := f.One(t, x.metric, x.labels); got != x.value {
			t.Errorf("%s%v = %v, want %v", x.metric, x.labels, got, x.value)
		}
	}
	absent := []struct {
		metric string
		labels map[string]string
	}{
		{"ssl_tls_version_accepted", target("quiet")}, // posture: false
		{"ssl_certificate_last_change_timestamp_seconds", target("quiet")},
		{"ssl_client_cert_required", target("legacy")},  // no client certificate configured
		{"ssl_certificate_pin_match", target("legacy")}, // no pins
		{"ssl_hsts_max_age_seconds", target("legacy")},  // address endpoint
		{"ssl_ocsp_status_info", target("legacy")},      // nothing stapled
		{"ssl_ocsp_next_update_timestamp_seconds", target("legacy")},
		{"ssl_certificate_finding_info", nil}, // clean 30-day leaves
		{"ssl_posture_check_unknown_info", nil},
	}
	for _, x := range absent {
		f.Absent(t, x.metric, x.labels)
	}
	// Go servers enable the ECDHE CBC suites by default, which the default policy forbids.
	if rules := f.LabelValues("ssl_policy_violation_info", "rule", target("mtls")); len(rules) != 1 || rules[0] != "allow_insecure_ciphers" {
		t.Errorf("mtls violations %v, want only allow_insecure_ciphers", rules)
	}
	if n := len(f.Samples("ssl_posture_last_run_timestamp_seconds", nil)); n != 6 {
		t.Errorf("%d posture runs reported, want 6 (every endpoint but quiet)", n)
	}
}

func spkiPin(c *testpki.Cert) string { return probe.CertInfoOf(c.Cert, probe.RoleRoot).SPKISHA256 }

// serveHSTS runs an HTTPS server whose answers carry max-age=600 and
// returns its URL.
func serveHSTS(t *testing.T, w *postureWorld) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{w.leaf.TLS()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Strict-Transport-Security", "max-age=600")
		rw.WriteHeader(http.StatusMethodNotAllowed)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String() + "/mcp"
}

func TestLeafChangeIsRecorded(t *testing.T) {
	w := newPostureWorld(t)
	second := w.ca.Issue(testpki.Options{NotAfter: time.Now().Add(20 * 24 * time.Hour)})
	var current atomic.Pointer[tls.Certificate]
	first := w.leaf.TLS()
	current.Store(&first)
	addr := testpki.Serve(t, &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return current.Load(), nil }})
	c := New(slog.New(slog.DiscardHandler))
	applyConfig(t, c, &config.Config{Endpoints: []config.Endpoint{w.endpoint("rotating", addr)}})
	ep := c.targets[0]
	e := ep.kind.(*endpoint)
	lastChange := func() float64 { return scrape(t, c).One(t, "ssl_certificate_last_change_timestamp_seconds", nil) }

	ep.refresh(context.Background())
	if got := lastChange(); got != metrics.Unix(w.leaf.Cert.NotBefore) {
		t.Fatalf("first sight: %v, want the leaf's NotBefore %v", got, metrics.Unix(w.leaf.Cert.NotBefore))
	}
	ep.refresh(context.Background())
	if got := lastChange(); got != metrics.Unix(w.leaf.Cert.NotBefore) {
		t.Fatalf("same leaf again moved the change time to %v", got)
	}
	cert := second.TLS()
	current.Store(&cert)
	ep.refresh(context.Background())
	if got, want := lastChange(), metrics.Unix(e.res.last.Load().Time); got != want {
		t.Fatalf("after rotation: %v, want the probe's time %v", got, want)
	}
	// A reload that changes the endpoint keeps its history: same target.
	changed := w.endpoint("rotating", addr)
	changed.Timeout = config.Duration(3 * time.Second)
	applyConfig(t, c, &config.Config{Endpoints: []config.Endpoint{changed}})
	if c.targets[0] == ep || c.targets[0].kind.(*endpoint).change != e.change {
		t.Fatal("the reloaded endpoint lost its change history")
	}
}

func TestPostureJobsFollowTheConfig(t *testing.T) {
	w := newPostureWorld(t)
	ep := w.endpoint("a", w.serve(t, nil))
	c := New(slog.New(slog.DiscardHandler))
	applyConfig(t, c, &config.Config{Endpoints: []config.Endpoint{ep}, PostureInterval: config.Duration(2 * time.Hour)})
	refreshAll(t, c)
	scanned := func() (*probe.PostureResult, time.Duration) {
		t.Helper()
		jobs := scanJobs(c)
		if len(jobs) != 1 || jobs[0].key() != "posture/"+c.targets[0].id {
			t.Fatalf("posture jobs %+v", jobs)
		}
		if _, ok := c.sched.byKey[jobs[0].key()]; !ok {
			t.Fatal("posture job not scheduled")
		}
		return jobs[0].kind.(*endpoint).res.scan.Load(), jobs[0].interval()
	}
	first, every := scanned()
	if first == nil || every != 2*time.Hour {
		t.Fatalf("posture result %v every %s", first, every)
	}
	applyConfig(t, c, &config.Config{Endpoints: []config.Endpoint{ep}})
	if got, every := scanned(); got != first || every != time.Hour {
		t.Fatal("an unchanged endpoint lost its posture result, or the default interval is not 1h")
	}
	off := false
	ep.Posture = &off
	applyConfig(t, c, &config.Config{Endpoints: []config.Endpoint{ep}})
	if len(scanJobs(c)) != 0 {
		t.Fatalf("posture: false still has a job")
	}
	if _, ok := c.sched.byKey["posture/"+c.targets[0].id]; ok {
		t.Fatal("posture: false still scheduled")
	}
}

func TestFileFindings(t *testing.T) {
	dir := t.TempDir()
	serialZero := func(c *x509.Certificate) { c.SerialNumber = big.NewInt(0) }
	rootA := testpki.SelfSigned(testpki.Options{CN: "Old Root A", IsCA: true, RSABits: 1024, Template: serialZero})
	rootB := testpki.SelfSigned(testpki.Options{CN: "Old Root B", IsCA: true, RSABits: 1024, Template: serialZero})
	self := testpki.SelfSigned(testpki.Options{NotAfter: time.Now().Add(30 * 24 * time.Hour)})
	clean := testpki.NewCA("Clean CA").Issue(testpki.Options{NotAfter: time.Now().Add(30 * 24 * time.Hour)})
	bundle := testpki.WriteFile(t, dir, "roots.pem", testpki.Bundle(rootA, rootB))
	selfFile := testpki.WriteFile(t, dir, "self.pem", self.PEM())
	testpki.WriteFile(t, dir, "clean.pem", clean.PEM())

	c := New(slog.New(slog.DiscardHandler))
	applyConfig(t, c, &config.Config{Files: []config.FileGroup{{Name: "disk", Paths: []string{dir + "/*.pem"}}}})
	refreshAll(t, c)
	f := scrape(t, c)
	weak := f.Samples("ssl_certificate_finding_info", map[string]string{"target": "disk", "path": bundle, "finding": "WEAK_KEY"})
	if len(weak) != 2 || weak[0].Labels["serial"] == weak[1].Labels["serial"] {
		t.Errorf("two weak roots with serial 0: %v", weak)
	}
	f.One(t, "ssl_certificate_finding_info", map[string]string{"source": "file", "path": selfFile, "role": "leaf", "finding": "SELF_SIGNED"})
	if n := len(f.Samples("ssl_certificate_finding_info", nil)); n != 3 {
		t.Errorf("%d findings, want 3 (two weak roots, one self-signed leaf)", n)
	}
	f.One(t, "ssl_policy_violation_info", map[string]string{"target": "disk", "rule": "allow_self_signed"})
}

func TestKeyMetrics(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA("Key CA")
	leaf, stranger := ca.Leaf("mcp"), ca.Leaf("stranger")
	testpki.WriteFile(t, dir, "good/tls.crt", leaf.PEM())
	good := testpki.WriteFile(t, dir, "good/tls.key", leaf.KeyPEM())
	testpki.WriteFile(t, dir, "bad/tls.crt", leaf.PEM())
	bad := testpki.WriteFile(t, dir, "bad/tls.key", stranger.KeyPEM())
	if err := os.Chmod(bad, 0o644); err != nil {
		t.Fatal(err)
	}
	c := New(slog.New(slog.DiscardHandler))
	applyConfig(t, c, &config.Config{Files: []config.FileGroup{{Name: "tls", Paths: []string{dir + "/*/tls.crt"}}}})
	// The key check may run before the group's first read: it reads the certificates itself.
	for _, j := range scanJobs(c) {
		j.run(context.Background())
	}
	f := scrape(t, c)
	for _, x := range []struct {
		path            string
		match, insecure float64
	}{{good, 1, 0}, {bad, 0, 1}} {
		labels := map[string]string{"target": "tls", "path": x.path}
		if got := f.One(t, "ssl_private_key_matches_certificate", labels); got != x.match {
			t.Errorf("%s matches = %v, want %v", x.path, got, x.match)
		}
		if got := f.One(t, "ssl_private_key_insecure_permissions", labels); got != x.insecure {
			t.Errorf("%s insecure = %v, want %v", x.path, got, x.insecure)
		}
	}
	f.Absent(t, "ssl_posture_check_unknown_info", nil)
}

// TestPostureRunsAlongsideProbes runs the scheduler for real: the first
// posture scan starts with the first probe on the same Target, while scrapes
// read both results; -race watches.
func TestPostureRunsAlongsideProbes(t *testing.T) {
	w := newPostureWorld(t)
	addr := w.serve(t, func(c *tls.Config) {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, testpki.Pool(w.clientCA)
	})
	c := startCollector(t, "interval: 1h\nendpoints:\n  - name: mtls\n    address: "+addr+
		"\n    tls_config: {ca_file: "+w.caFile+", cert_file: "+w.client[0]+", key_file: "+w.client[1]+"}\n")
	eventually(t, "probe and posture scan both reported", func() bool {
		f := scrape(t, c)
		return len(f.Samples("ssl_probe_success", nil)) == 1 && len(f.Samples("ssl_client_cert_required", nil)) == 1
	})
	f := scrape(t, c)
	if v := f.One(t, "ssl_client_cert_required", map[string]string{"target": "mtls"}); v != 1 {
		t.Errorf("ssl_client_cert_required = %v", v)
	}
	if v := f.One(t, "ssl_probe_success", map[string]string{"target": "mtls"}); v != 1 {
		t.Errorf("the probe with our client certificate failed alongside the scan: %v", v)
	}
}
