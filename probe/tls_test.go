package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"golang.org/x/sys/unix"
)

// pki is the set of certificates the probe tests serve and trust.
type pki struct {
	dir      string
	root     *testpki.Cert
	inter    *testpki.Cert
	leaf     *testpki.Cert // localhost, 127.0.0.1; issued by inter
	rootFile string        // ca_file trusting root

	clientCA   *testpki.Cert
	clientCert string // cert_file and key_file of a client certificate clientCA issued
	clientKey  string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	// CAs predate their leaves, as real ones do, so that a leaf expired
	// yesterday still has a moment when its whole chain was valid.
	yearAgo := time.Now().AddDate(-1, 0, 0)
	p := &pki{dir: dir, root: testpki.SelfSigned(testpki.Options{CN: "Test Root", IsCA: true, NotBefore: yearAgo})}
	p.inter = p.root.Issue(testpki.Options{CN: "Test Intermediate", IsCA: true, NotBefore: yearAgo})
	p.leaf = p.inter.Leaf("localhost")
	p.rootFile = testpki.WriteFile(t, dir, "root.pem", p.root.PEM())
	p.clientCA = testpki.NewCA("Test Client CA")
	client := p.clientCA.Issue(testpki.Options{CN: "probe client", Client: true})
	p.clientCert = testpki.WriteFile(t, dir, "client.crt", client.PEM())
	p.clientKey = testpki.WriteFile(t, dir, "client.key", client.KeyPEM())
	return p
}

// serve starts a TLS server with cert and applies mod to its config.
func serve(t *testing.T, cert tls.Certificate, mod func(*tls.Config)) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if mod != nil {
		mod(cfg)
	}
	return testpki.Serve(t, cfg)
}

// requireClientCert makes a server demand a certificate from ca, at one TLS version.
func requireClientCert(ca *testpki.Cert, version uint16) func(*tls.Config) {
	return func(c *tls.Config) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = testpki.Pool(ca)
		c.MinVersion, c.MaxVersion = version, version
	}
}

func versions(min, max uint16) func(*tls.Config) {
	return func(c *tls.Config) { c.MinVersion, c.MaxVersion = min, max }
}

func endpoint(addr string, tc config.TLSConfig) config.Endpoint {
	return config.Endpoint{Name: "test", Address: addr, Timeout: config.Duration(10 * time.Second), TLSConfig: tc}
}

// readClientHello reads the whole first record, so that closing afterwards
// sends a FIN rather than a reset for unread data.
func readClientHello(c net.Conn) error {
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(hdr[3:])))
	return err
}

