package probe

import (
	"context"
	"crypto/tls"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/mcptest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

// hellos is what a Go server saw: whether each ClientHello offered the
// hybrid, and the group and HelloRetryRequest of each completed handshake.
type hellos struct {
	mu     sync.Mutex
	hybrid []bool
	groups []tls.CurveID
	hrr    int
}

// record makes a server config report to h; only, when set, is all the
// server takes.
func (h *hellos) record(only ...tls.CurveID) func(*tls.Config) {
	return func(c *tls.Config) {
		c.CurvePreferences = only
		c.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.hybrid = append(h.hybrid, slices.Contains(hi.SupportedCurves, tls.X25519MLKEM768))
			return nil, nil
		}
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.groups = append(h.groups, cs.CurveID)
			if cs.HelloRetryRequest {
				h.hrr++
			}
			return nil
		}
	}
}

// snapshot waits until the server has seen at least n handshakes through
// (its side finishes after the client's) and returns what it recorded.
func (h *hellos) snapshot(n int) ([]bool, []tls.CurveID, int) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		h.mu.Lock()
		done := len(h.groups) >= n
		h.mu.Unlock()
		if done {
			break
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.hybrid), slices.Clone(h.groups), h.hrr
}

// The scheduled probe of an address endpoint offers classical groups only:
// an ordinary server settles on X25519 in one ClientHello, no retry. A
// server that takes only the hybrid refuses that handshake; the probe
// succeeds on a second one with Go's defaults and offers those from then
// on. key_exchange: default, a client certificate and MCP (a token may
// travel) keep Go's defaults from the first ClientHello.
func TestKeyExchange(t *testing.T) {
	p := newPKI(t)
	cases := []struct {
		name   string
		server []tls.CurveID // nil: Go's defaults
		tc     func(*config.TLSConfig)
		url    bool
		// the ClientHellos' hybrid offers over two probes, in order; nil:
		// every one of them offers it (MCP opens further connections)
		want  []bool
		group tls.CurveID // of the last handshake
		hrr   int         // HelloRetryRequests: a key share for X25519 only, as Go's defaults send
	}{
		{name: "ordinary server", want: []bool{false, false}, group: tls.X25519},
		{name: "P-384 only", server: []tls.CurveID{tls.CurveP384}, want: []bool{false, false}, group: tls.CurveP384, hrr: 2},
		{name: "hybrid only: one fallback, then defaults", server: []tls.CurveID{tls.X25519MLKEM768},
			want: []bool{false, true, true}, group: tls.X25519MLKEM768},
		{name: "key_exchange default", tc: func(c *config.TLSConfig) { c.KeyExchange = config.KeyExchangeDefault },
			want: []bool{true, true}, group: tls.X25519MLKEM768},
		{name: "client certificate", tc: func(c *config.TLSConfig) { c.CertFile, c.KeyFile = p.clientCert, p.clientKey },
			want: []bool{true, true}, group: tls.X25519MLKEM768},
		{name: "MCP over the probe's connection", url: true, group: tls.X25519MLKEM768},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h hellos
			trust := config.TLSConfig{CAFile: p.rootFile}
			if tc.tc != nil {
				tc.tc(&trust)
			}
			var ep config.Endpoint
			if tc.url {
				cfg := &tls.Config{Certificates: []tls.Certificate{p.leaf.TLS(p.inter)}}
				h.record(tc.server...)(cfg)
				base, mux := mcptest.ServeTLSConfig(t, cfg)
				calls := &mcptest.Calls{}
				mux.Handle("/mcp", mcptest.Streamable(mcptest.NewServer("stateful", calls), calls, nil))
				ep = urlEndpoint(base+"/mcp", trust, config.MCPConfig{})
			} else {
				ep = endpoint(serve(t, p.leaf.TLS(p.inter), h.record(tc.server...)), trust)
			}
			target, err := NewTarget(ep)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				r := target.Probe(context.Background())
				if !r.Success || !r.Verified || (tc.url && !r.MCP.Up) {
					t.Fatalf("probe: success %v verified %v, %s: %s; MCP %+v", r.Success, r.Verified, r.Reason, r.Detail, r.MCP)
				}
			}
			hybrid, groups, hrr := h.snapshot(2)
			want := tc.want
			if want == nil {
				want = slices.Repeat([]bool{true}, max(len(hybrid), 2))
			}
			if !slices.Equal(hybrid, want) {
				t.Errorf("ClientHellos offering the hybrid: %v, want %v", hybrid, want)
			}
			if len(groups) == 0 || groups[len(groups)-1] != tc.group {
				t.Errorf("groups negotiated: %v, want the last %v", groups, tc.group)
			}
			if hrr != tc.hrr {
				t.Errorf("%d HelloRetryRequests, want %d (groups %v, hellos %v)", hrr, tc.hrr, groups, hybrid)
			}
		})
	}
}

// Debian's OpenSSL 3.0 s_server, which has no hybrid: the probe completes
// and verifies with the classical groups, restricted to one curve too.
func TestKeyExchangeOpenSSL(t *testing.T) {
	openssl := tooltest.Require(t, "openssl")
	p := newPKI(t)
	leaf := testpki.WriteFile(t, p.dir, "leaf.pem", p.leaf.PEM())
	inter := testpki.WriteFile(t, p.dir, "inter.pem", p.inter.PEM())
	key := testpki.WriteFile(t, p.dir, "leaf.key", p.leaf.KeyPEM())
	for _, groups := range [][]string{nil, {"-groups", "P-384"}, {"-groups", "X25519"}} {
		args := append([]string{"-cert", leaf, "-cert_chain", inter, "-key", key}, groups...)
		addr := startSServer(t, openssl, args...)
		target, err := NewTarget(endpoint(addr, config.TLSConfig{CAFile: p.rootFile}))
		if err != nil {
			t.Fatal(err)
		}
		r := target.Probe(context.Background())
		if !r.Success || !r.Verified || target.needsDefaultGroups.Load() {
			t.Errorf("s_server %v: success %v verified %v fell back %v, %s: %s", groups, r.Success, r.Verified,
				target.needsDefaultGroups.Load(), r.Reason, r.Detail)
		}
	}
}
