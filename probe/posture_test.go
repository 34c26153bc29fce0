package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// acceptedVersions lists the accepted and the refused versions of a scan by name.
func acceptedVersions(r *PostureResult) (accepted, refused []string) {
	for _, v := range r.Versions {
		if v.Accepted {
			accepted = append(accepted, tls.VersionName(v.Version))
		} else {
			refused = append(refused, tls.VersionName(v.Version))
		}
	}
	return accepted, refused
}

// suitesAt lists the suites accepted at version v, sorted, with "!" before
// the insecure ones.
func suitesAt(r *PostureResult, v uint16) []string {
	var out []string
	for _, s := range r.Suites {
		if s.Version == v {
			name := tls.CipherSuiteName(s.Suite)
			if !s.Secure {
				name = "!" + name
			}
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func scanOf(t *testing.T, ep config.Endpoint, opts PostureOptions) *PostureResult {
	t.Helper()
	target, err := NewTarget(ep)
	if err != nil {
		t.Fatal(err)
	}
	return target.Posture(context.Background(), opts)
}

func TestPostureProtocolAndCipherScan(t *testing.T) {
	p := newPKI(t)
	rsaLeaf := p.inter.Issue(testpki.Options{RSABits: 2048})
	trust := config.TLSConfig{CAFile: p.rootFile}
	const tls12 = tls.VersionTLS12
	cases := []struct {
		name      string
		cert      tls.Certificate
		mod       func(*tls.Config)
		accepted  []string
		refused   []string
		suites    map[uint16][]string // nil: not checked
		allSecure bool
	}{
		{
			name:     "modern server: TLS 1.2 and 1.3 only",
			cert:     p.leaf.TLS(p.inter),
			accepted: []string{"TLS 1.2", "TLS 1.3"}, refused: []string{"TLS 1.0", "TLS 1.1"},
			// Go servers still enable the ECDHE CBC suites by default.
			suites: map[uint16][]string{tls12: {"!TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "!TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
				"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
				"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"}},
		},
		{
			name:     "legacy server that also accepts TLS 1.0",
			cert:     p.leaf.TLS(p.inter),
			mod:      versions(tls.VersionTLS10, tls.VersionTLS12),
			accepted: []string{"TLS 1.0", "TLS 1.1", "TLS 1.2"}, refused: []string{"TLS 1.3"},
			suites: map[uint16][]string{
				tls.VersionTLS10: {"!TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "!TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"},
			},
		},
		{
			name: "non-forward-secret CBC suite with an RSA certificate",
			cert: rsaLeaf.TLS(p.inter),
			mod: func(c *tls.Config) {
				c.MinVersion, c.MaxVersion = tls12, tls12
				c.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}
			},
			accepted: []string{"TLS 1.2"}, refused: []string{"TLS 1.0", "TLS 1.1", "TLS 1.3"},
			suites: map[uint16][]string{tls12: {"!TLS_RSA_WITH_AES_128_CBC_SHA"}},
		},
		{
			name: "elimination finds exactly the configured suites",
			cert: p.leaf.TLS(p.inter),
			mod: func(c *tls.Config) {
				c.MinVersion, c.MaxVersion = tls12, tls12
				c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
					tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
			},
			accepted: []string{"TLS 1.2"}, refused: []string{"TLS 1.0", "TLS 1.1", "TLS 1.3"},
			suites: map[uint16][]string{tls12: {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
				"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"}},
			allSecure: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := scanOf(t, endpoint(serve(t, tc.cert, tc.mod), trust), PostureOptions{})
			if len(r.Unknown) > 0 {
				t.Fatalf("unknown checks: %+v", r.Unknown)
			}
			acc, ref := acceptedVersions(r)
			if !slices.Equal(acc, tc.accepted) || !slices.Equal(ref, tc.refused) {
				t.Errorf("accepted %v refused %v, want %v and %v", acc, ref, tc.accepted, tc.refused)
			}
			for v, want := range tc.suites {
				if got := suitesAt(r, v); !slices.Equal(got, want) {
					t.Errorf("%s suites %v, want %v", tls.VersionName(v), got, want)
				}
			}
			secure := !slices.ContainsFunc(r.Suites, func(s SuiteResult) bool { return !s.Secure })
			if tc.allSecure && !secure {
				t.Errorf("insecure suites in %v", r.Suites)
			}
			for _, acc := range r.Versions {
				if acc.Accepted && len(suitesAt(r, acc.Version)) == 0 {
					t.Errorf("%s accepted with no suite", tls.VersionName(acc.Version))
				}
			}
		})
	}
}

func TestSuiteSecure(t *testing.T) {
	cases := map[uint16]bool{
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:       true,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305:      true,
		tls.TLS_AES_128_GCM_SHA256:                      true,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:        false, // CBC
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256:             false, // no forward secrecy
		tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA:         false,
		tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA:              false,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256:     false,
		tls.TLS_RSA_WITH_AES_256_CBC_SHA:                false,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: true,
	}
	for id, want := range cases {
		if got := SuiteSecure(id); got != want {
			t.Errorf("%s: secure %v, want %v", tls.CipherSuiteName(id), got, want)
		}
	}
}

func TestPostureClientCertEnforcement(t *testing.T) {
	p := newPKI(t)
	mtls := config.TLSConfig{CAFile: p.rootFile, CertFile: p.clientCert, KeyFile: p.clientKey}
	request := func(version uint16) func(*tls.Config) {
		return func(c *tls.Config) {
			requireClientCert(p.clientCA, version)(c)
			c.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	cases := []struct {
		name     string
		mod      func(*tls.Config)
		tc       config.TLSConfig
		required bool
	}{
		{"requires a certificate, TLS 1.3: refusal seen on read", requireClientCert(p.clientCA, tls.VersionTLS13), mtls, true},
		{"requires a certificate, TLS 1.2", requireClientCert(p.clientCA, tls.VersionTLS12), mtls, true},
		{"merely requests one, TLS 1.3", request(tls.VersionTLS13), mtls, false},
		{"merely requests one, TLS 1.2", request(tls.VersionTLS12), mtls, false},
		{"never asks; no client certificate configured", nil, config.TLSConfig{CAFile: p.rootFile}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := scanOf(t, endpoint(serve(t, p.leaf.TLS(p.inter), tc.mod), tc.tc), PostureOptions{ClientCert: true})
			if r.ClientCertRequired == nil {
				t.Fatalf("client certificate enforcement unknown: %+v", r.Unknown)
			}
			if *r.ClientCertRequired != tc.required {
				t.Errorf("required %v, want %v", *r.ClientCertRequired, tc.required)
			}
			// Our own certificate still gets the version scan through.
			if acc, _ := acceptedVersions(r); len(acc) == 0 {
				t.Errorf("no version accepted")
			}
		})
	}
}

// TestPostureUnreachable: a check that could not run is unknown, never
// passed, and a dead server costs one attempt, not one per check.
func TestPostureUnreachable(t *testing.T) {
	ep := endpoint(closedPort(t), config.TLSConfig{})
	ep.URL, ep.Address = "https://"+ep.Address+"/mcp", ""
	r := scanOf(t, ep, PostureOptions{ClientCert: true})
	if len(r.Versions) != 0 || len(r.Suites) != 0 || r.ClientCertRequired != nil || r.HSTS != nil {
		t.Fatalf("results from a closed port: %+v", r)
	}
	var checks []string
	for _, u := range r.Unknown {
		checks = append(checks, u.Check)
		if u.Reason != ReasonConnectionRefused {
			t.Errorf("%s: reason %s, want %s", u.Check, u.Reason, ReasonConnectionRefused)
		}
	}
	want := []string{"version:TLS 1.3", "version:TLS 1.2", "version:TLS 1.1", "version:TLS 1.0", "client_cert", "hsts"}
	if !slices.Equal(checks, want) {
		t.Errorf("unknown checks %v, want %v", checks, want)
	}
	if !strings.HasPrefix(r.Unknown[1].Detail, "not run") {
		t.Errorf("second check was attempted: %q", r.Unknown[1].Detail)
	}
}

// serveHTTPS runs an HTTPS server on 127.0.0.1 with the handler and
// returns its URL.
func serveHTTPS(t *testing.T, cert tls.Certificate, h http.Handler) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String() + "/mcp"
}

func TestPostureHSTS(t *testing.T) {
	p := newPKI(t)
	cases := []struct {
		name    string
		header  string
		status  int
		present bool
		maxAge  int64
	}{
		{"one year with includeSubDomains", "max-age=31536000; includeSubDomains", http.StatusOK, true, 31536000},
		{"on a 405 answer", `max-age="600"`, http.StatusMethodNotAllowed, true, 600},
		{"no header", "", http.StatusOK, false, 0},
		{"header without max-age is void", "includeSubDomains", http.StatusOK, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var accept string
			url := serveHTTPS(t, p.leaf.TLS(p.inter), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				accept = r.Header.Get("Accept")
				if tc.header != "" {
					w.Header().Set("Strict-Transport-Security", tc.header)
				}
				w.WriteHeader(tc.status)
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
				<-r.Context().Done() // an SSE stream that never ends: the check must not read it
			}))
			ep := config.Endpoint{Name: "hsts", URL: url, Timeout: config.Duration(10 * time.Second), TLSConfig: config.TLSConfig{CAFile: p.rootFile}}
			r := scanOf(t, ep, PostureOptions{})
			if r.HSTS == nil {
				t.Fatalf("HSTS unknown: %+v", r.Unknown)
			}
			if r.HSTS.Present != tc.present || r.HSTS.MaxAge != tc.maxAge || r.HSTS.Status != tc.status {
				t.Errorf("got %+v, want present %v max-age %d status %d", r.HSTS, tc.present, tc.maxAge, tc.status)
			}
			if accept != "text/event-stream" {
				t.Errorf("Accept %q, want text/event-stream", accept)
			}
		})
	}
}