// rawPeer serves TCP peers that read the ClientHello and then act.
func rawPeer(t *testing.T, then func(net.Conn) error) string {
	return testpki.ServeRaw(t, func(c net.Conn) {
		if err := readClientHello(c); err != nil {
			t.Errorf("reading ClientHello: %v", err)
			return
		}
		if err := then(c); err != nil {
			t.Errorf("raw peer: %v", err)
		}
	})
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

type probeCase struct {
	name     string
	endpoint func(t *testing.T, p *pki) config.Endpoint

	reason        Reason
	success       bool
	verified      bool
	certRequested bool
	version       uint16   // 0: not checked
	roles         []string // nil: not checked
	check         func(t *testing.T, p *pki, r *TLSResult)
}

func TestProbe(t *testing.T) {
	p := newPKI(t)
	trustRoot := config.TLSConfig{CAFile: p.rootFile}
	mtls := config.TLSConfig{CAFile: p.rootFile, CertFile: p.clientCert, KeyFile: p.clientKey}
	fullChain := p.leaf.TLS(p.inter)
	now := time.Now()

	cases := []probeCase{
		{
			name: "verified chain: leaf, intermediate and the root from ca_file",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, nil), trustRoot)
			},
			success: true, verified: true, version: tls.VersionTLS13,
			roles: []string{RoleLeaf, RoleIntermediate, RoleRoot},
			check: func(t *testing.T, p *pki, r *TLSResult) {
				wantCerts(t, r, p.leaf, p.inter, p.root)
				if r.CipherSuite == 0 || r.Phases.Handshake == 0 || r.Phases.Connect == 0 {
					t.Errorf("cipher %#x, phases %+v: want all set", r.CipherSuite, r.Phases)
				}
				if r.Phases.DNS != 0 {
					t.Errorf("DNS phase %v for an IP literal, want 0", r.Phases.DNS)
				}
			},
		},
		{
			name: "a sent root is listed once",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, p.leaf.TLS(p.inter, p.root), nil), trustRoot)
			},
			success: true, verified: true,
			roles: []string{RoleLeaf, RoleIntermediate, RoleRoot},
		},
		{
			name: "a certificate sent twice is listed once",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, p.leaf.TLS(p.inter, p.inter), nil), trustRoot)
			},
			success: true, verified: true,
			roles: []string{RoleLeaf, RoleIntermediate, RoleRoot},
		},
		{
			name: "server_name sets the verification name",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				leaf := p.inter.Issue(testpki.Options{CN: "mcp.example", DNSNames: []string{"mcp.example"}})
				return endpoint(serve(t, leaf.TLS(p.inter), nil), config.TLSConfig{CAFile: p.rootFile, ServerName: "mcp.example"})
			},
			success: true, verified: true,
		},
		{
			name: "legacy TLS 1.0 server is reported, not refused",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, versions(tls.VersionTLS10, tls.VersionTLS10)), trustRoot)
			},
			success: true, verified: true, version: tls.VersionTLS10,
		},
		{
			name: "insecure cipher suite is offered and reported",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, func(c *tls.Config) {
					c.MaxVersion = tls.VersionTLS12
					c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}
				}), trustRoot)
			},
			success: true, verified: true, version: tls.VersionTLS12,
			check: func(t *testing.T, _ *pki, r *TLSResult) {
				if r.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 {
					t.Errorf("cipher %s", tls.CipherSuiteName(r.CipherSuite))
				}
			},
		},
		{
			name: "mTLS with a client certificate from files, TLS 1.3",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, requireClientCert(p.clientCA, tls.VersionTLS13)), mtls)
			},
			success: true, verified: true, certRequested: true, version: tls.VersionTLS13,
		},
		{
			name: "mTLS with a client certificate from files, TLS 1.2",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, requireClientCert(p.clientCA, tls.VersionTLS12)), mtls)
			},
			success: true, verified: true, certRequested: true, version: tls.VersionTLS12,
		},
		{
			name: "mTLS server that sends no session ticket: silence means accepted",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, func(c *tls.Config) {
					requireClientCert(p.clientCA, tls.VersionTLS13)(c)
					c.SessionTicketsDisabled = true
				}), mtls)
			},
			success: true, verified: true, certRequested: true, version: tls.VersionTLS13,
		},
		{
			name: "optional client certificate: asked for, none configured, accepted",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, func(c *tls.Config) {
					requireClientCert(p.clientCA, tls.VersionTLS13)(c)
					c.ClientAuth = tls.VerifyClientCertIfGiven
				}), trustRoot)
			},
			success: true, verified: true, certRequested: true, version: tls.VersionTLS13,
		},
		{
			name: "insecure_skip_verify still verifies and reports",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, nil), config.TLSConfig{InsecureSkipVerify: true, CAFile: otherCAFile(t)})
			},
			reason: ReasonVerifyFailed, success: true,
			roles: []string{RoleLeaf, RoleIntermediate},
			check: func(t *testing.T, _ *pki, r *TLSResult) {
				if !r.InsecureSkipVerify {
					t.Error("InsecureSkipVerify not echoed")
				}
			},
		},
		{
			name: "CERTIFICATE_EXPIRED: leaf expired yesterday",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				leaf := p.inter.Issue(testpki.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
				return endpoint(serve(t, leaf.TLS(p.inter), nil), trustRoot)
			},
			reason: ReasonCertificateExpired, success: true,
			roles: []string{RoleLeaf, RoleIntermediate, RoleRoot},
			check: func(t *testing.T, _ *pki, r *TLSResult) {
				na := r.Certificates[0].NotAfter
				if want := now.Add(-24 * time.Hour).Truncate(time.Second); !na.Equal(want) {
					t.Errorf("leaf NotAfter %v, want %v", na, want)
				}
				if time.Until(na) >= 0 {
					t.Errorf("expiry %v, want negative", time.Until(na))
				}
			},
		},
		{
			name: "CERTIFICATE_EXPIRED: intermediate expired",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				inter := p.root.Issue(testpki.Options{CN: "Old Intermediate", IsCA: true,
					NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
				leaf := inter.Issue(testpki.Options{NotBefore: now.Add(-36 * time.Hour)})
				return endpoint(serve(t, leaf.TLS(inter), nil), trustRoot)
			},
			reason: ReasonCertificateExpired, success: true,
		},
		{
			name: "CERTIFICATE_EXPIRED: leaf expired before its reissued intermediate began",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				reissued := p.root.Issue(testpki.Options{CN: "Test Intermediate", IsCA: true, Key: p.inter.Key})
				leaf := p.inter.Issue(testpki.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
				return endpoint(serve(t, leaf.TLS(reissued), nil), trustRoot)
			},
			reason: ReasonCertificateExpired, success: true,
		},
		{
			name: "CERTIFICATE_NOT_YET_VALID",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				leaf := p.inter.Issue(testpki.Options{NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)})
				return endpoint(serve(t, leaf.TLS(p.inter), nil), trustRoot)
			},
			reason: ReasonCertificateNotYetValid, success: true,
		},
		{
			name: "HOSTNAME_MISMATCH",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				leaf := p.inter.Issue(testpki.Options{CN: "other.example", DNSNames: []string{"other.example"}})
				return endpoint(serve(t, leaf.TLS(p.inter), nil), trustRoot)
			},
			reason: ReasonHostnameMismatch, success: true,
			roles: []string{RoleLeaf, RoleIntermediate, RoleRoot},
		},
		{
			name: "CERTIFICATE_VERIFY_FAILED: unknown CA",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, nil), config.TLSConfig{CAFile: otherCAFile(t)})
			},
			reason: ReasonVerifyFailed, success: true,
			roles: []string{RoleLeaf, RoleIntermediate},
		},
		{
			name: "CERTIFICATE_VERIFY_FAILED: missing intermediate",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, p.leaf.TLS(), nil), trustRoot)
			},
			reason: ReasonVerifyFailed, success: true,
			roles: []string{RoleLeaf},
		},
		{
			name: "CERTIFICATE_VERIFY_FAILED: untrusted self-signed root sent along",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, p.leaf.TLS(p.inter, p.root), nil), config.TLSConfig{CAFile: otherCAFile(t)})
			},
			reason: ReasonVerifyFailed, success: true,
			roles: []string{RoleLeaf, RoleIntermediate, RoleRoot},
		},
		{
			name: "CERTIFICATE_VERIFY_FAILED outranks expiry when renewing would not help",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				other := testpki.NewCA("Unknown CA")
				leaf := other.Issue(testpki.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
				return endpoint(serve(t, leaf.TLS(), nil), trustRoot)
			},
			reason: ReasonVerifyFailed, success: true,
		},
		{
			name: "CLIENT_CERT_REQUIRED: TLS 1.2 server, no client certificate",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, requireClientCert(p.clientCA, tls.VersionTLS12)), trustRoot)
			},
			reason: ReasonClientCertRequired, verified: true, certRequested: true, version: tls.VersionTLS12,
			roles: []string{RoleLeaf, RoleIntermediate, RoleRoot},
		},
		{
			name: "CLIENT_CERT_REQUIRED: TLS 1.3 server, no client certificate",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, requireClientCert(p.clientCA, tls.VersionTLS13)), trustRoot)
			},
			reason: ReasonClientCertRequired, verified: true, certRequested: true, version: tls.VersionTLS13,
			roles: []string{RoleLeaf, RoleIntermediate, RoleRoot},
		},
		{
			name: "CLIENT_CERT_REQUIRED: TLS 1.3 server rejects our certificate",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, requireClientCert(testpki.NewCA("Another Client CA"), tls.VersionTLS13)), mtls)
			},
			reason: ReasonClientCertRequired, verified: true, certRequested: true, version: tls.VersionTLS13,
		},
		{
			name: "CLIENT_CERT_REQUIRED: TLS 1.2 server rejects our certificate",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(serve(t, fullChain, requireClientCert(testpki.NewCA("Another Client CA"), tls.VersionTLS12)), mtls)
			},
			reason: ReasonClientCertRequired, verified: true, certRequested: true, version: tls.VersionTLS12,
		},
		{
			name: "CLIENT_CERT_REQUIRED: client certificate files unusable",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				wrongKey := testpki.WriteFile(t, t.TempDir(), "wrong.key", p.leaf.KeyPEM())
				tc := config.TLSConfig{CAFile: p.rootFile, CertFile: p.clientCert, KeyFile: wrongKey}
				return endpoint(serve(t, fullChain, requireClientCert(p.clientCA, tls.VersionTLS13)), tc)
			},
			reason: ReasonClientCertRequired, verified: true, certRequested: true,
			check: func(t *testing.T, p *pki, r *TLSResult) {
				if !strings.Contains(r.Detail, "loading client certificate") || strings.Contains(r.Detail, "PRIVATE KEY") {
					t.Errorf("detail %q: want the load error, without key material", r.Detail)
				}
			},
		},
		{
			name: "NO_SHARED_CIPHER: TLS 1.2 server, min_version TLS13",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				tc := trustRoot
				tc.MinVersion = tls.VersionTLS13
				return endpoint(serve(t, fullChain, versions(tls.VersionTLS12, tls.VersionTLS12)), tc)
			},
			reason: ReasonNoSharedCipher,
		},
		{
			name: "DNS_FAILURE",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint("nonexistent.invalid:443", trustRoot)
			},
			reason: ReasonDNSFailure,
		},
		{
			name: "CONNECTION_REFUSED",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(closedPort(t), trustRoot)
			},
			reason: ReasonConnectionRefused,
		},
		{
			name: "CONNECTION_RESET",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(rawPeer(t, func(c net.Conn) error { return c.(*net.TCPConn).SetLinger(0) }), trustRoot)
			},
			reason: ReasonConnectionReset,
		},
		{
			name: "TIMEOUT: the peer accepts and never answers",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				addr := testpki.ServeRaw(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
				ep := endpoint(addr, trustRoot)
				ep.Timeout = config.Duration(200 * time.Millisecond)
				return ep
			},
			reason: ReasonTimeout,
		},
		{
			name: "NOT_TLS: plain HTTP on the port",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(rawPeer(t, func(c net.Conn) error {
					_, err := io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
					return err
				}), trustRoot)
			},
			reason: ReasonNotTLS,
		},
		{
			name: "HANDSHAKE_FAILURE: the peer hangs up without a word",
			endpoint: func(t *testing.T, p *pki) config.Endpoint {
				return endpoint(rawPeer(t, func(net.Conn) error { return nil }), trustRoot)
			},
			reason: ReasonHandshakeFailure,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target, err := NewTarget(tc.endpoint(t, p))
			if err != nil {
				t.Fatal(err)
			}
			r := target.Probe(context.Background())
			t.Logf("reason %q detail %q", r.Reason, r.Detail)
			tc.assert(t, p, r)
		})
	}
}

