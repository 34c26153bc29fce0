package probe

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"testing"
	"unsafe"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

func TestCertInfoOf(t *testing.T) {
	ca := testpki.NewCA("Info CA")
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	withSerial := func(hex string) func(*x509.Certificate) {
		return func(c *x509.Certificate) {
			c.SerialNumber, _ = new(big.Int).SetString(hex, 16)
		}
	}
	cases := []struct {
		name     string
		opts     testpki.Options
		keyType  string
		keyBits  int
		sigAlg   string
		serial   string
		sans     []string
		issuerCN string
	}{
		{
			name: "RSA 2048 with every kind of SAN",
			opts: testpki.Options{CN: "rsa.example", RSABits: 2048, DNSNames: []string{"rsa.example"}, IPs: []net.IP{net.ParseIP("192.0.2.1")}, Template: func(c *x509.Certificate) {
				c.EmailAddresses = []string{"ops@example.com"}
				c.URIs = []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/mcp"}}
				withSerial("0a1b2c")(c)
			}},
			keyType: "RSA", keyBits: 2048, sigAlg: "ECDSA-SHA256", serial: "0A1B2C",
			sans: []string{"rsa.example", "192.0.2.1", "ops@example.com", "spiffe://example.org/mcp"},
		},
		{
			name:    "ECDSA P-384, odd-length serial padded",
			opts:    testpki.Options{CN: "p384.example", Key: p384, DNSNames: []string{"p384.example"}, Template: withSerial("abc")},
			keyType: "ECDSA", keyBits: 384, sigAlg: "ECDSA-SHA256", serial: "0ABC",
			sans: []string{"p384.example"},
		},
		{
			name:    "Ed25519, no SANs",
			opts:    testpki.Options{CN: "ed.example", Key: edKey, DNSNames: []string{}, Template: withSerial("7fffffffffffffff01")},
			keyType: "Ed25519", keyBits: 256, sigAlg: "ECDSA-SHA256", serial: "7FFFFFFFFFFFFFFF01",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ca.Issue(tc.opts).Cert
			got := CertInfoOf(c, RoleLeaf)
			fp := sha256.Sum256(c.Raw)
			spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			want := CertInfo{
				Role: RoleLeaf, SubjectCN: tc.opts.CN, IssuerCN: "Info CA", Serial: tc.serial,
				NotBefore: c.NotBefore, NotAfter: c.NotAfter,
				FingerprintSHA256: fmt.Sprintf("%x", fp), SPKISHA256: base64.StdEncoding.EncodeToString(spki[:]),
				SANs: tc.sans, KeyType: tc.keyType, KeyBits: tc.keyBits, SignatureAlgorithm: tc.sigAlg,
			}
			if fmt.Sprint(got) != fmt.Sprint(want) || !slices.Equal(got.SANs, want.SANs) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			// One allocation holds every string a result keeps: each one
			// starts where the one before ends.
			kept := append([]string{got.SubjectCN, got.IssuerCN, got.Serial, got.FingerprintSHA256, got.SPKISHA256}, got.SANs...)
			kept = slices.DeleteFunc(kept, func(s string) bool { return s == "" }) // no bytes, no address to check
			for i := 1; i < len(kept); i++ {
				if unsafe.Pointer(unsafe.StringData(kept[i])) != unsafe.Add(unsafe.Pointer(unsafe.StringData(kept[i-1])), len(kept[i-1])) {
					t.Errorf("string %d (%q) is not in the allocation of the others", i, kept[i])
				}
			}
		})
	}
}

func TestRoleOf(t *testing.T) {
	root := testpki.NewCA("Role Root")
	inter := root.Intermediate("Role Intermediate")
	// A sub-CA with its issuer's name: the names match but it is not self-signed.
	sameName := root.Issue(testpki.Options{CN: "Role Root", IsCA: true})
	cases := []struct {
		name  string
		cert  *testpki.Cert
		index int
		want  string
	}{
		{"first is the leaf", inter.Leaf("localhost"), 0, RoleLeaf},
		{"first is the leaf even when self-signed", root, 0, RoleLeaf},
		{"intermediate", inter, 1, RoleIntermediate},
		{"self-signed root", root, 2, RoleRoot},
		{"issuer's name but not its key", sameName, 1, RoleIntermediate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := RoleOf(tc.cert.Cert, tc.index); got != tc.want {
				t.Errorf("RoleOf = %q, want %q", got, tc.want)
			}
		})
	}
}

// Endpoints whose chains pass through the same CA share its CertInfo (one
// copy of its strings however many endpoints hold it), which equals what
// CertInfoOf works out afresh; leaves are each their own, and findings
// added to one result never reach another.
func TestChainInfoSharesIssuers(t *testing.T) {
	p := newPKI(t)
	a, b := p.inter.Leaf("a.test"), p.inter.Leaf("b.test")
	chainA := []*x509.Certificate{a.Cert, p.inter.Cert, p.root.Cert}
	chainB := []*x509.Certificate{b.Cert, p.inter.Cert, p.root.Cert}
	infoA, infoB := chainInfo(chainA[:2], chainA), chainInfo(chainB[:2], chainB)
	if len(infoA) != 3 || cap(infoA) != 3 {
		t.Fatalf("chain of 3: len %d cap %d", len(infoA), cap(infoA))
	}
	for i, want := range []CertInfo{CertInfoOf(p.inter.Cert, RoleIntermediate), CertInfoOf(p.root.Cert, RoleRoot)} {
		x, y := infoA[i+1], infoB[i+1]
		if fmt.Sprint(x) != fmt.Sprint(want) {
			t.Errorf("shared %s:\n got  %+v\n want %+v", want.Role, x, want)
		}
		if unsafe.StringData(x.FingerprintSHA256) != unsafe.StringData(y.FingerprintSHA256) {
			t.Errorf("%s: two copies of its strings", want.Role)
		}
	}
	if unsafe.StringData(infoA[0].FingerprintSHA256) == unsafe.StringData(infoB[0].FingerprintSHA256) ||
		infoA[0].SubjectCN != "a.test" || infoB[0].SubjectCN != "b.test" {
		t.Errorf("leaves: %+v, %+v", infoA[0], infoB[0])
	}
	infoA[2].Findings = append(infoA[2].Findings, FindingWeakKey)
	if again := chainInfo(chainB[:2], chainB); again[2].Findings != nil {
		t.Errorf("a finding added to one result reached another: %+v", again[2].Findings)
	}
}
