package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/mcpcert/mcp_cert_exporter/alerts"
	"github.com/mcpcert/mcp_cert_exporter/internal/mcptest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

// timeScale compresses time in TestAlertScenarios: the exporter probes once
// a second where the default interval is a minute, so every duration of the
// shipped rules (for:, range windows, offsets and the interval tiers they
// compare ssl_probe_interval_seconds with) is divided by the same 60.
const timeScale = 60

// TestAlertScenarios is issue 10's time-compressed end-to-end test: real
// servers on 127.0.0.1 that fail the way production servers do, the
// exporter binary probing them every second, Prometheus 3 with the shipped
// rules scaled by timeScale, and Alertmanager with the shipped routing and
// inhibition. Each scenario ends in the page it must raise or in silence.
func TestAlertScenarios(t *testing.T) {
	promBin := tooltest.Require(t, "prometheus")
	amBin := tooltest.Require(t, "alertmanager")
	job := exporterJob(t)

	sc := startScenarios(t)
	exp := startExporter(t, "--config.file="+sc.config)
	foreign := foreignExporter(t)
	hook := startWebhook(t)
	am := startAlertmanager(t, amBin, hook.url)
	prom := startPrometheus(t, promBin, scaledRules(t, timeScale), am, promJob{job, exp.addr}, promJob{foreignJob, foreign})

	t.Run("pages", func(t *testing.T) { checkScenarioPages(t, hook, prom, job) })
	t.Run("silence", func(t *testing.T) { checkScenarioSilence(t, am, hook, prom, sc) })
}

// scenarios are the servers and files of TestAlertScenarios.
type scenarios struct {
	config string
	begin  time.Time // when the scenarios started
	// Once armLong is set, the long-interval server fails its next probe,
	// and records when in longFailed.
	armLong    atomic.Bool
	longFailed atomic.Int64
	// silent are the targets that must raise no alert: no page, no ticket,
	// not even a pending rule.
	silent []string
	// strangerKey is the key the nginx group must not judge.
	strangerKey string
}

// Scenario timing: the exporter's interval stands for the default 60s.
const (
	scenarioInterval = time.Second
	// longInterval stands for interval: 10m.
	longInterval = 10 * time.Minute / timeScale
)

