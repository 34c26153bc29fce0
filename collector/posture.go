package collector

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// postureJob scans one endpoint on posture_interval. It shares the endpoint
// job's target; its key is that job's with a posture/ prefix, so it is kept,
// and keeps its result, exactly as long as the endpoint's definition is.
type postureJob struct {
	id       string
	endpoint *endpointJob
	every    time.Duration
	opts     probe.PostureOptions
	last     *atomic.Pointer[probe.PostureResult]
	self     *selfMetrics
	logger   *slog.Logger
}

func (j *postureJob) key() string             { return j.id }
func (j *postureJob) interval() time.Duration { return j.every }

func (j *postureJob) run(ctx context.Context) {
	start := time.Now()
	res := j.endpoint.target.Posture(ctx, j.opts)
	if ctx.Err() != nil {
		return // shutting down: a half scan is not the target's state
	}
	j.self.observe("posture", start, len(res.Unknown) == 0)
	for _, u := range res.Unknown {
		j.logger.Debug("posture check unknown", "target", j.endpoint.name(), "check", u.Check, "reason", u.Reason, "detail", u.Detail)
	}
	j.last.Store(res)
}

// postureJobs makes a posture job for each endpoint with posture enabled,
// keeping the results of jobs whose endpoint did not change.
func (c *Collector) postureJobs(cfg *config.Config, endpoints []*endpointJob) map[string]*postureJob {
	c.mu.RLock()
	old := c.postures
	c.mu.RUnlock()
	jobs := make(map[string]*postureJob, len(endpoints))
	for _, ej := range endpoints {
		ep := ej.target.Endpoint
		if !ep.PostureEnabled() {
			continue
		}
		j := &postureJob{
			id: "posture/" + ej.id, endpoint: ej, every: cfg.PostureInterval.D(),
			opts: probe.PostureOptions{ClientCert: ep.TLSConfig.CertFile != "" || cfg.Policy.RequireClientCert},
			self: c.self, logger: c.logger,
			last: new(atomic.Pointer[probe.PostureResult]),
		}
		if prev, ok := old[ej.id]; ok {
			j.last = prev.last
		}
		jobs[ej.id] = j
	}
	return jobs
}

// leafChanges remembers an endpoint's leaf fingerprint and when it last
// changed. Before any change is seen, the change time is the leaf's
// NotBefore: it cannot have been deployed earlier, and an exporter restart
// is not a change.
type leafChanges struct {
	mu          sync.Mutex
	fingerprint string
	changed     time.Time
}

// observe notes the leaf of a probe; a probe that saw no certificate says
// nothing about it.
func (l *leafChanges) observe(r *probe.TLSResult) {
	if len(r.Certificates) == 0 || r.Certificates[0].Role != probe.RoleLeaf {
		return
	}
	leaf := &r.Certificates[0]
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.fingerprint == "":
		l.fingerprint, l.changed = leaf.FingerprintSHA256, leaf.NotBefore
	case l.fingerprint != leaf.FingerprintSHA256:
		l.fingerprint, l.changed = leaf.FingerprintSHA256, r.Time
	}
}

// last is the time of the last change, false before any leaf was seen.
func (l *leafChanges) last() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed, l.fingerprint != ""
}

// changesFor carries an endpoint's change history over a reload by name, the
// target label: a changed address or setting is still the same target.
func changesFor(old map[string]*endpointJob, name string) *leafChanges {
	for _, j := range old {
		if j.name() == name {
			return j.change
		}
	}
	return new(leafChanges)
}