func (tc *probeCase) assert(t *testing.T, p *pki, r *TLSResult) {
	t.Helper()
	if r.Reason != tc.reason || r.Success != tc.success || r.Verified != tc.verified {
		t.Errorf("reason %q success %v verified %v (detail %q), want %q %v %v",
			r.Reason, r.Success, r.Verified, r.Detail, tc.reason, tc.success, tc.verified)
	}
	if (r.Reason == ReasonNone) != (r.Detail == "") {
		t.Errorf("reason %q with detail %q: want a detail exactly when there is a reason", r.Reason, r.Detail)
	}
	if r.ClientCertRequested != tc.certRequested {
		t.Errorf("ClientCertRequested %v, want %v", r.ClientCertRequested, tc.certRequested)
	}
	if tc.version != 0 && r.Version != tc.version {
		t.Errorf("version %s, want %s", tls.VersionName(r.Version), tls.VersionName(tc.version))
	}
	if r.Time.IsZero() {
		t.Error("Time not set")
	}
	if tc.roles != nil {
		if got := rolesOf(r.Certificates); !slices.Equal(got, tc.roles) {
			t.Errorf("roles %v, want %v", got, tc.roles)
		}
	}
	if tc.check != nil {
		tc.check(t, p, r)
	}
}

func rolesOf(certs []CertInfo) []string {
	roles := make([]string, len(certs))
	for i, c := range certs {
		roles[i] = c.Role
	}
	return roles
}

