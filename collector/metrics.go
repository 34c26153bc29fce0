package collector

import (
	"crypto/tls"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// gauge sends a sample. The labels slice is kept, so it must not change
// after the call.
func gauge(ch *metrics.Samples, f *metrics.Family, v float64, labels ...string) {
	ch.Gauge(f, v, labels...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func renderEndpoint(ch *metrics.Samples, ep config.Endpoint, r *probe.TLSResult, now time.Time) {
	name := ep.Name
	gauge(ch, metrics.ProbeSuccess, boolValue(r.Success), name)
	gauge(ch, metrics.LastRun, unix(r.Time), name)
	gauge(ch, metrics.RefreshInterval, ep.Interval.D().Seconds(), name)
	gauge(ch, metrics.InsecureSkip, boolValue(ep.TLSConfig.InsecureSkipVerify), name)
	if ep.MCPTransport() != config.TransportNone {
		gauge(ch, metrics.MCPBearerToken, boolValue(ep.MCP.BearerTokenFile != ""), name)
	}
	if r.Reason != probe.ReasonNone {
		gauge(ch, metrics.ProbeError, 1, name, string(r.Reason))
	}
	for phase, d := range map[string]time.Duration{"dns": r.Phases.DNS, "connect": r.Phases.Connect, "handshake": r.Phases.Handshake} {
		gauge(ch, metrics.ProbeDuration, d.Seconds(), name, phase)
	}
	renderMCP(ch, name, r.MCP)
	if !r.Success && len(r.Certificates) == 0 {
		return
	}
	gauge(ch, metrics.CertVerified, boolValue(r.Verified), name)
	if r.Version != 0 {
		gauge(ch, metrics.TLSVersion, 1, name, tls.VersionName(r.Version))
		gauge(ch, metrics.TLSCipher, 1, name, tls.CipherSuiteName(r.CipherSuite))
	}
	renderLimits(ch, name, "", r.Limits)
	renderCerts(ch, name, "endpoint", "", r.Certificates, ep.Limits, now)
}

func renderLimits(ch *metrics.Samples, target, path string, limits []probe.LimitReached) {
	for _, l := range limits {
		gauge(ch, metrics.LimitReached, 1, target, path, string(l.Limit))
	}
}

func renderFiles(ch *metrics.Samples, g config.FileGroup, r *certfile.FileResult, now time.Time) {
	renderFileGroup(ch, g, r)
	renderFileStates(ch, g, r.Files, now)
}

// renderFileGroup is what changes at every read of a group, whatever its
// files hold.
func renderFileGroup(ch *metrics.Samples, g config.FileGroup, r *certfile.FileResult) {
	gauge(ch, metrics.LastRun, unix(r.Time), g.Name)
	gauge(ch, metrics.RefreshInterval, g.Interval.D().Seconds(), g.Name)
}

func renderFileStates(ch *metrics.Samples, g config.FileGroup, files []certfile.FileState, now time.Time) {
	for _, f := range files {
		if f.Reason != probe.ReasonNone {
			gauge(ch, metrics.FileError, 1, g.Name, f.Path, string(f.Reason))
			continue
		}
		renderLimits(ch, g.Name, f.Path, f.Limits)
		renderCerts(ch, g.Name, g.Source(), f.Path, f.Certificates, g.Limits, now)
	}
}

func renderCerts(ch *metrics.Samples, target, source, path string, certs []probe.CertInfo, lim config.Limits, now time.Time) {
	var seen map[string]bool
	sansCut := false
	for i := range certs {
		c := &certs[i]
		serial := c.Serial
		if len(certs) > 1 {
			if seen == nil {
				seen = make(map[string]bool, len(certs))
			}
			serial = distinctSerial(seen, c)
		}
		labels := []string{target, source, path, c.Role, c.SubjectCN, c.IssuerCN, serial}
		*ch = append(*ch, metrics.Sample{Family: metrics.CertExpiry, Value: c.NotAfter.Sub(now).Seconds(), Labels: labels, Deadline: c.NotAfter})
		gauge(ch, metrics.CertNotAfter, unix(c.NotAfter), labels...)
		gauge(ch, metrics.CertNotBefore, unix(c.NotBefore), labels...)
		sans, cut := sansLabel(c.SANs, lim.SANsPerCertificate)
		sansCut = sansCut || cut
		gauge(ch, metrics.CertInfo, 1, append(labels, c.FingerprintSHA256, sans, c.KeyType,
			strconv.Itoa(c.KeyBits), c.SignatureAlgorithm)...)
	}
	if sansCut {
		gauge(ch, metrics.LimitReached, 1, target, path, string(probe.LimitSANsPerCertificate))
	}
}

// sansLabel joins at most max SANs (no limit when max is 0), and says how
// many it left out.
func sansLabel(sans []string, max int) (string, bool) {
	if max <= 0 || len(sans) <= max {
		return strings.Join(sans, ","), false
	}
	return strings.Join(sans[:max], ",") + ",…(+" + strconv.Itoa(len(sans)-max) + " more)", true
}

// distinctSerial keeps series unique when two certificates of one file share
// role, names and serial (old roots with serial 0 do): the later one's serial
// label gains a fingerprint prefix, as x509-certificate-exporter's
// discriminator does, rather than hiding a certificate.
func distinctSerial(seen map[string]bool, c *probe.CertInfo) string {
	key := c.Role + "\x00" + c.SubjectCN + "\x00" + c.IssuerCN + "\x00" + c.Serial
	if !seen[key] {
		seen[key] = true
		return c.Serial
	}
	return c.Serial + "-" + c.FingerprintSHA256[:12]
}

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
