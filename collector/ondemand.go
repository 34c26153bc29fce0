package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// scrapeTimeoutOffset is taken off Prometheus' scrape timeout, as
// blackbox_exporter does, so the answer arrives before Prometheus gives up.
const scrapeTimeoutOffset = 500 * time.Millisecond

// Results of a /probe request, the result label of
// mcp_cert_exporter_probe_requests_total.
const (
	probeProbed     = "probed"
	probeDenied     = "denied"
	probeBadRequest = "bad_request"
	probeBusy       = "busy"
	probeFailed     = "error"
)

// onDemand is the state of /probe: how many probes run now and what the
// requests came to. Results are never cached: every request probes.
type onDemand struct {
	inFlight atomic.Int64
	requests counters // by module and result
}

func newOnDemand() *onDemand { return &onDemand{} }

// render renders the requests so far and the probes running now.
func (o *onDemand) render(ch *metrics.Samples) {
	o.requests.render(ch, metrics.ProbeRequests)
	ch.Gauge(metrics.ProbeInFlight, float64(o.inFlight.Load()))
}

// acquire takes a probe slot unless limit are taken.
func (o *onDemand) acquire(limit int) bool {
	if o.inFlight.Add(1) > int64(limit) {
		o.inFlight.Add(-1)
		return false
	}
	return true
}

func (o *onDemand) release() { o.inFlight.Add(-1) }

// ProbeHandler serves /probe?target=…&module=…: it probes the target with
// the module's settings now and answers with that target's metrics. A
// target outside the module's allowed_targets is refused with 403 before
// any DNS lookup or connection.
func (c *Collector) ProbeHandler(logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := c.Config()
		name := r.URL.Query().Get("module")
		label := name
		if _, known := cfg.Modules[name]; !known {
			label = "" // unknown names must not grow the metric's series
		}
		result, code, msg := c.serveProbe(w, r, cfg, logger)
		c.ondemand.requests.inc(label, result)
		if code != http.StatusOK {
			http.Error(w, msg, code)
		}
	})
}

// serveProbe answers one request and says how it ended; a status other
// than 200 is for the caller to write with msg.
func (c *Collector) serveProbe(w http.ResponseWriter, r *http.Request, cfg *config.Config, logger *slog.Logger) (
	result string, code int, msg string) {
	q := r.URL.Query()
	name, target := q.Get("module"), q.Get("target")
	m, known := cfg.Modules[name]
	switch {
	case name == "":
		return probeBadRequest, http.StatusBadRequest, "module parameter is missing"
	case !known:
		return probeBadRequest, http.StatusBadRequest, fmt.Sprintf("unknown module %q", name)
	case target == "":
		return probeBadRequest, http.StatusBadRequest, "target parameter is missing"
	}
	ep, err := m.Endpoint(target, 0)
	if errors.Is(err, config.ErrTargetNotAllowed) {
		// Debug: whoever reaches the port could otherwise flood the log.
		logger.Debug("probe refused", "module", name, "target", target, "err", err)
		return probeDenied, http.StatusForbidden, fmt.Sprintf("module %q may not probe %q: %v", name, target, err)
	}
	if err != nil {
		return probeBadRequest, http.StatusBadRequest, err.Error()
	}
	if !c.ondemand.acquire(cfg.ProbeConcurrency) {
		return probeBusy, http.StatusServiceUnavailable,
			fmt.Sprintf("%d probes are running, the probe_concurrency limit; try again later", cfg.ProbeConcurrency)
	}
	defer c.ondemand.release()
	ep.Timeout = config.Duration(probeTimeout(r, m.Timeout.D()))
	var logs bytes.Buffer
	plog := logger
	debug := q.Get("debug") == "true"
	if debug {
		plog = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e, err := c.probeOnce(r.Context(), cfg.Policy, m, ep, plog.With("module", name, "target", target))
	if err != nil {
		return probeFailed, http.StatusInternalServerError, err.Error()
	}
	if debug {
		writeDebug(w, e, &logs, name, m)
	} else {
		w.Header().Set("Content-Type", metrics.TextFormat)
		_, _ = w.Write(probeText(e))
	}
	return probeProbed, http.StatusOK, ""
}

// probeTimeout is the module's timeout, or Prometheus' scrape timeout less
// an offset when that is shorter.
func probeTimeout(r *http.Request, module time.Duration) time.Duration {
	s, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64)
	if err != nil || s <= 0 {
		return module
	}
	scrape := time.Duration(s * float64(time.Second))
	if scrape > scrapeTimeoutOffset {
		scrape -= scrapeTimeoutOffset
	}
	return min(scrape, module)
}

// probeOnce probes ep, and scans its posture when the module asks, and
// renders both with the functions configured endpoints use.
func (c *Collector) probeOnce(ctx context.Context, pol config.Policy, m config.Module, ep config.Endpoint,
	logger *slog.Logger) (*metrics.Exposition, error) {
	t, err := probe.NewTarget(ep)
	if err != nil {
		return nil, err
	}
	if m.AllowedTargets.RestrictsAddrs() {
		t.RestrictAddrs(m.AllowedTargets.AllowAddr)
	}
	ctx, cancel := context.WithTimeout(ctx, ep.Timeout.D())
	defer cancel()
	logger.Debug("probing", "timeout", ep.Timeout.D(), "prober", m.Prober)
	start := time.Now()
	res := t.Probe(ctx)
	logResult(logger, res, time.Since(start))
	var scan *probe.PostureResult
	if m.Posture {
		scan = t.Posture(ctx, probe.PostureOptionsFor(&ep, pol))
		for _, u := range scan.Unknown {
			logger.Debug("posture check unknown", "check", u.Check, "reason", u.Reason, "detail", u.Detail)
		}
	}
	e := metrics.Render(func(out *metrics.Samples) {
		metrics.RenderEndpoint(out, ep, res, time.Now())
		metrics.RenderEndpointCerts(out, ep, res.Certificates, time.Now())
		if m.Posture {
			metrics.RenderEndpointPosture(out, pol, ep, res, scan)
		}
		// A /probe target has no refresh interval of ours: Prometheus'
		// scrape interval is its interval.
		*out = slices.DeleteFunc(*out, func(s metrics.Sample) bool { return s.Family == metrics.RefreshInterval })
	})
	return e, e.Err()
}

// probeText is a /probe answer's metrics, written as /metrics writes them.
func probeText(e *metrics.Exposition) []byte {
	var b bytes.Buffer
	_ = metrics.Write(&b, []*metrics.Exposition{e}, nil, time.Now()) // no error: b is memory
	return b.Bytes()
}

func logResult(logger *slog.Logger, res *probe.TLSResult, took time.Duration) {
	if res.Reason != probe.ReasonNone {
		logger.Debug("probe failed", "reason", res.Reason, "detail", res.Detail)
	}
	if res.MCP != nil && !res.MCP.Up {
		logger.Debug("MCP handshake failed", "reason", res.MCP.Reason, "detail", res.MCP.Detail)
	}
	logger.Debug("probe done", "success", res.Success, "verified", res.Verified, "duration", took)
}

// writeDebug is blackbox_exporter's debug view: the probe's log lines, the
// metrics and the module. The module holds file paths, never their contents.
func writeDebug(w http.ResponseWriter, e *metrics.Exposition, logs *bytes.Buffer, name string, m config.Module) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Logs for the probe:\n%s\n\nMetrics that would have been returned:\n%s", logs, probeText(e))
	out, err := yaml.Marshal(map[string]config.Module{name: m})
	if err != nil {
		out = []byte(err.Error())
	}
	fmt.Fprintf(w, "\n\nModule configuration:\n%s", out)
}
