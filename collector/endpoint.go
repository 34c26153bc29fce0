package collector

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// endpoint is the kind of target that probes a TLS endpoint (and speaks
// MCP to it) and scans its posture.
type endpoint struct {
	probe  *probe.Target
	opts   probe.PostureOptions
	change *leafChanges // kept by name, beyond a change of definition
	res    *endpointResults
	certs  certText // under the target's texts.mu, as every render
}

// certText is where the certificates' text is in the last result text:
// most of it, and a server sends the same certificates at almost every
// probe, so it is made again only when they (or limits.label_length)
// change. It points into the result stored last, so it keeps nothing alive
// that the target does not hold anyway.
type certText struct {
	certs       []probe.CertInfo // the last result's
	labelLength int
	result      *metrics.Exposition // the last result text: the probe's, then the certificates' from byte from
	from        int
	cuts        uint32 // label values cut in the certificates' text
	made        int    // times the certificates' text was made (not reused)
}

type endpointResults struct {
	last atomic.Pointer[probe.TLSResult]
	scan atomic.Pointer[probe.PostureResult] // nil when posture is off
}

func newEndpoint(t *probe.Target, pol config.Policy, change *leafChanges) *endpoint {
	return &endpoint{probe: t, opts: probe.PostureOptionsFor(t.Endpoint, pol), change: change, res: new(endpointResults)}
}

func (e *endpoint) label() string           { return "endpoint" }
func (e *endpoint) name() string            { return e.probe.Endpoint.Name }
func (e *endpoint) interval() time.Duration { return e.probe.Endpoint.Interval.D() }
func (e *endpoint) scans() bool             { return e.probe.Endpoint.PostureEnabled() }
func (e *endpoint) carry(prev kind)         { e.res = prev.(*endpoint).res }

func (e *endpoint) refresh(ctx context.Context, logger *slog.Logger) (ok, kept bool) {
	res := e.probe.Probe(ctx)
	if ctx.Err() != nil && res.Reason == probe.ReasonTimeout {
		return false, false // shutting down: not the target's fault
	}
	if res.Reason != probe.ReasonNone {
		logger.Debug("probe failed", "target", e.name(), "reason", res.Reason, "detail", res.Detail)
	}
	if res.MCP != nil && !res.MCP.Up {
		logger.Debug("MCP handshake failed", "target", e.name(), "reason", res.MCP.Reason, "detail", res.MCP.Detail)
	}
	e.change.observe(res)
	e.res.last.Store(res)
	return res.Healthy(e.probe.Endpoint), true
}

func (e *endpoint) scan(ctx context.Context) ([]probe.UnknownCheck, bool) {
	res := e.probe.Posture(ctx, e.opts)
	if ctx.Err() != nil {
		return nil, false
	}
	e.res.scan.Store(res)
	return res.Unknown, true
}

func (e *endpoint) renderResult(now time.Time) *metrics.Exposition {
	res := e.res.last.Load()
	if res == nil {
		return nil
	}
	result := metrics.Render(func(ch *metrics.Samples) { metrics.RenderEndpoint(ch, *e.probe.Endpoint, res, now) })
	if len(res.Certificates) == 0 {
		return result
	}
	c := &e.certs
	var certs *metrics.Exposition
	if c.result != nil && c.labelLength == metrics.LabelLength() && metrics.SameCerts(c.certs, res.Certificates) {
		certs = c.result.Since(c.from)
		metrics.CountCuts(c.cuts)
	} else {
		certs = metrics.Render(func(ch *metrics.Samples) {
			metrics.RenderEndpointCerts(ch, *e.probe.Endpoint, res.Certificates, now)
		})
		c.labelLength, c.cuts = metrics.LabelLength(), certs.Cuts()
		c.made++
	}
	joined := metrics.Join(result, certs)
	c.certs, c.result, c.from = res.Certificates, joined, result.Len()
	if joined.Err() != nil {
		c.result = nil // a failed rendering is no text to reuse
	}
	return joined
}

// renderPosture renders the endpoint's pins, findings, OCSP, scan and
// policy verdicts from its last probe and posture results.
func (e *endpoint) renderPosture(ch *metrics.Samples, pol config.Policy) {
	ep := *e.probe.Endpoint
	last := e.res.last.Load()
	metrics.RenderPins(ch, ep, last)
	if !ep.PostureEnabled() {
		return
	}
	metrics.RenderEndpointPosture(ch, pol, ep, last, e.res.scan.Load())
	if at, ok := e.change.last(); ok {
		metrics.RenderLastChange(ch, ep.Name, at)
	}
}
