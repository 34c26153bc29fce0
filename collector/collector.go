// Package collector schedules endpoint probes and file reads, caches their
// results, and renders the cache as const metrics on each scrape. A scrape
// never touches the network or the disk.
package collector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// Collector is the exporter's state: the jobs of the current config and the
// last result of each.
type Collector struct {
	logger *slog.Logger
	sched  *scheduler
	self   *selfMetrics
	live   *prometheus.Registry // what WriteMetrics gathers at scrape time
	shard  Shard

	ondemand *onDemand    // /probe (ondemand.go)
	tf       *targetFiles // target_files (targetfiles.go)

	mu        sync.RWMutex
	cfg       *config.Config
	endpoints []*endpointJob
	files     []*fileJob
	postures  *postureSet
}

// New makes a collector with no targets; Apply gives it some.
func New(logger *slog.Logger, opts ...Option) *Collector {
	c := &Collector{
		logger: logger,
		sched:  newScheduler(config.DefaultConcurrency),
		self:   newSelfMetrics(),
		live:   prometheus.NewRegistry(),
	}
	c.ondemand, c.tf = newOnDemand(), newTargetFiles()
	c.live.MustRegister(liveMetrics{c})
	for _, o := range opts {
		o(c)
	}
	return c
}

// Run refreshes targets until ctx ends, then waits for in-flight probes.
func (c *Collector) Run(ctx context.Context) {
	watched := make(chan struct{})
	go func() { c.watchTargetFiles(ctx); close(watched) }()
	c.sched.run(ctx)
	<-watched
}

// Refreshes counts the endpoint probes and file reads completed so far, not
// posture scans: a cheap progress signal for the load harness.
func (c *Collector) Refreshes() uint64 { return c.self.done.Load() }

// apply switches to a config whose target_files are expanded (Apply, in
// targetfiles.go), keeping only the targets of the collector's shard.
func (c *Collector) apply(cfg *config.Config) error {
	cfg = c.shard.filter(cfg)
	endpoints, err := c.endpointJobs(cfg)
	if err != nil {
		return err
	}
	metrics.SetLabelLength(cfg.Limits.LabelLength)
	files := c.fileJobs(cfg)
	postures := c.postureJobs(cfg, endpoints, files)
	c.mu.Lock()
	c.cfg, c.endpoints, c.files, c.postures = cfg, endpoints, files, postures
	c.mu.Unlock()
	// The policy may have changed, and kept results have no text yet in a
	// new slot: render every target's posture metrics once now.
	for _, j := range endpoints {
		j.posture.refresh(j.renderPosture)
	}
	for _, j := range files {
		j.posture.refresh(j.renderPosture)
	}
	jobs := postures.jobs()
	for _, j := range endpoints {
		jobs = append(jobs, j)
	}
	for _, j := range files {
		jobs = append(jobs, j)
	}
	c.sched.set(jobs, cfg.Concurrency)
	return nil
}

// Config is the config in force.
func (c *Collector) Config() *config.Config {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cfg
}

// byKey indexes the jobs in force, so Apply can carry results over.
func byKey[J job](c *Collector, jobs func() []J) map[string]J {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := map[string]J{}
	for _, j := range jobs() {
		m[j.key()] = j
	}
	return m
}

func (c *Collector) endpointJobs(cfg *config.Config) ([]*endpointJob, error) {
	old := byKey(c, func() []*endpointJob { return c.endpoints })
	changes := changesByName(old)
	jobs := make([]*endpointJob, 0, len(cfg.Endpoints))
	for _, ep := range cfg.Endpoints {
		target, err := probe.NewTarget(ep)
		if err != nil {
			return nil, fmt.Errorf("endpoint %s: %w", ep.Name, err)
		}
		c.tf.guard(target)
		j := &endpointJob{id: identity("endpoint", ep), target: target, self: c.self, logger: c.logger, change: changesFor(changes, ep.Name)}
		prev, ok := old[j.id]
		if ok {
			j.last, j.text = prev.last, prev.text // same definition: the cached result still holds
		} else {
			j.last, j.text = new(atomic.Pointer[probe.TLSResult]), new(atomic.Pointer[metrics.Exposition])
		}
		j.posture = newPostureText(prev.postureOf(ok), cfg.Policy)
		jobs = append(jobs, j)
	}
	return jobs, nil
}

func (c *Collector) fileJobs(cfg *config.Config) []*fileJob {
	old := byKey(c, func() []*fileJob { return c.files })
	jobs := make([]*fileJob, 0, len(cfg.Files))
	for _, g := range cfg.Files {
		j := &fileJob{id: identity("file", g), group: g, self: c.self}
		prev, ok := old[j.id]
		if ok {
			j.reader, j.last, j.text = prev.reader, prev.last, prev.text
		} else {
			j.reader, j.last, j.text = certfile.NewFileReader(), new(atomic.Pointer[certfile.FileResult]), new(atomic.Pointer[metrics.Exposition])
		}
		j.posture = newPostureText(prev.postureOf(ok), cfg.Policy)
		jobs = append(jobs, j)
	}
	return jobs
}

