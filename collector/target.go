package collector

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// target is one configured target, an endpoint or a file group: it owns
// its results and their text. Its two schedules, the refresh (a probe or a
// read, every interval) and the posture scan (every posture_interval), are
// two scheduler entries of the same target, and both render into its text.
type target struct {
	id        string // changes whenever the definition does (identity)
	kind      kind
	policy    config.Policy
	scanEvery time.Duration // posture_interval
	firstScan time.Duration // delay of the first posture scan, set by spreadFirstScans
	self      *selfMetrics
	logger    *slog.Logger
	out       *texts // kept, with the results, while the definition stays
}

// kind is what one kind of target does with its results. A new probe kind
// is a file in probe/ for the probing, one implementation of kind, and one
// case in Collector.targetsOf.
type kind interface {
	// label is the kind label of the exporter's own metrics.
	label() string
	name() string
	interval() time.Duration
	// scans reports whether the target has a posture schedule.
	scans() bool
	// refresh probes or reads and keeps the result; kept is false when ctx
	// ended first, as a half-done refresh is not the target's state.
	refresh(ctx context.Context, logger *slog.Logger) (ok, kept bool)
	// scan runs the posture checks and keeps their result, as refresh does.
	scan(ctx context.Context) (unknown []probe.UnknownCheck, kept bool)
	// renderResult renders the last refresh's result, nil before one.
	renderResult(now time.Time) *metrics.Exposition
	// renderPosture renders what needs both results: findings, scans and
	// the policy's verdict.
	renderPosture(ch *metrics.Samples, pol config.Policy)
	// carry takes over the results of the same definition's previous kind.
	carry(prev kind)
}

// texts is a target's metrics as text, in two parts so that a posture scan
// does not render the refresh's result again.
type texts struct {
	mu      sync.Mutex // orders renders, so the last stored saw the last results
	result  atomic.Pointer[metrics.Exposition]
	posture atomic.Pointer[metrics.Exposition]
	gz      *metrics.GzipCache // told of every change, under mu
	slot    int                // the target's number in gz
}

// number gives the texts their slot in a new gzip cache (a reload's).
func (x *texts) number(gz *metrics.GzipCache, slot int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gz, x.slot = gz, slot
}

// store stores e in p through the gzip cache, which makes the segments
// whose text changed again at the next scrape.
func (x *texts) store(p *atomic.Pointer[metrics.Exposition], e *metrics.Exposition) {
	x.gz.Store(x.slot, p, e)
}

// refresh is the target's refresh schedule: a probe or a read.
func (t *target) refresh(ctx context.Context) {
	start := time.Now()
	ok, kept := t.kind.refresh(ctx, t.logger)
	if !kept {
		return
	}
	t.render(true)
	t.self.observe(t.kind.label(), start, ok) // once the result is served
}

// scan is the target's posture schedule.
func (t *target) scan(ctx context.Context) {
	start := time.Now()
	unknown, kept := t.kind.scan(ctx)
	if !kept {
		return
	}
	for _, u := range unknown {
		t.logger.Debug("posture check unknown", "target", t.kind.name(), "check", u.Check, "reason", u.Reason, "detail", u.Detail)
	}
	t.render(false)
	t.self.observe("posture", start, len(unknown) == 0)
}

// render renders the posture text, and the result's when it changed. A
// scrape only copies what this stored.
func (t *target) render(result bool) {
	t.out.mu.Lock()
	defer t.out.mu.Unlock()
	if result {
		t.out.store(&t.out.result, t.kind.renderResult(time.Now()))
	}
	t.out.store(&t.out.posture, metrics.Render(func(ch *metrics.Samples) { t.kind.renderPosture(ch, t.policy) }))
}

// refreshJob and scanJob are a target's two scheduler entries.
type (
	refreshJob struct{ *target }
	scanJob    struct{ *target }
)

func (j refreshJob) key() string             { return j.id }
func (j refreshJob) interval() time.Duration { return j.kind.interval() }
func (j refreshJob) run(ctx context.Context) { j.refresh(ctx) }
func (j scanJob) key() string                { return "posture/" + j.id }
func (j scanJob) interval() time.Duration    { return j.scanEvery }
func (j scanJob) run(ctx context.Context)    { j.scan(ctx) }
func (j scanJob) firstDelay() time.Duration  { return j.firstScan }
