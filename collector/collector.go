// Package collector keeps one target per configured endpoint or file
// group, refreshes each on its two schedules (its probe or read, and its
// posture scan) with a bounded number of workers, and keeps each target's
// metrics as text, rendered when a result is stored. A scrape never touches
// the network or the disk.
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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// Collector is the exporter's state: the targets of the current config and
// their results.
type Collector struct {
	logger *slog.Logger
	sched  *scheduler
	self   *selfMetrics
	shard  Shard

	ondemand *onDemand    // /probe (ondemand.go)
	tf       *targetFiles // target_files (targetfiles.go)

	mu      sync.RWMutex
	cfg     *config.Config
	targets []*target          // endpoints first, then file groups, in config order
	gz      *metrics.GzipCache // of targets, their index being their slot

	endpointCount int // of targets
}

// New makes a collector with no targets; Apply gives it some.
func New(logger *slog.Logger, opts ...Option) *Collector {
	c := &Collector{
		logger: logger,
		sched:  newScheduler(config.DefaultConcurrency),
		self:   newSelfMetrics(),
		gz:     metrics.NewGzipCache(0),
	}
	c.ondemand, c.tf = newOnDemand(), newTargetFiles()
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
	c.mu.RLock()
	old := c.targets
	c.mu.RUnlock()
	targets, fresh, err := c.targetsOf(cfg, old)
	if err != nil {
		return err
	}
	metrics.SetLabelLength(cfg.Limits.LabelLength)
	// The old cache is retired before any target stores into the new one,
	// so a scrape still on the old cache does not trust its segments.
	c.mu.RLock()
	c.gz.Retire()
	c.mu.RUnlock()
	gz := metrics.NewGzipCache(len(targets))
	for i, t := range targets {
		t.out.number(gz, i)
	}
	c.mu.Lock()
	c.cfg, c.targets, c.gz, c.endpointCount = cfg, targets, gz, endpointsIn(targets)
	c.mu.Unlock()
	// The policy may have changed, and a new target has no text yet: render
	// every target's posture metrics once now.
	for _, t := range targets {
		t.render(false)
	}
	// New endpoints' first scans are spread; a file group's key check is
	// cheap and runs at once.
	var spread []*target
	jobs := make([]job, 0, 2*len(targets))
	for _, t := range targets {
		jobs = append(jobs, refreshJob{t})
		if !t.kind.scans() {
			continue
		}
		jobs = append(jobs, scanJob{t})
		if _, ok := t.kind.(*endpoint); ok && fresh[t] {
			spread = append(spread, t)
		}
	}
	spreadFirstScans(spread, cfg.PostureInterval.D())
	c.sched.set(jobs, cfg.Concurrency)
	return nil
}

// targetsOf makes a target of every endpoint and file group of cfg: the
// one place that knows the kinds of target. A target whose definition did
// not change takes over its old results; fresh are those that did not.
func (c *Collector) targetsOf(cfg *config.Config, old []*target) (targets []*target, fresh map[*target]bool, err error) {
	byID := make(map[string]*target, len(old))
	for _, t := range old {
		byID[t.id] = t
	}
	changes := changesByName(old)
	targets, fresh = make([]*target, 0, len(cfg.Endpoints)+len(cfg.Files)), map[*target]bool{}
	add := func(id string, k kind) {
		t := &target{id: id, kind: k, policy: cfg.Policy, scanEvery: cfg.PostureInterval.D(), self: c.self, logger: c.logger}
		if prev, ok := byID[id]; ok {
			t.out = prev.out
			k.carry(prev.kind)
		} else {
			t.out, fresh[t] = new(texts), true
		}
		targets = append(targets, t)
	}
	for i := range cfg.Endpoints {
		ep := &cfg.Endpoints[i] // applied configs are not changed
		pt, err := probe.NewTargetAt(ep)
		if err != nil {
			return nil, nil, fmt.Errorf("endpoint %s: %w", ep.Name, err)
		}
		c.tf.guard(pt)
		add(identity("endpoint", *ep), newEndpoint(pt, cfg.Policy, changesFor(changes, ep.Name)))
	}
	for _, g := range cfg.Files {
		add(identity("file", g), newFileGroup(g))
	}
	return targets, fresh, nil
}

func endpointsIn(targets []*target) int {
	n := 0
	for _, t := range targets {
		if _, ok := t.kind.(*endpoint); ok {
			n++
		}
	}
	return n
}

// Config is the config in force.
func (c *Collector) Config() *config.Config {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cfg
}

// identity changes whenever the definition does, so a changed target is a
// new target: refreshed at once, with no stale result from its old
// definition.
func identity(kind string, def any) string {
	b, err := json.Marshal(def)
	if err != nil {
		panic(err) // config types always marshal
	}
	sum := sha256.Sum256(b)
	return kind + "/" + hex.EncodeToString(sum[:12])
}

// renderLive renders the metrics computed at scrape time: the exporter's own.
func (c *Collector) renderLive(ch *metrics.Samples) {
	c.mu.RLock()
	targets, endpoints := len(c.targets), c.endpointCount
	c.mu.RUnlock()
	c.self.render(ch, endpoints, targets-endpoints)
	c.ondemand.render(ch)
	c.tf.render(ch)
}

// expositions snapshots the cached text of every target that has a result,
// with each one's slot in the gzip cache (its index), then the exporter's
// own metrics (slot -1: rendered at each scrape).
func (c *Collector) expositions(targets []*target) (metrics.Scrape, error) {
	s := metrics.Scrape{Exps: make([]*metrics.Exposition, 0, 2*len(targets)+1), Slots: make([]int32, 0, 2*len(targets)+1)}
	add := func(e *metrics.Exposition, slot int) error {
		if e == nil {
			return nil
		}
		s.Exps, s.Slots = append(s.Exps, e), append(s.Slots, int32(slot))
		return e.Err()
	}
	for i, t := range targets {
		if err := errors.Join(add(t.out.result.Load(), i), add(t.out.posture.Load(), i)); err != nil {
			return metrics.Scrape{}, err
		}
	}
	if err := add(metrics.Render(c.renderLive), -1); err != nil {
		return metrics.Scrape{}, err
	}
	return s, nil
}

// WriteMetrics writes what /metrics serves (web.MetricsHandler): every
// target's cached text and the collector's own metrics, merged in name
// order with what g gathers (the process's Go, process and build metrics),
// countdowns computed at now.
func (c *Collector) WriteMetrics(w io.Writer, g prometheus.Gatherer, now time.Time) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	c.mu.RLock()
	targets := c.targets
	c.mu.RUnlock()
	s, err := c.expositions(targets)
	if err != nil {
		return err
	}
	return metrics.Write(w, s.Exps, mfs, now)
}

// GzipMetrics is what WriteMetrics writes, as a gzip body made mostly of
// segments cached since the last scrape (metrics.GzipCache). The targets
// and their cache are read together: a reload replaces both.
func (c *Collector) GzipMetrics(g prometheus.Gatherer, now time.Time) ([]byte, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	c.mu.RLock()
	targets, gz := c.targets, c.gz
	c.mu.RUnlock()
	return gz.Gzip(func() (metrics.Scrape, error) { return c.expositions(targets) }, mfs, now)
}