// identity changes whenever the definition does, so a changed target is a
// new job: refreshed at once, with no stale result from its old definition.
func identity(kind string, def any) string {
	b, err := json.Marshal(def)
	if err != nil {
		panic(err) // config types always marshal
	}
	sum := sha256.Sum256(b)
	return kind + "/" + hex.EncodeToString(sum[:12])
}

type endpointJob struct {
	id      string
	target  *probe.Target
	last    *atomic.Pointer[probe.TLSResult]
	change  *leafChanges
	text    *atomic.Pointer[metrics.Exposition]
	self    *selfMetrics
	logger  *slog.Logger
	posture postureText[probe.PostureResult] // nil scan when posture is off
}

func (j *endpointJob) key() string             { return j.id }
func (j *endpointJob) name() string            { return j.target.Endpoint.Name }
func (j *endpointJob) interval() time.Duration { return j.target.Endpoint.Interval.D() }

func (j *endpointJob) run(ctx context.Context) {
	start := time.Now()
	res := j.target.Probe(ctx)
	if ctx.Err() != nil && res.Reason == probe.ReasonTimeout {
		return // shutting down: not the target's fault
	}
	mcpOK := res.MCP == nil || res.MCP.Up
	if res.Reason != probe.ReasonNone {
		j.logger.Debug("probe failed", "target", j.name(), "reason", res.Reason, "detail", res.Detail)
	}
	if !mcpOK {
		j.logger.Debug("MCP handshake failed", "target", j.name(), "reason", res.MCP.Reason, "detail", res.MCP.Detail)
	}
	j.change.observe(res)
	j.store(res)
	j.posture.refresh(j.renderPosture)
	j.self.observe("endpoint", start, res.Healthy(&j.target.Endpoint)) // once the result is served
}

// store caches res and its metrics, rendered now as text so that scrapes
// only copy them.
func (j *endpointJob) store(res *probe.TLSResult) {
	j.text.Store(metrics.Render(func(ch *metrics.Samples) {
		metrics.RenderEndpoint(ch, j.target.Endpoint, res, time.Now())
	}))
	j.last.Store(res)
}

type fileJob struct {
	id      string
	group   config.FileGroup
	reader  *certfile.FileReader
	last    *atomic.Pointer[certfile.FileResult]
	text    *atomic.Pointer[metrics.Exposition]
	self    *selfMetrics
	files   fileText // what the last store rendered, touched only by run
	posture postureText[certfile.KeyResult]
}

func (j *fileJob) key() string             { return j.id }
func (j *fileJob) interval() time.Duration { return j.group.Interval.D() }

func (j *fileJob) run(ctx context.Context) {
	start := time.Now()
	res := j.reader.Read(ctx, j.group)
	if ctx.Err() != nil {
		return
	}
	ok := true
	for _, f := range res.Files {
		ok = ok && f.Reason == probe.ReasonNone
	}
	j.store(res)
	j.posture.refresh(j.renderPosture)
	j.self.observe("file", start, ok)
}

// collectLive renders the metrics computed at scrape time: the exporter's own.
func (c *Collector) collectLive(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	endpoints, files := len(c.endpoints), len(c.files)
	c.mu.RUnlock()
	c.self.collect(ch, endpoints, files)
	c.ondemand.Collect(ch)
	c.tf.Collect(ch)
}

// liveMetrics is collectLive as a prometheus.Collector, unchecked.
type liveMetrics struct{ c *Collector }

func (l liveMetrics) Describe(chan<- *prometheus.Desc)    {}
func (l liveMetrics) Collect(ch chan<- prometheus.Metric) { l.c.collectLive(ch) }

// expositions snapshots the cached text of every target that has a result.
func (c *Collector) expositions() ([]*metrics.Exposition, error) {
	c.mu.RLock()
	endpoints, files := c.endpoints, c.files
	c.mu.RUnlock()
	out := make([]*metrics.Exposition, 0, 2*(len(endpoints)+len(files)))
	add := func(e *metrics.Exposition) error {
		if e == nil {
			return nil
		}
		out = append(out, e)
		return e.Err()
	}
	for _, j := range endpoints {
		if err := errors.Join(add(j.text.Load()), add(j.posture.text.Load())); err != nil {
			return nil, err
		}
	}
	for _, j := range files {
		if err := errors.Join(add(j.text.Load()), add(j.posture.text.Load())); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WriteMetrics writes what /metrics serves (web.MetricsHandler): every
// target's cached text and the collector's own metrics, merged in name
// order with what g gathers, countdowns computed at now.
func (c *Collector) WriteMetrics(w io.Writer, g prometheus.Gatherer, now time.Time) error {
	exps, err := c.expositions()
	if err != nil {
		return err
	}
	mfs, err := prometheus.Gatherers{g, c.live}.Gather()
	if err != nil {
		return err
	}
	return metrics.Write(w, exps, mfs, now)
}
