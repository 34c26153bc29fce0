package collector

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// selfMetrics are the exporter's own health.
type selfMetrics struct {
	refreshDuration *prometheus.HistogramVec
	refreshes       *prometheus.CounterVec
	reloadOK        prometheus.Gauge
	reloadTime      prometheus.Gauge
	done            atomic.Uint64 // refreshes, for Collector.Refreshes
}

func newSelfMetrics() *selfMetrics {
	return &selfMetrics{
		refreshDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: metrics.RefreshDuration.Name, Help: metrics.RefreshDuration.Help,
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, metrics.RefreshDuration.Labels),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metrics.Refreshes.Name, Help: metrics.Refreshes.Help,
		}, metrics.Refreshes.Labels),
		reloadOK:   prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.ReloadOK.Name, Help: metrics.ReloadOK.Help}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.ReloadTime.Name, Help: metrics.ReloadTime.Help}),
	}
}

func (s *selfMetrics) observe(kind string, start time.Time, ok bool) {
	s.refreshDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	result := "success"
	if !ok {
		result = "failure"
	}
	s.refreshes.WithLabelValues(kind, result).Inc()
	if kind != "posture" { // posture runs on its own schedule and is reported apart
		s.done.Add(1)
	}
}

func (s *selfMetrics) collect(ch chan<- prometheus.Metric, endpoints, files int) {
	s.refreshDuration.Collect(ch)
	s.refreshes.Collect(ch)
	s.reloadOK.Collect(ch)
	s.reloadTime.Collect(ch)
	ch <- metrics.Sample{Family: metrics.Targets, Value: float64(endpoints), Labels: []string{"endpoint"}}
	ch <- metrics.Sample{Family: metrics.Targets, Value: float64(files), Labels: []string{"file"}}
	chains, sigs := probe.ReadVerifyCacheStats()
	for _, c := range [2]struct {
		name string
		probe.VerifyCacheStats
	}{{"chains", chains}, {"signatures", sigs}} {
		for f, v := range map[*metrics.Family]uint64{
			metrics.VerifyCacheHits: c.Hits, metrics.VerifyCacheMisses: c.Misses, metrics.VerifyCacheEvictions: c.Evictions,
		} {
			ch <- prometheus.MustNewConstMetric(f.Desc(), prometheus.CounterValue, float64(v), c.name)
		}
		ch <- metrics.Sample{Family: metrics.VerifyCacheEntries, Value: float64(c.Entries), Labels: []string{c.name}}
	}
}