func startScenarios(t *testing.T) *scenarios {
	t.Helper()
	dir := t.TempDir()
	sc := &scenarios{begin: time.Now()}
	pki := newStackPKI()
	caFile := testpki.WriteFile(t, dir, "ca.pem", pki.root.PEM())
	tlsFor := func(cn string) *tls.Config { return pki.hardened(pki.leaf(cn, 90*day)) }

	// A root that anchors a served chain and expires in 20 days: the
	// server does not send it, the exporter exports it under the endpoint.
	now := time.Now()
	shortRoot := testpki.SelfSigned(testpki.Options{CN: "Anchoring Root", IsCA: true, NotBefore: now.Add(-3650 * day), NotAfter: now.Add(20 * day)})
	shortInter := shortRoot.Issue(testpki.Options{CN: "Anchored Intermediate", IsCA: true, NotBefore: now.Add(-day), NotAfter: now.Add(1825 * day)})
	anchored := &tls.Config{Certificates: []tls.Certificate{shortInter.Issue(testpki.Options{CN: "anchored.test",
		NotBefore: now.Add(-day), NotAfter: now.Add(89 * day)}).TLS(shortInter)}}
	shortRootFile := testpki.WriteFile(t, dir, "anchoring-root.pem", shortRoot.PEM())

	var b strings.Builder
	fmt.Fprintf(&b, "interval: %s\ntimeout: 500ms\nposture_interval: 1h\nendpoints:\n", model.Duration(scenarioInterval))
	endpoint := func(name, at, ca, extra string) {
		fmt.Fprintf(&b, "  - name: %s\n%s    posture: false\n    tls_config: {ca_file: %q, server_name: localhost}\n%s", name, at, ca, extra)
	}
	endpoint("alternating", address(alternatingServer(t)), caFile, "")
	endpoint("intermittent", address(intermittentServer(t, tlsFor("intermittent.test"))), caFile, "")
	endpoint("long-interval", address(failOnceServer(t, tlsFor("long.test"), &sc.armLong, &sc.longFailed)), caFile,
		fmt.Sprintf("    interval: %s\n", model.Duration(longInterval)))
	endpoint("slow-mcp", slowMCPURL(t, tlsFor("slow-mcp.test")), caFile, "    timeout: 800ms\n")
	endpoint("anchored-root", address(testpki.Serve(t, anchored)), shortRootFile, "")
	// A chain from a CA the endpoint does not trust, served by turns with
	// stalls: verification fails whenever a certificate shows.
	stranger := newStackPKI()
	endpoint("overloaded-bad-chain", address(badChainOrStallServer(t, stranger.hardened(stranger.leaf("bad.test", 90*day)))), caFile, "")

	b.WriteString("files:\n")
	// Trust stores: an expired root and one about to expire, as Debian's
	// bundle holds them. No client uses them, so nothing may page.
	expiredRoot := testpki.SelfSigned(testpki.Options{CN: "Long Expired Root", IsCA: true, NotBefore: now.Add(-7300 * day), NotAfter: now.Add(-400 * day)})
	dyingRoot := testpki.SelfSigned(testpki.Options{CN: "Dying Root", IsCA: true, NotBefore: now.Add(-7300 * day), NotAfter: now.Add(3 * day)})
	bundle := testpki.WriteFile(t, dir, "trust/ca-certificates.crt", testpki.Bundle(expiredRoot, dyingRoot))
	fmt.Fprintf(&b, "  - {name: trust-store, paths: [%q], trust_store: true}\n", bundle)
	sc.silent = append(sc.silent, "trust-store")
	// The Docker image's own configuration must be quiet as well.
	for _, g := range imageFileGroups(t) {
		fmt.Fprintf(&b, "  - %s\n", g.yaml)
		sc.silent = append(sc.silent, g.name)
	}
	// A private PKI's root CA, watched on purpose, expiring in 20 days.
	privateCA := testpki.WriteFile(t, dir, "private/ca.crt", shortRoot.PEM())
	fmt.Fprintf(&b, "  - {name: private-ca, paths: [%q]}\n", privateCA)

	// nginx's directory: the group watches api.crt; web.key is web.crt's,
	// readable by others, and none of the group's business.
	api, web := pki.leaf("api.test", 90*day), pki.leaf("web.test", 90*day)
	apiCrt := testpki.WriteFile(t, dir, "nginx/api.crt", testpki.Bundle(api, pki.inter))
	writeKey(t, filepath.Join(dir, "nginx/api.key"), api.KeyPEM(), 0o600)
	testpki.WriteFile(t, dir, "nginx/web.crt", testpki.Bundle(web, pki.inter))
	sc.strangerKey = writeKey(t, filepath.Join(dir, "nginx/web.key"), web.KeyPEM(), 0o644)
	fmt.Fprintf(&b, "  - {name: nginx, paths: [%q]}\n", apiCrt)
	// The control: api.key that is web's key is a mismatch, and pages.
	wrongCrt := testpki.WriteFile(t, dir, "wrong/api.crt", testpki.Bundle(api, pki.inter))
	writeKey(t, filepath.Join(dir, "wrong/api.key"), web.KeyPEM(), 0o600)
	fmt.Fprintf(&b, "  - {name: nginx-wrong-key, paths: [%q]}\n", wrongCrt)

	sc.config = writeConfig(t, filepath.Join(dir, "exporter.yml"), b.String())
	return sc
}

func writeKey(t *testing.T, path string, pem []byte, mode os.FileMode) string {
	t.Helper()
	p := testpki.WriteFile(t, filepath.Dir(path), filepath.Base(path), pem)
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

type imageGroup struct{ name, yaml string }

// imageFileGroups are the file groups of the Docker image's configuration
// whose files exist here, as flow-style YAML.
func imageFileGroups(t *testing.T) []imageGroup {
	t.Helper()
	raw, err := os.ReadFile("deploy/config.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Files []map[string]any `yaml:"files"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("deploy/config.yml: %v", err)
	}
	var out []imageGroup
	for _, g := range cfg.Files {
		paths, _ := g["paths"].([]any)
		if len(paths) == 0 {
			t.Fatalf("deploy/config.yml: group %v has no paths", g["name"])
		}
		if _, err := os.Stat(fmt.Sprint(paths[0])); err != nil {
			t.Logf("the image's group %v is left out: %v", g["name"], err)
			continue
		}
		var flow bytes.Buffer
		enc := yaml.NewEncoder(&flow)
		node := &yaml.Node{}
		if err := node.Encode(g); err != nil {
			t.Fatal(err)
		}
		node.Style = yaml.FlowStyle
		if err := enc.Encode(node); err != nil {
			t.Fatal(err)
		}
		out = append(out, imageGroup{name: fmt.Sprint(g["name"]), yaml: strings.TrimSpace(flow.String())})
	}
	return out
}

// readHello waits for the client's first bytes, so that a reset lands on a
// handshake in progress, as a crashing TLS terminator's does.
func readHello(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Read(make([]byte, 512))
}

// reset closes c with an RST.
func reset(c net.Conn) {
	readHello(c)
	_ = c.(*net.TCPConn).SetLinger(0)
}

// serveTLSOn completes a TLS handshake on c and holds it until the client
// closes.
func serveTLSOn(c net.Conn, cfg *tls.Config) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	tc := tls.Server(c, cfg)
	if tc.Handshake() == nil {
		_, _ = io.Copy(io.Discard, tc)
	}
}

