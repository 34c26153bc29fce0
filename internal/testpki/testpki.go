// Package testpki makes certificate authorities, chains and TLS servers in
// memory for tests and the load harness. Nothing here is for production.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

var serial atomic.Int64

// Cert is a certificate with its key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Options shape a certificate. The zero value is a one-year ECDSA P-256 leaf
// for localhost and 127.0.0.1.
type Options struct {
	CN        string
	DNSNames  []string
	IPs       []net.IP
	NotBefore time.Time
	NotAfter  time.Time
	IsCA      bool
	Client    bool // extended key usage clientAuth instead of serverAuth
	RSABits   int  // RSA key of this size instead of ECDSA P-256
	Key       crypto.Signer
	Template  func(*x509.Certificate)
}

// NewKey makes an ECDSA P-256 key, or RSA of the given size.
func NewKey(rsaBits int) crypto.Signer {
	if rsaBits > 0 {
		k, err := rsa.GenerateKey(rand.Reader, rsaBits)
		must(err)
		return k
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	return k
}

// NewCA makes a self-signed root.
func NewCA(cn string) *Cert {
	return issue(nil, Options{CN: cn, IsCA: true})
}

// SelfSigned makes a certificate signed by its own key: a root shaped by o
// when o.IsCA is set, else a self-signed leaf.
func SelfSigned(o Options) *Cert { return issue(nil, o) }

// Issue signs a certificate with this CA.
func (ca *Cert) Issue(o Options) *Cert { return issue(ca, o) }

// Intermediate signs a sub-CA.
func (ca *Cert) Intermediate(cn string) *Cert { return issue(ca, Options{CN: cn, IsCA: true}) }

// Leaf signs a server certificate for localhost and 127.0.0.1.
func (ca *Cert) Leaf(cn string) *Cert { return issue(ca, Options{CN: cn}) }

func issue(parent *Cert, o Options) *Cert {
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(365 * 24 * time.Hour)
	}
	if o.CN == "" {
		o.CN = "localhost"
	}
	if !o.IsCA && o.DNSNames == nil && o.IPs == nil {
		o.DNSNames = []string{"localhost"}
		o.IPs = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	key := o.Key
	if key == nil {
		key = NewKey(o.RSABits)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000 + serial.Add(1)),
		Subject:               pkix.Name{CommonName: o.CN, Organization: []string{"mcp_cert_exporter tests"}},
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		BasicConstraintsValid: true,
		IsCA:                  o.IsCA,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if o.IsCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		tmpl.ExtKeyUsage = nil
	}
	if o.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if o.Template != nil {
		o.Template(tmpl)
	}
	signer, issuerCert := key, tmpl
	if parent != nil {
		signer, issuerCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuerCert, key.Public(), signer)
	must(err)
	c, err := x509.ParseCertificate(der)
	must(err)
	return &Cert{Cert: c, Key: key}
}

// TLS pairs the certificate with the chain to send after it.
func (c *Cert) TLS(chain ...*Cert) tls.Certificate {
	out := tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
	for _, ic := range chain {
		out.Certificate = append(out.Certificate, ic.Cert.Raw)
	}
	return out
}

// PEM encodes the certificate.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// KeyPEM encodes the private key as PKCS#8.
func (c *Cert) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	must(err)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Pool is a cert pool holding these certificates.
func Pool(certs ...*Cert) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c.Cert)
	}
	return p
}

// Bundle concatenates the PEM of several certificates.
func Bundle(certs ...*Cert) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c.PEM()...)
	}
	return out
}

// WriteFile writes data under dir with mode 0600 and returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Serve starts a TLS server on 127.0.0.1 that completes the handshake and
// then echoes nothing, closing when the test ends. It returns host:port.
func Serve(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return acceptLoop(t, ln, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.(*tls.Conn).Handshake(); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
	})
}

// GoodAndExpired starts two TLS servers whose chains lead to one root: one
// valid for good.test, one whose leaf expired.test expired a day ago. It
// returns the root's PEM file and both addresses.
func GoodAndExpired(t testing.TB) (caFile, good, expired string) {
	t.Helper()
	ca := NewCA("Test Root")
	inter := ca.Intermediate("Test Intermediate")
	ok := inter.Leaf("good.test")
	old := inter.Issue(Options{CN: "expired.test", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	return WriteFile(t, t.TempDir(), "ca.pem", ca.PEM()),
		Serve(t, &tls.Config{Certificates: []tls.Certificate{ok.TLS(inter)}}),
		Serve(t, &tls.Config{Certificates: []tls.Certificate{old.TLS(inter)}})
}

// ClosedAddr is a 127.0.0.1 port that was free when picked, for peers that
// must not answer.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ServeRaw accepts TCP on 127.0.0.1 and hands each connection to handle, for peers that misbehave.
func ServeRaw(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return acceptLoop(t, ln, handle)
}

// acceptLoop serves ln until the test ends, each connection on its own
// goroutine and closed after handle returns.
func acceptLoop(t testing.TB, ln net.Listener, handle func(net.Conn)) string {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
