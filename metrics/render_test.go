package metrics

import (
	"crypto/tls"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// The kept suite names are crypto/tls's, unknown IDs included.
func TestSuiteNameIsCryptoTLSs(t *testing.T) {
	for id := range 1 << 16 {
		if got, want := suiteName(uint16(id)), tls.CipherSuiteName(uint16(id)); got != want {
			t.Fatalf("suiteName(%#04x) = %q, crypto/tls says %q", id, got, want)
		}
	}
}

// For every field of CertInfo, a list that differs in it either renders the
// same text or is not SameCerts, so the reuse of certificate text cannot
// miss a field that renderCerts reads; equal lists render equal text.
func TestSameCertsCoversWhatRenderCertsReads(t *testing.T) {
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	base := func() []probe.CertInfo {
		return []probe.CertInfo{
			{Role: probe.RoleLeaf, SubjectCN: "a.test", IssuerCN: "CA", Serial: "01", NotBefore: now.AddDate(0, -1, 0),
				NotAfter: now.AddDate(0, 2, 0), FingerprintSHA256: "aa", SPKISHA256: "bb", SANs: []string{"a.test"},
				KeyType: "ECDSA", KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256"},
			{Role: probe.RoleRoot, SubjectCN: "CA", IssuerCN: "CA", Serial: "02", NotBefore: now.AddDate(-1, 0, 0),
				NotAfter: now.AddDate(5, 0, 0), FingerprintSHA256: "cc", SPKISHA256: "dd", KeyType: "ECDSA", KeyBits: 256},
		}
	}
	ep := config.Endpoint{Name: "e", Limits: config.DefaultLimits}
	text := func(certs []probe.CertInfo) string {
		var b strings.Builder
		e := Render(func(ch *Samples) { RenderEndpointCerts(ch, ep, certs, now) })
		if err := Write(&b, []*Exposition{e}, nil, now); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if a, b := base(), base(); !SameCerts(a, b) || text(a) != text(b) {
		t.Fatal("equal lists: not SameCerts, or different text")
	}
	rendered := 0
	typ := reflect.TypeFor[probe.CertInfo]()
	for i := range typ.NumField() {
		a, b := base(), base()
		f := reflect.ValueOf(&b[0]).Elem().Field(i)
		switch v := f.Addr().Interface().(type) {
		case *string:
			*v += "x"
		case *int:
			*v++
		case *time.Time:
			*v = v.Add(time.Second)
		case *[]string:
			*v = append(*v, "z.test")
		default:
			f.Set(reflect.Append(f, reflect.Zero(f.Type().Elem())))
		}
		if text(a) != text(b) {
			rendered++
			if SameCerts(a, b) {
				t.Errorf("%s: the text differs, but SameCerts", typ.Field(i).Name)
			}
		}
	}
	if rendered < 10 {
		t.Errorf("only %d fields change the text: the test changes them wrong", rendered)
	}
}
