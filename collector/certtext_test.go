package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// An endpoint's result text is what rendering everything afresh writes, at
// every step; the certificates' part is made again only when they or
// limits.label_length change, taken from the result text itself (no second
// copy kept), and reusing it counts its cut label values again, so that the
// counter keeps rising while labels are cut.
func TestEndpointReusesCertificateText(t *testing.T) {
	t.Cleanup(func() { metrics.SetLabelLength(config.DefaultLimits.LabelLength) })
	ca := testpki.NewCA("Text Root")
	a, b := ca.Leaf("a.test"), ca.Leaf("b.test")
	chain := func(leaf *testpki.Cert) []probe.CertInfo {
		return []probe.CertInfo{probe.CertInfoOf(leaf.Cert, probe.RoleLeaf), probe.CertInfoOf(ca.Cert, probe.RoleRoot)}
	}
	ep := config.Endpoint{Name: "e", Address: "127.0.0.1:1", Limits: config.DefaultLimits}
	pt, err := probe.NewTarget(ep)
	if err != nil {
		t.Fatal(err)
	}
	e := newEndpoint(pt, config.Policy{}, &leafChanges{})
	now := time.Now()
	write := func(x *metrics.Exposition) string {
		var s strings.Builder
		if err := metrics.Write(&s, []*metrics.Exposition{x}, nil, now); err != nil {
			t.Fatal(err)
		}
		return s.String()
	}
	var lastMade int
	var lastCuts uint64
	for i, step := range []struct {
		leaf        *testpki.Cert
		labelLength int
		reused      bool
		cut         bool // some label values cut: the fingerprints at 20 bytes
	}{
		{a, 4096, false, false}, {a, 4096, true, false}, {b, 4096, false, false}, {b, 20, false, true}, {b, 20, true, true},
		{b, 4096, false, false},
	} {
		metrics.SetLabelLength(step.labelLength)
		r := &probe.TLSResult{Time: now, Success: true, Verified: true, Version: 0x0304, CipherSuite: 0x1301, Certificates: chain(step.leaf)}
		e.res.last.Store(r)
		cutsBefore := metrics.LabelCuts()
		x := e.renderResult(now)
		if e.certs.result != x {
			t.Errorf("step %d: the endpoint keeps a text besides its result", i)
		}
		got := write(x)
		cuts := metrics.LabelCuts() - cutsBefore
		want := write(metrics.Render(func(ch *metrics.Samples) {
			metrics.RenderEndpoint(ch, ep, r, now)
			metrics.RenderEndpointCerts(ch, ep, r.Certificates, now)
		}))
		if got != want {
			t.Errorf("step %d: text\n%s\nwant\n%s", i, got, want)
		}
		if reused := e.certs.made == lastMade; reused != step.reused {
			t.Errorf("step %d: certificate text reused %v, want %v", i, reused, step.reused)
		}
		if (cuts > 0) != step.cut || (step.reused && cuts != lastCuts) {
			t.Errorf("step %d: %d label values cut (%d the step before), want some %v, as many as before if reused", i, cuts, lastCuts, step.cut)
		}
		lastMade, lastCuts = e.certs.made, cuts
	}
}

// The probe targets of an applied config use its endpoints where they are:
// 100,000 endpoints are not held twice.
func TestTargetsUseTheConfigsEndpoints(t *testing.T) {
	cfg := &config.Config{Endpoints: []config.Endpoint{{Name: "a", Address: "127.0.0.1:1"}, {Name: "b", Address: "127.0.0.1:2"}}}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	c := New(nil)
	if err := c.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	for i, tg := range c.targets {
		if got := tg.kind.(*endpoint).probe.Endpoint; got != &cfg.Endpoints[i] {
			t.Errorf("target %d holds a copy of its endpoint", i)
		}
	}
}