// byTurnsServer handles two connections with first, then stalls two past
// the probe's timeout, and so on. (Single timeouts would show for only the
// half second between the timeout and the next probe, which a scrape every
// second can miss every time.)
func byTurnsServer(t *testing.T, first func(net.Conn)) string {
	var n atomic.Int64
	return testpki.ServeRaw(t, func(c net.Conn) {
		if n.Add(1)%4 < 2 {
			first(c)
			return
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		_, _ = io.Copy(io.Discard, c)
	})
}

// alternatingServer is down the whole time, its failure mode alternating
// between CONNECTION_RESET and TIMEOUT.
func alternatingServer(t *testing.T) string { return byTurnsServer(t, reset) }

// badChainOrStallServer serves cfg by turns with stalls:
// CERTIFICATE_VERIFY_FAILED and TIMEOUT by turns.
func badChainOrStallServer(t *testing.T, cfg *tls.Config) string {
	return byTurnsServer(t, func(c net.Conn) { serveTLSOn(c, cfg) })
}

// intermittentServer resets 4 connections of every 5 and serves the 5th.
func intermittentServer(t *testing.T, cfg *tls.Config) string {
	var n atomic.Int64
	return testpki.ServeRaw(t, func(c net.Conn) {
		if n.Add(1)%5 != 0 {
			reset(c)
			return
		}
		serveTLSOn(c, cfg)
	})
}

// failOnceServer resets the first connection after armed is set, and only
// that one, recording when: one failed probe in a healthy history that
// Prometheus has recorded.
func failOnceServer(t *testing.T, cfg *tls.Config, armed *atomic.Bool, failed *atomic.Int64) string {
	return testpki.ServeRaw(t, func(c net.Conn) {
		if armed.Load() && failed.CompareAndSwap(0, time.Now().UnixNano()) {
			reset(c)
			return
		}
		serveTLSOn(c, cfg)
	})
}

// slowMCPURL serves a go-sdk MCP server that answers initialize (and
// server/discover) and then stalls: TLS is fine, the MCP exchange times out.
func slowMCPURL(t *testing.T, cfg *tls.Config) string {
	calls := &mcptest.Calls{}
	h := mcptest.Streamable(mcptest.NewServer("slow", calls), calls, nil)
	base, mux := mcptest.ServeTLSConfig(t, cfg)
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &msg)
		if r.Method == http.MethodPost && (msg.Method == "initialize" || msg.Method == "server/discover") {
			h.ServeHTTP(w, r)
			return
		}
		<-r.Context().Done()
	}))
	return fmt.Sprintf("    url: %q\n", base+"/mcp")
}

// foreignJob is the job of another exporter in the same Prometheus, whose
// series share our metric names.
const foreignJob = "ssl_exporter"