func TestParseHSTS(t *testing.T) {
	cases := []struct {
		values            []string
		valid             bool
		maxAge            int64
		includeSubDomains bool
		preload           bool
	}{
		{[]string{"max-age=63072000; includeSubDomains; preload"}, true, 63072000, true, true},
		{[]string{"MAX-AGE = 10 ; INCLUDESUBDOMAINS"}, true, 10, true, false},
		{[]string{"max-age=0"}, true, 0, false, false},
		{[]string{"max-age=1", "max-age=999"}, true, 1, false, false}, // only the first header counts
		{[]string{"max-age=10; max-age=20"}, false, 0, false, false},
		{[]string{"max-age=abc"}, false, 0, false, false},
		{[]string{"max-age"}, false, 0, false, false},
		{[]string{"preload"}, false, 0, false, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.values), func(t *testing.T) {
			r := ParseHSTS(tc.values)
			if !r.Present || r.Valid != tc.valid || r.MaxAge != tc.maxAge || r.IncludeSubDomains != tc.includeSubDomains || r.Preload != tc.preload {
				t.Errorf("got %+v", r)
			}
		})
	}
	if r := ParseHSTS(nil); r.Present || r.Valid || r.MaxAge != 0 {
		t.Errorf("no header: %+v", r)
	}
}

// TestPostureRaw: a peer that answers every ClientHello with garbage leaves
// every version unknown rather than refused.
func TestPostureNotTLS(t *testing.T) {
	addr := rawPeer(t, func(c net.Conn) error {
		_, err := c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
		return err
	})
	r := scanOf(t, endpoint(addr, config.TLSConfig{}), PostureOptions{})
	if len(r.Versions) != 0 || len(r.Unknown) != len(scanVersions) {
		t.Fatalf("versions %+v, unknown %+v", r.Versions, r.Unknown)
	}
	for _, u := range r.Unknown {
		if u.Reason != ReasonNotTLS {
			t.Errorf("%s: %s, want %s", u.Check, u.Reason, ReasonNotTLS)
		}
	}
}
