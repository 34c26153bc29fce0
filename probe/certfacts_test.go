package probe

import (
	"context"
	"crypto/tls"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// A second probe shares the first's certificate facts only when the server
// sent the same chain, verified to the same cache entry, with no staple; in
// every case the facts are those a target that never probed before works
// out.
func TestProbeReusesCertificateFactsOfTheSameChainOnly(t *testing.T) {
	p := newCachePKI()
	stapled := p.leaf.TLS(p.inter)
	stapled.OCSPStaple = staple(t, p.inter, p.inter, p.leaf, ocsp.Good, time.Now().Add(day))
	cases := []struct {
		name   string
		first  tls.Certificate
		change func(serving *atomic.Pointer[tls.Certificate])
		shared bool
	}{
		{name: "same chain", first: p.leaf.TLS(p.inter), shared: true},
		{name: "reissued leaf", first: p.leaf.TLS(p.inter), change: func(s *atomic.Pointer[tls.Certificate]) {
			c := p.inter.Issue(testpki.Options{NotBefore: p.t0.Add(-time.Hour), NotAfter: p.t0.Add(30 * day)}).TLS(p.inter)
			s.Store(&c)
		}},
		{name: "chain that no longer verifies", first: p.leaf.TLS(p.inter), change: func(s *atomic.Pointer[tls.Certificate]) {
			c := p.orphan.TLS()
			s.Store(&c)
		}},
		{name: "stapled OCSP response", first: stapled},
		{name: "OCSP response stapled from now on", first: p.leaf.TLS(p.inter), change: func(s *atomic.Pointer[tls.Certificate]) {
			s.Store(&stapled)
		}},
		{name: "verify cache emptied", first: p.leaf.TLS(p.inter), change: func(*atomic.Pointer[tls.Certificate]) {
			SetVerifyCacheSize(VerifyCacheSize)
		}},
		{name: "verify cache off", first: p.leaf.TLS(p.inter), change: func(*atomic.Pointer[tls.Certificate]) {
			SetVerifyCacheSize(0)
		}},
	}
	caFile := testpki.WriteFile(t, t.TempDir(), "ca.pem", p.root.PEM())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { SetVerifyCacheSize(VerifyCacheSize) })
			var serving atomic.Pointer[tls.Certificate]
			serving.Store(&tc.first)
			addr := serve(t, tls.Certificate{}, func(c *tls.Config) {
				c.Certificates = nil
				c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return serving.Load(), nil }
			})
			ep := endpoint(addr, config.TLSConfig{CAFile: caFile, ServerName: "localhost"})
			probe := func(tg *Target) *TLSResult {
				t.Helper()
				res := tg.Probe(context.Background())
				if !res.Success || len(res.Certificates) == 0 {
					t.Fatalf("probe failed: %s %s", res.Reason, res.Detail)
				}
				return res
			}
			tg := newTestTarget(t, ep)
			first := probe(tg)
			if tc.change != nil {
				tc.change(&serving)
			}
			second := probe(tg)
			if shared := &first.Certificates[0] == &second.Certificates[0]; shared != tc.shared {
				t.Errorf("second probe shares the first's facts: %v, want %v", shared, tc.shared)
			}
			if fresh := probe(newTestTarget(t, ep)); !reflect.DeepEqual(second.Certificates, fresh.Certificates) {
				t.Errorf("second probe's facts differ from a new target's:\n%+v\n%+v", second.Certificates, fresh.Certificates)
			}
		})
	}
}

func newTestTarget(t *testing.T, ep config.Endpoint) *Target {
	t.Helper()
	tg, err := NewTarget(ep)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}
