package probe

import (
	"context"
	"crypto/x509"
	"slices"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// cachePKI is a root whose intermediate expires after ten days and whose
// leaf after thirty, around a fixed moment t0.
type cachePKI struct {
	t0                  time.Time
	root, inter, other  *testpki.Cert
	leaf, wrongHost     *testpki.Cert
	late, orphan        *testpki.Cert
	shortRoot, shortInt *testpki.Cert
	shortLeaf           *testpki.Cert
}

func newCachePKI() *cachePKI {
	t0 := time.Now().Truncate(time.Second)
	span := func(from, to time.Duration) testpki.Options {
		return testpki.Options{NotBefore: t0.Add(from), NotAfter: t0.Add(to)}
	}
	ca := func(parent *testpki.Cert, cn string, to time.Duration) *testpki.Cert {
		o := span(-time.Hour, to)
		o.CN, o.IsCA = cn, true
		if parent == nil {
			return testpki.SelfSigned(o)
		}
		return parent.Issue(o)
	}
	p := &cachePKI{t0: t0}
	p.root = ca(nil, "Cache Root", 365*day)
	p.inter = ca(p.root, "Cache Intermediate", 10*day)
	p.other = ca(nil, "Other Root", 365*day)
	p.leaf = p.inter.Issue(span(-time.Hour, 30*day))
	wrong := span(-time.Hour, 30*day)
	wrong.DNSNames = []string{"elsewhere.example"}
	p.wrongHost = p.inter.Issue(wrong)
	p.late = p.inter.Issue(span(day, 30*day))
	p.orphan = p.other.Issue(span(-time.Hour, 30*day))
	p.shortRoot = ca(nil, "Short Root", 20*day)
	p.shortInt = ca(p.shortRoot, "Short Intermediate", 365*day)
	p.shortLeaf = p.shortInt.Issue(span(-time.Hour, 60*day))
	return p
}

// target trusts the roots through a ca_file in dir.
func (p *cachePKI) target(t *testing.T, dir, serverName string, roots ...*testpki.Cert) *Target {
	t.Helper()
	caFile := testpki.WriteFile(t, dir, "ca.pem", testpki.Bundle(roots...))
	tg, err := NewTarget(endpoint("127.0.0.1:443", config.TLSConfig{CAFile: caFile, ServerName: serverName}))
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func certsOf(cs ...*testpki.Cert) []*x509.Certificate {
	out := make([]*x509.Certificate, len(cs))
	for i, c := range cs {
		out[i] = c.Cert
	}
	return out
}

// sameVerdict fails unless two verdicts agree in reason, detail and chain.
func sameVerdict(t *testing.T, got, want verification) {
	t.Helper()
	if got.reason != want.reason || got.detail != want.detail {
		t.Fatalf("through the cache %q (%s), afresh %q (%s)", got.reason, got.detail, want.reason, want.detail)
	}
	if !slices.EqualFunc(got.chain, want.chain, (*x509.Certificate).Equal) {
		t.Fatalf("through the cache a chain of %d certificates, afresh %d", len(got.chain), len(want.chain))
	}
}

// For a matrix of chains and moments, verification through one cache,
// visited in an order where entries are made and then reused, agrees with
// fresh verification every time: reason, detail, verified flag and chain.
func TestVerifyCacheAgreesWithFreshVerification(t *testing.T) {
	p := newCachePKI()
	cells := []struct {
		name  string
		sent  []*x509.Certificate
		roots []*testpki.Cert
	}{
		{"good", certsOf(p.leaf, p.inter), []*testpki.Cert{p.root}},
		{"root sent too", certsOf(p.leaf, p.inter, p.root), []*testpki.Cert{p.root}},
		{"two roots trusted", certsOf(p.leaf, p.inter), []*testpki.Cert{p.other, p.root}},
		{"missing intermediate", certsOf(p.leaf), []*testpki.Cert{p.root}},
		{"untrusted root", certsOf(p.orphan), []*testpki.Cert{p.root}},
		{"wrong host", certsOf(p.wrongHost, p.inter), []*testpki.Cert{p.root}},
		{"leaf not yet valid at first", certsOf(p.late, p.inter), []*testpki.Cert{p.root}},
		{"root expires before the leaf", certsOf(p.shortLeaf, p.shortInt), []*testpki.Cert{p.shortRoot}},
	}
	// Back and forth across every validity edge of the PKI.
	moments := []time.Duration{0, 2 * day, 0, -2 * time.Hour, 2 * day, 12 * day, 25 * day, 40 * day, 70 * day, 400 * day, 12 * day, 0}
	var hits uint64
	for _, c := range cells {
		t.Run(c.name, func(t *testing.T) {
			tg := p.target(t, t.TempDir(), "localhost", c.roots...)
			vc := newVerifyCache(4)
			for _, m := range moments {
				at := p.t0.Add(m)
				got, want := tg.verifyWith(vc, c.sent, at), tg.verifyWith(nil, c.sent, at)
				sameVerdict(t, got, want)
			}
			hits += vc.stats.Hits
		})
	}
	if hits == 0 {
		t.Fatal("no verification was answered from the cache, so the matrix compared fresh with fresh")
	}
}

// One cache across changes that must each make it miss or still verify the
// same: time moving past an intermediate's expiry, a changed hostname, a
// trust anchor removed from ca_file (the reload reads the changed file), and
// a reload of an unchanged file, which may keep its entries.
func TestVerifyCacheNeverAcceptsWhatFreshRejects(t *testing.T) {
	p := newCachePKI()
	dir := t.TempDir()
	both := p.target(t, dir, "localhost", p.root, p.other)
	renamed := p.target(t, dir, "elsewhere.example", p.root, p.other)
	chain := certsOf(p.leaf, p.inter)
	vc := newVerifyCache(16)
	type step struct {
		name   string
		target func() *Target
		at     time.Duration
		want   Reason
		hit    bool
	}
	var reloaded *Target
	steps := []step{
		{"first sight", func() *Target { return both }, 0, ReasonNone, false},
		{"seen before", func() *Target { return both }, day, ReasonNone, true},
		{"another hostname", func() *Target { return renamed }, day, ReasonHostnameMismatch, true},
		{"intermediate expired", func() *Target { return both }, 11 * day, ReasonCertificateExpired, false},
		{"before it expired again", func() *Target { return both }, 2 * day, ReasonNone, true},
		{"unchanged file reloaded", func() *Target { return p.target(t, dir, "localhost", p.root, p.other) }, 2 * day, ReasonNone, true},
		{"anchor removed from ca_file", func() *Target {
			reloaded = p.target(t, dir, "localhost", p.other)
			return reloaded
		}, 2 * day, ReasonVerifyFailed, false},
		{"anchor removed, again", func() *Target { return reloaded }, 2 * day, ReasonVerifyFailed, false},
	}
	for _, s := range steps {
		tg, at := s.target(), p.t0.Add(s.at)
		before := vc.stats.Hits
		got := tg.verifyWith(vc, chain, at)
		if got.reason != s.want {
			t.Fatalf("%s: reason %q (%s), want %q", s.name, got.reason, got.detail, s.want)
		}
		sameVerdict(t, got, tg.verifyWith(nil, chain, at))
		if hit := vc.stats.Hits > before; hit != s.hit {
			t.Fatalf("%s: answered from the cache %v, want %v", s.name, hit, s.hit)
		}
	}
}

// The cache holds at most its size; the least recently used goes first.
func TestVerifyCacheIsBounded(t *testing.T) {
	p := newCachePKI()
	tg := p.target(t, t.TempDir(), "localhost", p.root, p.other)
	vc := newVerifyCache(2)
	chains := [][]*x509.Certificate{certsOf(p.leaf, p.inter), certsOf(p.wrongHost, p.inter), certsOf(p.leaf, p.inter, p.root)}
	for _, c := range chains {
		tg.verifyWith(vc, c, p.t0)
	}
	tg.verifyWith(vc, chains[1], p.t0) // a hit: the most recent now
	tg.verifyWith(vc, chains[0], p.t0) // evicted by the third: a miss, which evicts the third
	want := VerifyCacheStats{Hits: 1, Misses: 4, Evictions: 2}
	if vc.stats != want || vc.order.Len() != 2 {
		t.Fatalf("stats %+v with %d entries, want %+v with 2", vc.stats, vc.order.Len(), want)
	}
}

// Through a real server: the second probe of an unchanged server is
// answered from the process's cache and reports the same certificates.
func TestProbeUsesVerifyCache(t *testing.T) {
	p := newCachePKI()
	addr := serve(t, p.leaf.TLS(p.inter), nil)
	caFile := testpki.WriteFile(t, t.TempDir(), "ca.pem", p.root.PEM())
	tg, err := NewTarget(endpoint(addr, config.TLSConfig{CAFile: caFile, ServerName: "localhost"}))
	if err != nil {
		t.Fatal(err)
	}
	first := tg.Probe(context.Background())
	before, _ := ReadVerifyCacheStats()
	second := tg.Probe(context.Background())
	after, _ := ReadVerifyCacheStats()
	if !first.Verified || !second.Verified {
		t.Fatalf("not verified: %s %s / %s %s", first.Reason, first.Detail, second.Reason, second.Detail)
	}
	if after.Hits == before.Hits {
		t.Fatal("the second probe of an unchanged chain was not answered from the cache")
	}
	if len(second.Certificates) != 3 || second.Certificates[2].SubjectCN != "Cache Root" {
		t.Fatalf("second probe reports %d certificates, want leaf, intermediate and root", len(second.Certificates))
	}
}

// Signature facts come from the cache once checked, and a certificate that
// differs in one byte of its signature is checked on its own.
func TestSignatureCacheKeysOnBothCertificates(t *testing.T) {
	p := newCachePKI()
	raw := slices.Clone(p.leaf.Cert.Raw)
	raw[len(raw)-1] ^= 1
	forged, err := x509.ParseCertificate(raw)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name          string
		child, parent *x509.Certificate
		want          bool
	}{
		{"leaf by its intermediate", p.leaf.Cert, p.inter.Cert, true},
		{"intermediate by its root", p.inter.Cert, p.root.Cert, true},
		{"forged leaf by the same intermediate", forged, p.inter.Cert, false},
		{"root by itself", p.root.Cert, p.root.Cert, true},
	}
	before := signatures.Load().read()
	for range 2 {
		for _, c := range cases {
			if got := signedBy(c.child, c.parent); got != c.want {
				t.Fatalf("%s: signed %v, want %v", c.name, got, c.want)
			}
		}
	}
	if after := signatures.Load().read(); after.Hits-before.Hits < uint64(len(cases)) {
		t.Fatalf("%d hits for %d facts asked twice", after.Hits-before.Hits, len(cases))
	}
}
