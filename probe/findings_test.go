package probe

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// short keeps a test leaf inside every CA/B Forum validity limit, so that
// VALIDITY_TOO_LONG only shows where a case asks for it.
func short(o testpki.Options) testpki.Options {
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(30 * 24 * time.Hour)
	}
	return o
}

func withTemplate(o testpki.Options, f func(*x509.Certificate)) testpki.Options {
	o.Template = f
	return o
}

// mustStapleExt is the TLS feature extension asking for status_request.
func mustStapleExt(c *x509.Certificate) {
	v, err := asn1.Marshal([]int{tlsFeatureStatusRequest})
	if err != nil {
		panic(err)
	}
	c.ExtraExtensions = append(c.ExtraExtensions, pkix.Extension{Id: oidTLSFeature, Value: v})
}

// staple signs an OCSP response for leaf with signer (the issuer or a
// delegated responder issued by it).
func staple(t *testing.T, issuer, signer, leaf *testpki.Cert, status int, nextUpdate time.Time) []byte {
	t.Helper()
	tmpl := ocsp.Response{
		Status: status, SerialNumber: leaf.Cert.SerialNumber, ThisUpdate: time.Now().Add(-time.Hour),
		NextUpdate: nextUpdate, RevokedAt: time.Now().Add(-time.Minute),
	}
	if signer != issuer {
		tmpl.Certificate = signer.Cert // a delegated responder sends its certificate along
	}
	der, err := ocsp.CreateResponse(issuer.Cert, signer.Cert, tmpl, signer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// stapleSpec shapes a served leaf and its staple; zero fields mean a good
// response signed by the intermediate that issued the leaf, valid a week.
type stapleSpec struct {
	opts           testpki.Options
	issuer, signer *testpki.Cert
	status         int
	next           time.Time
	leafOnly       bool // serve the leaf without its intermediate
}

type findingCase struct {
	name  string
	serve func(t *testing.T, p *pki) (tls.Certificate, string) // the certificate served, and ca_file
	want  map[int][]Finding                                    // by index in TLSResult.Certificates; others must have none
	ocsp  string                                               // "" : nothing stapled
}

func TestFindingsFromServers(t *testing.T) {
	p := newPKI(t)
	bundle := testpki.WriteFile(t, p.dir, "root+inter.pem", testpki.Bundle(p.root, p.inter))
	leaf := func(o testpki.Options) *testpki.Cert { return p.inter.Issue(short(o)) }
	responder := leaf(withTemplate(testpki.Options{CN: "OCSP responder"}, func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	}))
	notResponder := leaf(testpki.Options{CN: "not a responder"})
	stapled := func(s stapleSpec) func(*testing.T, *pki) (tls.Certificate, string) {
		return func(t *testing.T, p *pki) (tls.Certificate, string) {
			l := leaf(s.opts)
			c := l.TLS(p.inter)
			if s.leafOnly {
				c = l.TLS()
			}
			c.OCSPStaple = staple(t, cmp.Or(s.issuer, p.inter), cmp.Or(s.signer, p.inter), l, cmp.Or(s.status, ocsp.Good),
				cmp.Or(s.next, time.Now().Add(7*24*time.Hour)))
			return c, p.rootFile
		}
	}
	cases := []findingCase{
		{
			name: "clean chain: no finding",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				return leaf(testpki.Options{}).TLS(p.inter), p.rootFile
			},
		},
		{
			name: "WEAK_KEY: 1024-bit RSA leaf",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				return leaf(testpki.Options{RSABits: 1024}).TLS(p.inter), p.rootFile
			},
			want: map[int][]Finding{0: {FindingWeakKey}},
		},
		{
			name: "WEAK_KEY on an intermediate",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				weak := p.root.Issue(testpki.Options{CN: "Weak Intermediate", IsCA: true, RSABits: 1024, NotBefore: p.inter.Cert.NotBefore})
				return weak.Issue(short(testpki.Options{})).TLS(weak), p.rootFile
			},
			want: map[int][]Finding{1: {FindingWeakKey}},
		},
		{
			name: "WEAK_SIGNATURE: leaf signed with ECDSA-SHA1",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				return leaf(withTemplate(testpki.Options{}, func(c *x509.Certificate) { c.SignatureAlgorithm = x509.ECDSAWithSHA1 })).TLS(p.inter), p.rootFile
			},
			want: map[int][]Finding{0: {FindingWeakSignature}},
		},
		{
			name: "NO_SAN: CN only",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				return leaf(testpki.Options{CN: "127.0.0.1", DNSNames: []string{}}).TLS(p.inter), p.rootFile
			},
			want: map[int][]Finding{0: {FindingNoSAN}},
		},
		{
			name: "SELF_SIGNED leaf",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				return testpki.SelfSigned(short(testpki.Options{})).TLS(), p.rootFile
			},
			want: map[int][]Finding{0: {FindingSelfSigned}},
		},
		{
			name: "CHAIN_ORDER: root sent before the intermediate",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				return leaf(testpki.Options{}).TLS(p.root, p.inter), p.rootFile
			},
			want: map[int][]Finding{0: {FindingChainOrder}},
		},
		{
			name: "INCOMPLETE_CHAIN: verifies only through an intermediate from ca_file",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				return leaf(testpki.Options{}).TLS(), bundle
			},
			want: map[int][]Finding{0: {FindingIncompleteChain}},
		},
		{
			name: "INCOMPLETE_CHAIN: intermediate missing, the leaf names its issuer's URL",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				return leaf(withTemplate(testpki.Options{}, func(c *x509.Certificate) {
					c.IssuingCertificateURL = []string{"http://ca.example/inter.der"}
				})).TLS(), p.rootFile
			},
			want: map[int][]Finding{0: {FindingIncompleteChain}},
		},
		{
			name: "a leaf from an untrusted private CA without AIA is not an incomplete chain",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				return leaf(testpki.Options{}).TLS(), p.rootFile
			},
		},
		{
			name: "MUST_STAPLE_MISSING",
			serve: func(t *testing.T, p *pki) (tls.Certificate, string) {
				return leaf(withTemplate(testpki.Options{}, mustStapleExt)).TLS(p.inter), p.rootFile
			},
			want: map[int][]Finding{0: {FindingMustStapleMissing}},
		},
		{name: "Must-Staple with a good staple", serve: stapled(stapleSpec{opts: withTemplate(testpki.Options{}, mustStapleExt)}), ocsp: OCSPGood},
		{name: "revoked staple", serve: stapled(stapleSpec{status: ocsp.Revoked}), ocsp: OCSPRevoked},
		{name: "staple signed by a key that is not the issuer's", serve: stapled(stapleSpec{issuer: p.root, signer: p.root}), ocsp: OCSPInvalid},
		{name: "out-of-date staple", serve: stapled(stapleSpec{next: time.Now().Add(-time.Minute)}), ocsp: OCSPInvalid},
		{name: "staple from a delegated responder with the OCSP signing usage", serve: stapled(stapleSpec{signer: responder}), ocsp: OCSPGood},
		{name: "staple from a delegated responder without the OCSP signing usage", serve: stapled(stapleSpec{signer: notResponder}), ocsp: OCSPInvalid},
		{name: "staple with no issuer at hand cannot be checked", serve: stapled(stapleSpec{leafOnly: true}), ocsp: OCSPUnverified},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert, caFile := tc.serve(t, p)
			target, err := NewTarget(endpoint(serve(t, cert, nil), config.TLSConfig{CAFile: caFile}))
			if err != nil {
				t.Fatal(err)
			}
			r := target.Probe(context.Background())
			if len(r.Certificates) == 0 {
				t.Fatalf("no certificate: %s %s", r.Reason, r.Detail)
			}
			for i := range r.Certificates {
				c := &r.Certificates[i]
				if got := c.Findings; !slices.Equal(got, tc.want[i]) {
					t.Errorf("certificate %d (%s %s): findings %v, want %v", i, c.Role, c.SubjectCN, got, tc.want[i])
				}
			}
			tc.checkOCSP(t, r.OCSP)
		})
	}
}

func (tc *findingCase) checkOCSP(t *testing.T, o *OCSPInfo) {
	t.Helper()
	if o == nil {
		t.Fatal("no OCSP verdict")
	}
	if o.Stapled != (tc.ocsp != "") || o.Status != tc.ocsp {
		t.Fatalf("stapled %v status %q (%s), want %q", o.Stapled, o.Status, o.Detail, tc.ocsp)
	}
	checked := o.Status == OCSPGood || o.Status == OCSPRevoked || o.Status == OCSPUnknown
	if checked == o.NextUpdate.IsZero() && o.Status != OCSPInvalid {
		t.Errorf("status %s with next update %v", o.Status, o.NextUpdate)
	}
	if (o.Status == OCSPInvalid || o.Status == OCSPUnverified) && o.Detail == "" {
		t.Error("no detail for an unusable staple")
	}
}

func TestFindingsHaveRemedies(t *testing.T) {
	for _, f := range Findings {
		if f.Remedy() == "" || f.When() == "" {
			t.Errorf("%s lacks its documentation", f)
		}
	}
	if len(findingDocs) != len(Findings) {
		t.Error("a finding is documented but not listed")
	}
}