func wantCerts(t *testing.T, r *TLSResult, want ...*testpki.Cert) {
	t.Helper()
	if len(r.Certificates) != len(want) {
		t.Fatalf("%d certificates, want %d", len(r.Certificates), len(want))
	}
	for i, w := range want {
		if got := r.Certificates[i]; got.SubjectCN != w.Cert.Subject.CommonName || !got.NotAfter.Equal(w.Cert.NotAfter) {
			t.Errorf("certificate %d: %s until %v, want %s until %v", i, got.SubjectCN, got.NotAfter,
				w.Cert.Subject.CommonName, w.Cert.NotAfter)
		}
	}
}

// otherCAFile is a ca_file trusting a CA that issued nothing we serve.
func otherCAFile(t *testing.T) string {
	return testpki.WriteFile(t, t.TempDir(), "other.pem", testpki.NewCA("Other CA").PEM())
}

// TestClientCertRotation replaces the client certificate on disk between
// probes, in place and by rename as Kubernetes does, and checks that the
// server sees the new one without a new Target.
func TestClientCertRotation(t *testing.T) {
	p := newPKI(t)
	seen := make(chan string, 4)
	addr := serve(t, p.leaf.TLS(p.inter), func(c *tls.Config) {
		requireClientCert(p.clientCA, tls.VersionTLS13)(c)
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			seen <- cs.PeerCertificates[0].Subject.CommonName
			return nil
		}
	})
	dir := t.TempDir()
	// Files are padded to one size, so that only the mtime or the inode
	// can tell a rotation; PEM readers skip the trailing newlines.
	padded := func(b []byte) []byte { return append(b, bytes.Repeat([]byte("\n"), 4096-len(b))...) }
	write := func(name string, cert *testpki.Cert, mtime time.Time) (string, string) {
		crt := testpki.WriteFile(t, dir, name+".crt", padded(cert.PEM()))
		key := testpki.WriteFile(t, dir, name+".key", padded(cert.KeyPEM()))
		for _, f := range []string{crt, key} {
			if err := os.Chtimes(f, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
		return crt, key
	}
	issue := func(cn string) *testpki.Cert {
		return p.clientCA.Issue(testpki.Options{CN: cn, Client: true})
	}
	start := time.Now().Add(-time.Hour)
	crt, key := write("client", issue("first"), start)
	target, err := NewTarget(endpoint(addr, config.TLSConfig{CAFile: p.rootFile, CertFile: crt, KeyFile: key}))
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name   string
		rotate func() string // returns the CN now on disk
	}{
		{"first read", func() string { return "first" }},
		{"unchanged", func() string { return "first" }},
		{"rewritten in place", func() string {
			write("client", issue("second"), start.Add(time.Minute))
			return "second"
		}},
		{"renamed over, same size and mtime", func() string {
			newCrt, newKey := write("new", issue("third"), start.Add(time.Minute))
			for from, to := range map[string]string{newCrt: crt, newKey: key} {
				if err := os.Rename(from, to); err != nil {
					t.Fatal(err)
				}
			}
			return "third"
		}},
	}
	for _, s := range steps {
		want := s.rotate()
		r := target.Probe(context.Background())
		if r.Reason != ReasonNone {
			t.Fatalf("%s: reason %s: %s", s.name, r.Reason, r.Detail)
		}
		if got := <-seen; got != want {
			t.Errorf("%s: server saw client certificate %q, want %q", s.name, got, want)
		}
	}
}

func TestNewTargetErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := testpki.WriteFile(t, dir, "not.pem", []byte("not a certificate"))
	cases := []struct {
		name string
		ep   config.Endpoint
		want string
	}{
		{"missing ca_file", endpoint("127.0.0.1:443", config.TLSConfig{CAFile: filepath.Join(dir, "missing.pem")}), "missing.pem"},
		{"ca_file without certificates", endpoint("127.0.0.1:443", config.TLSConfig{CAFile: notPEM}), "holds no PEM certificate"},
		{"address without port", endpoint("127.0.0.1", config.TLSConfig{}), "missing port"},
		{"port out of range", endpoint("127.0.0.1:70000", config.TLSConfig{}), "70000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTarget(tc.ep)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// benchServer is a local TLS 1.3 server with an ECDSA P-256 chain, and the
// ca_file that trusts it.
func benchServer(b *testing.B) (addr, caFile string, roots *x509.CertPool) {
	ca := testpki.NewCA("Bench Root")
	leaf := ca.Leaf("localhost")
	addr = testpki.Serve(b, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
	return addr, testpki.WriteFile(b, b.TempDir(), "ca.pem", ca.PEM()), testpki.Pool(ca)
}

// BenchmarkProbe and BenchmarkBareHandshake run against the same kind of
// server, so their ratio is the probe's overhead over the floor.
func BenchmarkProbe(b *testing.B) {
	addr, caFile, _ := benchServer(b)
	target, err := NewTarget(endpoint(addr, config.TLSConfig{CAFile: caFile}))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if r := target.Probe(context.Background()); !r.Verified {
			b.Fatalf("%s: %s", r.Reason, r.Detail)
		}
	}
}

func BenchmarkBareHandshake(b *testing.B) {
	addr, _, roots := benchServer(b)
	d := &tls.Dialer{Config: &tls.Config{RootCAs: roots}, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		c, err := d.DialContext(context.Background(), "tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU adds the process CPU time per operation, client and in-process
// server together: with two cores, ns/op is wall time and hides the CPU.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() { b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A certificate probe that ends at the handshake sends its last flight with
// its close_notify: the server receives two segments with data (the
// ClientHello, then Finished and close_notify), counted by the kernel
// (TCP_INFO), and as many bytes as from a handshake closed at once, which
// sends the same records in three: the close_notify is not lost.
func TestProbeSendsFinishedWithCloseNotify(t *testing.T) {
	p := newPKI(t)
	type seen struct {
		segments, bytes uint64
		err             error
	}
	got := make(chan seen, 1)
	cfg := &tls.Config{Certificates: []tls.Certificate{p.leaf.TLS(p.inter)}}
	addr := testpki.ServeRaw(t, func(c net.Conn) {
		counted := &countingConn{Conn: c}
		s := tls.Server(counted, cfg)
		_ = s.SetDeadline(time.Now().Add(5 * time.Second))
		err := s.Handshake()
		if err == nil {
			_, err = io.Copy(io.Discard, s)
		}
		var info *unix.TCPInfo
		raw, _ := c.(*net.TCPConn).SyscallConn()
		_ = raw.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
		if err != nil {
			got <- seen{err: err}
			return
		}
		got <- seen{segments: uint64(info.Data_segs_in), bytes: counted.n} // TCP_INFO's bytes would count a FIN
	})
	target, err := NewTarget(endpoint(addr, config.TLSConfig{CAFile: p.rootFile}))
	if err != nil {
		t.Fatal(err)
	}
	var bytes []uint64
	for _, tc := range []struct {
		name     string
		segments uint64
		run      func() bool
	}{
		{"probe", 2, func() bool { return target.Probe(context.Background()).Verified }},
		{"handshake closed at once", 3, func() bool {
			cfg := target.TLSConfig()
			cfg.CurvePreferences = classicalGroups // as the probe's
			conn, res := target.Handshake(context.Background(), cfg)
			if conn != nil {
				_ = conn.Close()
			}
			return res.Verified
		}},
	} {
		if !tc.run() {
			t.Fatalf("%s: not verified", tc.name)
		}
		s := <-got
		if s.err != nil || s.segments != tc.segments {
			t.Errorf("%s: server received %d segments with data, want %d; %v", tc.name, s.segments, tc.segments, s.err)
		}
		bytes = append(bytes, s.bytes)
	}
	if bytes[0] != bytes[1] {
		t.Errorf("the server received %d bytes from the probe, %d from a handshake closed at once", bytes[0], bytes[1])
	}
}

// countingConn counts the bytes read through it.
type countingConn struct {
	net.Conn
	n uint64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n += uint64(n)
	return n, err
}

// A canceled probe (a reload, the stop) ends its handshake at once, not at
// the endpoint's timeout: the peer here never answers and the timeout is an
// hour, so a probe that ignored the cancel would hang the test.
func TestProbeEndsWhenCanceled(t *testing.T) {
	addr := testpki.ServeRaw(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	ep := endpoint(addr, config.TLSConfig{})
	ep.Timeout = config.Duration(time.Hour)
	target, err := NewTarget(ep)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	r := target.Probe(ctx)
	if r.Success || r.Reason != ReasonTimeout || !strings.Contains(r.Detail, context.Canceled.Error()) {
		t.Errorf("canceled probe: success %v, %s: %s", r.Success, r.Reason, r.Detail)
	}
}
