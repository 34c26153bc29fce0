package collector

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/internal/mcptest"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// countingServer is a TLS server on ip that counts the connections it
// accepted, to prove which requests reached the network.
type countingServer struct {
	addr    string
	port    string
	accepts atomic.Int64
}

func serveCounting(t *testing.T, ip string, cfg *tls.Config) *countingServer {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	s := &countingServer{addr: ln.Addr().String()}
	_, s.port, _ = net.SplitHostPort(s.addr)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() == nil {
					_, _ = io.Copy(io.Discard, tc)
				}
			}()
		}
	}()
	return s
}

// fakeDNS answers for the test's own names and counts every lookup; it
// replaces probe.Resolver for one test.
type fakeDNS struct {
	mu      sync.Mutex
	names   map[string]string
	lookups []string
}

func useFakeDNS(t *testing.T, names map[string]string) *fakeDNS {
	d := &fakeDNS{names: names}
	prev := probe.Resolver
	probe.Resolver = d
	t.Cleanup(func() { probe.Resolver = prev })
	return d
}

func (d *fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups = append(d.lookups, host)
	if ip, ok := d.names[host]; ok {
		return []netip.Addr{netip.MustParseAddr(ip)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (d *fakeDNS) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.lookups)
}

// probeServer serves a collector's /probe with the config yml.
func probeServer(t *testing.T, yml string) (*Collector, string) {
	t.Helper()
	c := startCollector(t, yml)
	srv := httptest.NewServer(c.ProbeHandler(slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func probeGet(t *testing.T, base, module, target string, header http.Header, extra ...string) (int, string) {
	t.Helper()
	q := url.Values{"module": {module}, "target": {target}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	req, err := http.NewRequest(http.MethodGet, base+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestProbeGuard holds the SSRF guard to its promise: a target outside the
// module's allowed_targets is refused before any DNS lookup or connection.
func TestProbeGuard(t *testing.T) {
	ca := testpki.NewCA("Root")
	leaf := ca.Issue(testpki.Options{CN: "mcp.test", DNSNames: []string{"mcp.test"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	srv := serveCounting(t, "127.0.0.1", cfg)
	other := serveCounting(t, "127.0.0.2", cfg)
	dns := useFakeDNS(t, map[string]string{"mcp.test": "127.0.0.1", "rebind.test": "127.0.0.2"})
	caFile := testpki.WriteFile(t, t.TempDir(), "ca.pem", ca.PEM())
	_, base := probeServer(t, fmt.Sprintf(`
modules:
  named:
    tls_config: {ca_file: %q}
    allowed_targets: {hosts: [mcp.test, rebind.test], cidrs: [127.0.0.1/32], ports: [%s]}
  literal:
    allowed_targets: {cidrs: [127.0.0.1/32]}
  hostsonly:
    allowed_targets: {hosts: ["*.test"]}
  closed: {}
`, caFile, srv.port))
	tests := []struct {
		name, module, target string
		code                 int
		body                 string
		lookups, accepts     int // at 127.0.0.1
		otherAccepts         int // at 127.0.0.2
	}{
		{"allowed name", "named", "mcp.test:" + srv.port, 200, `ssl_certificate_verified{target="mcp.test:` + srv.port + `"} 1`, 1, 1, 0},
		{"allowed IP", "literal", srv.addr, 200, `ssl_probe_success{target="` + srv.addr + `"} 1`, 0, 1, 0},
		{"IP literal against a name-only list", "hostsonly", srv.addr, 403, "is not inside allowed_targets.cidrs", 0, 0, 0},
		{"name outside hosts", "named", "evil.test:" + srv.port, 403, `matches no pattern of allowed_targets.hosts`, 0, 0, 0},
		{"port outside ports", "named", "mcp.test:1", 403, "port 1 is not in allowed_targets.ports", 0, 0, 0},
		{"IP outside cidrs", "literal", other.addr, 403, "is not inside allowed_targets.cidrs", 0, 0, 0},
		{"default allows nothing", "closed", srv.addr, 403, `module "closed" may not probe`, 0, 0, 0},
		{"localhost is a name like any", "literal", "localhost:" + srv.port, 403, "matches no pattern", 0, 0, 0},
		// Allowed by name, resolved outside the cidrs: looked up, never dialled.
		{"resolves outside cidrs", "named", "rebind.test:" + srv.port, 200, `reason="DNS_FAILURE"`, 1, 0, 0},
		{"unknown module", "nope", srv.addr, 400, `unknown module "nope"`, 0, 0, 0},
		{"missing target", "named", "", 400, "target parameter is missing", 0, 0, 0},
		{"tls prober given a URL", "named", "https://mcp.test:" + srv.port + "/", 400, "must be host:port without a scheme", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookups, accepts, otherAccepts := dns.count(), srv.accepts.Load(), other.accepts.Load()
			code, body := probeGet(t, base, tt.module, tt.target, nil)
			if code != tt.code || !strings.Contains(body, tt.body) {
				t.Errorf("got %d %q, want %d with %q", code, body, tt.code, tt.body)
			}
			if got := dns.count() - lookups; got != tt.lookups {
				t.Errorf("%d DNS lookups, want %d", got, tt.lookups)
			}
			// The server counts a connection when it accepts it, which
			// happens before the handshake the probe waited for.
			if got := srv.accepts.Load() - accepts; got != int64(tt.accepts) {
				t.Errorf("%d connections reached the server, want %d", got, tt.accepts)
			}
			if got := other.accepts.Load() - otherAccepts; got != int64(tt.otherAccepts) {
				t.Errorf("%d connections reached 127.0.0.2, want %d", got, tt.otherAccepts)
			}
		})
	}
}

// TestProbeMetrics checks what a probe returns: the same families as a
// configured endpoint, labelled with the requested target, fresh at every
// request, promtool-clean; and the debug view.
func TestProbeMetrics(t *testing.T) {
	ca := testpki.NewCA("Root")
	srv := serveCounting(t, "127.0.0.1", &tls.Config{Certificates: []tls.Certificate{ca.Leaf("localhost").TLS()}})
	caFile := testpki.WriteFile(t, t.TempDir(), "ca.pem", ca.PEM())
	c, base := probeServer(t, fmt.Sprintf(`
modules:
  tls:
    posture: true
    tls_config: {ca_file: %q, server_name: localhost}
    allowed_targets: {cidrs: [127.0.0.0/8]}
`, caFile))
	for i := range 2 { // no cache: each request probes
		before := srv.accepts.Load()
		code, body := probeGet(t, base, "tls", srv.addr, nil)
		if code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
		if srv.accepts.Load() == before {
			t.Errorf("request %d was answered without a connection", i)
		}
		fams := metricstest.Parse(t, body)
		target := map[string]string{"target": srv.addr}
		if fams.One(t, "ssl_certificate_verified", target) != 1 || fams.One(t, "ssl_probe_success", target) != 1 {
			t.Errorf("probe did not verify:\n%s", body)
		}
		fams.One(t, "ssl_certificate_expiry_seconds", map[string]string{"target": srv.addr, "role": "leaf"})
		fams.Absent(t, "ssl_probe_interval_seconds", target)
		// posture: true scans within the request.
		fams.One(t, "ssl_tls_version_accepted", map[string]string{"target": srv.addr, "version": "TLS 1.3"})
		tooltest.CheckMetrics(t, body)
	}
	code, body := probeGet(t, base, "tls", srv.addr, nil, "debug", "true")
	for _, want := range []string{"Logs for the probe:", "msg=\"probe done\"", "success=true",
		"Metrics that would have been returned:", `ssl_probe_success{target="` + srv.addr + `"} 1`,
		"Module configuration:", "tls:", "cidrs:", "127.0.0.0/8"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("debug view lacks %q:\n%s", want, body)
		}
	}
	fams := scrape(t, c)
	if got := fams.One(t, "mcp_cert_exporter_probe_requests_total", map[string]string{"module": "tls", "result": "probed"}); got != 3 {
		t.Errorf("probed requests = %v, want 3", got)
	}
}

func TestProbeMCP(t *testing.T) {
	ca := testpki.NewCA("Root")
	calls := &mcptest.Calls{}
	base, mux := mcptest.ServeTLS(t, ca.Leaf("localhost").TLS())
	mux.Handle("/mcp", mcptest.Streamable(mcptest.NewServer("probe-me", calls), calls, nil))
	caFile := testpki.WriteFile(t, t.TempDir(), "ca.pem", ca.PEM())
	_, probeURL := probeServer(t, fmt.Sprintf(`
modules:
  mcp:
    prober: mcp
    tls_config: {ca_file: %q, server_name: localhost}
    allowed_targets: {cidrs: [127.0.0.1/32]}
`, caFile))
	target := base + "/mcp"
	code, body := probeGet(t, probeURL, "mcp", target, nil)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	fams := metricstest.Parse(t, body)
	if fams.One(t, "mcp_up", map[string]string{"target": target}) != 1 {
		t.Errorf("mcp_up is not 1:\n%s", body)
	}
	if code, body := probeGet(t, probeURL, "mcp", strings.TrimPrefix(base, "https://"), nil); code != 400 {
		t.Errorf("host:port for the mcp prober: %d %s, want 400", code, body)
	}
}

// TestProbeBusy fills probe_concurrency with a probe that waits on a
// server that never handshakes: the next request is turned away with 503
// and counted, then served once the slot is free.
func TestProbeBusy(t *testing.T) {
	accepted := make(chan net.Conn, 1)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	stall := testpki.ServeRaw(t, func(c net.Conn) {
		accepted <- c
		<-release
	})
	c, base := probeServer(t, `
probe_concurrency: 1
modules:
  tls:
    timeout: 1m
    allowed_targets: {cidrs: [127.0.0.1/32]}
`)
	first := make(chan int)
	go func() {
		code, _ := probeGet(t, base, "tls", stall, nil)
		first <- code
	}()
	<-accepted
	code, body := probeGet(t, base, "tls", stall, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "probe_concurrency") {
		t.Errorf("second probe: %d %q, want 503 naming probe_concurrency", code, body)
	}
	fams := scrape(t, c)
	if got := fams.One(t, "mcp_cert_exporter_probe_requests_total", map[string]string{"module": "tls", "result": "busy"}); got != 1 {
		t.Errorf("busy requests = %v, want 1", got)
	}
	if got := fams.One(t, "mcp_cert_exporter_probe_in_flight", nil); got != 1 {
		t.Errorf("in flight = %v, want 1", got)
	}
	free()
	if code := <-first; code != 200 {
		t.Errorf("first probe: %d", code)
	}
}

// TestProbeScrapeTimeout: Prometheus' scrape timeout header bounds a probe
// of a server that never answers, well inside the module's hour.
func TestProbeScrapeTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stall := testpki.ServeRaw(t, func(net.Conn) { <-release })
	_, base := probeServer(t, `
modules:
  slow:
    timeout: 1h
    allowed_targets: {cidrs: [127.0.0.1/32]}
`)
	code, body := probeGet(t, base, "slow", stall, http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"1.5"}})
	if code != 200 || !strings.Contains(body, `reason="TIMEOUT"`) {
		t.Errorf("got %d %s, want a TIMEOUT result", code, body)
	}
}

func TestProbeTimeout(t *testing.T) {
	tests := []struct {
		header string
		module time.Duration
		want   time.Duration
	}{
		{"", 10 * time.Second, 10 * time.Second},
		{"junk", 10 * time.Second, 10 * time.Second},
		{"-1", 10 * time.Second, 10 * time.Second},
		{"5", 10 * time.Second, 4500 * time.Millisecond},
		{"30", 10 * time.Second, 10 * time.Second},
		{"0.3", 10 * time.Second, 300 * time.Millisecond}, // shorter than the offset: all of it
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/probe", nil)
		r.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", tt.header)
		if got := probeTimeout(r, tt.module); got != tt.want {
			t.Errorf("probeTimeout(%q, %v) = %v, want %v", tt.header, tt.module, got, tt.want)
		}
	}
}

// TestProbeModuleFileGone: a module whose ca_file went away after the
// config loaded answers 500 and counts an error, not a bad request.
func TestProbeModuleFileGone(t *testing.T) {
	dir := t.TempDir()
	caFile := testpki.WriteFile(t, dir, "ca.pem", testpki.NewCA("Root").PEM())
	c, base := probeServer(t, fmt.Sprintf(`
modules:
  tls:
    tls_config: {ca_file: %q}
    allowed_targets: {cidrs: [127.0.0.1/32]}
`, caFile))
	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	if code, body := probeGet(t, base, "tls", "127.0.0.1:1", nil); code != http.StatusInternalServerError || !strings.Contains(body, "ca_file") {
		t.Errorf("got %d %q, want 500 naming ca_file", code, body)
	}
	if got := scrape(t, c).One(t, "mcp_cert_exporter_probe_requests_total", map[string]string{"module": "tls", "result": "error"}); got != 1 {
		t.Errorf("error requests = %v, want 1", got)
	}
}
