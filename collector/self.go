package collector

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// refreshBuckets are the upper bounds of mcp_cert_exporter_refresh_duration_seconds.
var refreshBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// selfMetrics are the exporter's own health, rendered at each scrape with
// the same encoder as the targets' metrics: no registry of their own.
type selfMetrics struct {
	mu         sync.Mutex
	durations  map[string]*histogram // by kind
	refreshes  counters              // by kind and result
	reloadOK   float64
	reloadTime float64
	done       atomic.Uint64 // refreshes, for Collector.Refreshes
}

func newSelfMetrics() *selfMetrics {
	return &selfMetrics{durations: map[string]*histogram{}}
}

func (s *selfMetrics) observe(kind string, start time.Time, ok bool) {
	took := time.Since(start).Seconds()
	result := "success"
	if !ok {
		result = "failure"
	}
	s.mu.Lock()
	h := s.durations[kind]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(refreshBuckets)+1)}
		s.durations[kind] = h
	}
	h.observe(took)
	s.mu.Unlock()
	s.refreshes.inc(kind, result)
	if kind != "posture" { // posture runs on its own schedule and is reported apart
		s.done.Add(1)
	}
}

// reloaded records the outcome of a reload.
func (s *selfMetrics) reloaded(ok bool, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloadOK = metrics.Bool(ok)
	if ok {
		s.reloadTime = float64(at.Unix())
	}
}

// render renders the exporter's own metrics now, each family's series in
// label order, as a registry would.
func (s *selfMetrics) render(ch *metrics.Samples, endpoints, files int) {
	s.mu.Lock()
	for _, kind := range slices.Sorted(maps.Keys(s.durations)) {
		h := s.durations[kind]
		ch.Histogram(metrics.RefreshDuration, refreshBuckets, slices.Clone(h.counts), h.sum, kind)
	}
	ch.Gauge(metrics.ReloadOK, s.reloadOK)
	ch.Gauge(metrics.ReloadTime, s.reloadTime)
	s.mu.Unlock()
	s.refreshes.render(ch, metrics.Refreshes)
	ch.Gauge(metrics.Targets, float64(endpoints), "endpoint")
	ch.Gauge(metrics.Targets, float64(files), "file")
	chains, sigs := probe.ReadVerifyCacheStats()
	for _, c := range [2]struct {
		name string
		probe.VerifyCacheStats
	}{{"chains", chains}, {"signatures", sigs}} {
		ch.Gauge(metrics.VerifyCacheHits, float64(c.Hits), c.name)
		ch.Gauge(metrics.VerifyCacheMisses, float64(c.Misses), c.name)
		ch.Gauge(metrics.VerifyCacheEvictions, float64(c.Evictions), c.name)
		ch.Gauge(metrics.VerifyCacheEntries, float64(c.Entries), c.name)
	}
	ch.Gauge(metrics.LabelValuesCut, float64(metrics.LabelCuts()))
}

// histogram counts observations per bucket of refreshBuckets, the last
// for those above every bound.
type histogram struct {
	counts []uint64
	sum    float64
}

func (h *histogram) observe(v float64) {
	i, _ := slices.BinarySearch(refreshBuckets, v) // the first bound >= v
	h.counts[i]++
	h.sum += v
}

// counters are a counter family's series by their two label values.
type counters struct {
	mu sync.Mutex
	m  map[[2]string]float64
}

func (c *counters) inc(a, b string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[2]string]float64{}
	}
	c.m[[2]string{a, b}]++
}

// render writes the series sorted by label values; the family's two labels
// must be in name order.
func (c *counters) render(ch *metrics.Samples, f *metrics.Family) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(c.m), func(x, y [2]string) int {
		return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1]))
	})
	for _, k := range keys {
		ch.Gauge(f, c.m[k], k[0], k[1])
	}
}