// foreignExporter serves what ribbybibby/ssl_exporter (and a careless copy
// of ours) would: a failing probe of a TLS 1.1 server with an expired
// certificate, and our own metric names besides.
func foreignExporter(t *testing.T) string {
	const text = `# HELP ssl_probe_success If the probe was a success
# TYPE ssl_probe_success gauge
ssl_probe_success{target="legacy.example:443"} 0
# HELP ssl_tls_version_info The TLS version used
# TYPE ssl_tls_version_info gauge
ssl_tls_version_info{target="legacy.example:443",version="TLS 1.1"} 1
# HELP ssl_cert_not_after NotAfter expressed as a Unix Epoch Time
# TYPE ssl_cert_not_after gauge
ssl_cert_not_after{cn="legacy.example",target="legacy.example:443"} 1.6e+09
# HELP ssl_probe_interval_seconds Interval.
# TYPE ssl_probe_interval_seconds gauge
ssl_probe_interval_seconds{target="legacy.example:443"} 1
# HELP ssl_certificate_expiry_seconds Expiry.
# TYPE ssl_certificate_expiry_seconds gauge
ssl_certificate_expiry_seconds{target="legacy.example:443",source="endpoint",role="leaf",path="",subject_cn="legacy.example",issuer_cn="x",serial="01"} -86400
# HELP ssl_private_key_matches_certificate Key.
# TYPE ssl_private_key_matches_certificate gauge
ssl_private_key_matches_certificate{target="keys",path="/etc/ssl/private/web.key"} 0
# HELP mcp_up MCP.
# TYPE mcp_up gauge
mcp_up{target="legacy.example:443"} 0
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, text)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// scaledRules are the shipped rules rendered with every duration divided
// by factor (alerts.Render): thresholds that are not time (shares, days of
// certificate validity) keep their values.
func scaledRules(t *testing.T, factor int) string {
	t.Helper()
	rules, err := alerts.RenderDir("alerts", factor)
	if err != nil {
		t.Fatal(err)
	}
	return string(rules)
}

// checkScenarioPages waits for each page (and ticket) the scenarios must
// raise, then checks each scenario really happened as staged.
func checkScenarioPages(t *testing.T, hook *webhook, prom *stackProm, job string) {
	want := []struct {
		path   string
		labels map[string]string
	}{
		// Down the whole time, the reason alternating: one page.
		{"/critical", map[string]string{"alertname": "McpCertEndpointUnreachable", "target": "alternating"}},
		// Failing 4 probes of 5.
		{"/critical", map[string]string{"alertname": "McpCertEndpointUnreachable", "target": "intermittent"}},
		// Verification failing, with timeouts in between: one page.
		{"/critical", map[string]string{"alertname": "McpCertVerificationFailed", "target": "overloaded-bad-chain"}},
		// TLS fine, initialize answered, then nothing.
		{"/critical", map[string]string{"alertname": "McpCertMcpDown", "target": "slow-mcp"}},
		// The control of the stranger key: a key named for api.crt that is not its key.
		{"/critical", map[string]string{"alertname": "McpCertPrivateKeyMismatch", "target": "nginx-wrong-key"}},
		// Roots that clients depend on still warn: anchoring a served chain...
		{"/warning", map[string]string{"alertname": "McpCertExpiringSoon", "target": "anchored-root", "role": "root", "source": "endpoint"}},
		// ...and a private CA watched on purpose.
		{"/warning", map[string]string{"alertname": "McpCertExpiringSoon", "target": "private-ca", "role": "root", "source": "file"}},
	}
	for _, w := range want {
		w.labels["job"] = job
		await(t, fmt.Sprintf("%s on %s", w.labels, w.path), func() error {
			if !hook.received(w.path, w.labels) {
				return fmt.Errorf("not received")
			}
			return nil
		})
	}
	// Each scenario happened as staged, as Prometheus recorded it.
	for what, expr := range map[string]string{
		"alternating failed with both reasons":                   `count(count by (reason) (count_over_time(ssl_probe_error_info{target="alternating",reason=~"CONNECTION_RESET|TIMEOUT"}[5m]))) == 2`,
		"alternating never succeeded":                            `max_over_time(ssl_probe_success{target="alternating"}[5m]) == 0`,
		"intermittent succeeded sometimes":                       `max_over_time(ssl_probe_success{target="intermittent"}[5m]) == 1`,
		"overloaded-bad-chain failed verification and timed out": `count(count by (reason) (count_over_time(ssl_probe_error_info{target="overloaded-bad-chain",reason=~"CERTIFICATE_VERIFY_FAILED|TIMEOUT"}[5m]))) == 2`,
		"overloaded-bad-chain never verified":                    `max_over_time(ssl_certificate_verified{target="overloaded-bad-chain"}[5m]) == 0`,
		"slow-mcp's TLS stayed up":                               `min_over_time(ssl_probe_success{target="slow-mcp"}[5m]) == 1`,
		// Once, one probe of many read as up under load; the page is what counts.
		"slow-mcp's MCP nearly never completed": `avg_over_time(mcp_up{target="slow-mcp"}[5m]) < 0.2`,
	} {
		if v, err := prom.query(expr); err != nil || empty(v) {
			got, _ := prom.query(expr[:strings.LastIndex(expr, ") ")+1])
			t.Errorf("%s: %s gives %v %v (left side: %v)", what, expr, v, err, got)
		}
	}
	// The intermittent server's share of success, probe by probe.
	if v, err := prom.query(`avg_over_time(ssl_probe_success{target="intermittent"}[20s])`); err != nil || empty(v) {
		t.Errorf("intermittent share: %v %v", v, err)
	} else if share := float64(v.(model.Vector)[0].Value); share < 0.05 || share > 0.4 {
		t.Errorf("intermittent succeeded %.2f of its probes, want about 0.2", share)
	}
}

// longTier is the availability tier of the long-interval endpoint, its
// window and for: scaled as the rules are.
func longTier(t *testing.T) (window, forDur time.Duration) {
	t.Helper()
	th, err := alerts.LoadThresholds("alerts/thresholds.yml")
	if err != nil {
		t.Fatal(err)
	}
	real := longInterval * timeScale
	for _, tier := range th.AvailabilityTiers() {
		if time.Duration(tier.Lower) < real && (tier.Upper == 0 || real <= time.Duration(tier.Upper)) {
			return time.Duration(tier.Window) / timeScale, time.Duration(tier.For) / timeScale
		}
	}
	t.Fatalf("no availability tier takes interval %s", real)
	return 0, 0
}

// stageLongFailure waits until Prometheus holds a whole window of the
// long-interval endpoint's healthy probes, as a long-running target has,
// then has its server fail one probe. It returns when nothing can fire for
// it any more: the failed result is held one interval, and a rule would
// fire after its window and for: at most.
func stageLongFailure(t *testing.T, prom *stackProm, sc *scenarios) time.Time {
	t.Helper()
	window, forDur := longTier(t)
	full := fmt.Sprintf(`time() - min_over_time(timestamp(ssl_probe_success{target="long-interval"} == 1)[%s:1s]) > %d`,
		model.Duration(2*window), int(window.Seconds())+1)
	await(t, "a whole window of the long-interval endpoint's history", func() error {
		if v, err := prom.query(full); err != nil || empty(v) {
			return fmt.Errorf("%s: %v %v", full, v, err)
		}
		return nil
	})
	sc.armLong.Store(true)
	await(t, "the long-interval server's one failure", func() error {
		if sc.longFailed.Load() == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	return time.Unix(0, sc.longFailed.Load()).Add(longInterval + window + forDur + 5*time.Second)
}

// checkScenarioSilence waits until the last silent scenario would have
// fired, then checks that none of them ever had an alert, pending or
// firing, in Prometheus, and that Alertmanager and the receivers saw none.
func checkScenarioSilence(t *testing.T, am *alertmanager, hook *webhook, prom *stackProm, sc *scenarios) {
	until := stageLongFailure(t, prom, sc)
	silent := []string{
		fmt.Sprintf(`ALERTS{target=~%q}`, strings.Join(append([]string{"long-interval"}, sc.silent...), "|")),
		fmt.Sprintf(`ALERTS{job=%q}`, foreignJob),
		`ALERTS{target="nginx",alertname=~"McpCertPrivateKey.*"}`,
	}
	// The scenario is the wait: until the rules have had every chance to
	// fire, any alert of a silent scenario, even pending, fails at once.
	for {
		window := fmt.Sprintf("[%ds]", int(time.Since(sc.begin).Seconds())+5)
		for _, expr := range silent {
			v, err := prom.query(`max_over_time(` + expr + window + `)`)
			if err != nil {
				t.Fatal(err)
			}
			if !empty(v) {
				t.Fatalf("%s: alerts that must never be raised, not even pending:\n%v", expr, v)
			}
		}
		if time.Now().After(until) {
			break
		}
		time.Sleep(time.Second)
	}
	window := fmt.Sprintf("[%ds]", int(time.Since(sc.begin).Seconds())+5)
	for what, expr := range map[string]string{
		"the long-interval probe failed once": `count_over_time((ssl_probe_success{target="long-interval"} == 0)` + strings.TrimSuffix(window, "]") + `:1s]) > 0`,
		"the trust store holds expired roots": `ssl_certificate_expiry_seconds{target="trust-store",source="trust_store",role="root"} < 0`,
		"the stranger key is unknown, not judged": fmt.Sprintf(`ssl_posture_check_unknown_info{target="nginx",reason="KEY_NOT_PAIRED",check="private_key:%s"}`,
			sc.strangerKey),
		"the foreign job's legacy server is scraped": fmt.Sprintf(`ssl_tls_version_info{job=%q,version="TLS 1.1"}`, foreignJob),
	} {
		if v, err := prom.query(expr); err != nil || empty(v) {
			t.Errorf("%s: %s gives %v %v", what, expr, v, err)
		}
	}
	alerts, err := am.alerts()
	if err != nil {
		t.Fatal(err)
	}
	quiet := func(l map[string]string) bool {
		return l["job"] == foreignJob || l["target"] == "long-interval" || slices.Contains(sc.silent, l["target"]) ||
			(l["target"] == "nginx" && strings.HasPrefix(l["alertname"], "McpCertPrivateKey"))
	}
	for _, a := range alerts {
		if quiet(a.Labels) {
			t.Errorf("Alertmanager holds %v", a.Labels)
		}
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for path, got := range hook.got {
		for _, l := range got {
			if quiet(l) {
				t.Errorf("%s received %v", path, l)
			}
		}
	}
}
