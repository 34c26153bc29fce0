package collector

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

const cachedNote = " Computed from the last cached refresh, not at scrape time."

var (
	certLabels     = []string{"target", "source", "path", "role", "subject_cn", "issuer_cn", "serial"}
	certInfoLabels = append(append([]string{}, certLabels...), "fingerprint_sha256", "sans", "key_type", "key_bits", "signature_algorithm")

	certExpiry = prometheus.NewDesc("ssl_certificate_expiry_seconds",
		"Seconds until the certificate's NotAfter, negative once expired. Counted down at scrape time from the cached NotAfter; "+
			"the certificate itself comes from the last cached refresh.", certLabels, nil)
	certNotAfter = prometheus.NewDesc("ssl_certificate_not_after_timestamp_seconds",
		"NotAfter of the certificate as a Unix timestamp."+cachedNote, certLabels, nil)
	certNotBefore = prometheus.NewDesc("ssl_certificate_not_before_timestamp_seconds",
		"NotBefore of the certificate as a Unix timestamp."+cachedNote, certLabels, nil)
	certInfo = prometheus.NewDesc("ssl_certificate_info",
		"Always 1; labels describe the certificate."+cachedNote, certInfoLabels, nil)

	probeSuccess = prometheus.NewDesc("ssl_probe_success",
		"1 if the TCP connect and the TLS handshake completed, whatever the verification result."+cachedNote, []string{"target"}, nil)
	certVerified = prometheus.NewDesc("ssl_certificate_verified",
		"1 if the chain, the hostname and the validity period all verified."+cachedNote, []string{"target"}, nil)
	insecureSkip = prometheus.NewDesc("ssl_insecure_skip_verify",
		"1 if the endpoint sets insecure_skip_verify: verification is still reported but its failure does not count.", []string{"target"}, nil)
	probeError = prometheus.NewDesc("ssl_probe_error_info",
		"1 for the reason the last probe failed; absent when it did not. Reasons and remedies are in docs/reasons.md."+cachedNote,
		[]string{"target", "reason"}, nil)
	tlsVersion = prometheus.NewDesc("ssl_tls_version_info",
		"1 for the TLS version negotiated by the last probe."+cachedNote, []string{"target", "version"}, nil)
	tlsCipher = prometheus.NewDesc("ssl_tls_cipher_info",
		"1 for the cipher suite negotiated by the last probe, by Go's name."+cachedNote, []string{"target", "cipher"}, nil)
	probeDuration = prometheus.NewDesc("ssl_probe_duration_seconds",
		"Time the last probe spent in each phase."+cachedNote, []string{"target", "phase"}, nil)
	lastRun = prometheus.NewDesc("ssl_probe_last_run_timestamp_seconds",
		"When the last refresh of this target (endpoint probe or file read) started, as a Unix timestamp.", []string{"target"}, nil)
	refreshInterval = prometheus.NewDesc("ssl_probe_interval_seconds",
		"The configured refresh interval of this target, for staleness alerts.", []string{"target"}, nil)
	limitReached = prometheus.NewDesc("ssl_limit_reached_info",
		"1 for each limit (a key of the config's limits: block) that left certificates or SANs out of what this target "+
			"exports; path is empty for an endpoint."+cachedNote, []string{"target", "path", "limit"}, nil)
	fileError = prometheus.NewDesc("ssl_file_error_info",
		"1 for a certificate file (or glob) that could not be used, with the reason."+cachedNote, []string{"target", "path", "reason"}, nil)
)

// gauge sends a sample. The labels slice is kept, so it must not change
// after the call.
func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- sample{d, v, labels}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func renderEndpoint(ch chan<- prometheus.Metric, ep config.Endpoint, r *probe.TLSResult, now time.Time) {
	name := ep.Name
	gauge(ch, probeSuccess, boolValue(r.Success), name)
	gauge(ch, lastRun, unix(r.Time), name)
	gauge(ch, refreshInterval, ep.Interval.D().Seconds(), name)
	gauge(ch, insecureSkip, boolValue(ep.TLSConfig.InsecureSkipVerify), name)
	if ep.MCPTransport() != config.TransportNone {
		gauge(ch, mcpBearerToken, boolValue(ep.MCP.BearerTokenFile != ""), name)
	}
	if r.Reason != probe.ReasonNone {
		gauge(ch, probeError, 1, name, string(r.Reason))
	}
	for phase, d := range map[string]time.Duration{"dns": r.Phases.DNS, "connect": r.Phases.Connect, "handshake": r.Phases.Handshake} {
		gauge(ch, probeDuration, d.Seconds(), name, phase)
	}
	renderMCP(ch, name, r.MCP)
	if !r.Success && len(r.Certificates) == 0 {
		return
	}
	gauge(ch, certVerified, boolValue(r.Verified), name)
	if r.Version != 0 {
		gauge(ch, tlsVersion, 1, name, tls.VersionName(r.Version))
		gauge(ch, tlsCipher, 1, name, tls.CipherSuiteName(r.CipherSuite))
	}
	renderLimits(ch, name, "", r.Limits)
	renderCerts(ch, name, "endpoint", "", r.Certificates, ep.Limits, now)
}

func renderLimits(ch chan<- prometheus.Metric, target, path string, limits []probe.LimitReached) {
	for _, l := range limits {
		gauge(ch, limitReached, 1, target, path, string(l.Limit))
	}
}

func renderFiles(ch chan<- prometheus.Metric, g config.FileGroup, r *probe.FileResult, now time.Time) {
	renderFileGroup(ch, g, r)
	renderFileStates(ch, g, r.Files, now)
}

// renderFileGroup is what changes at every read of a group, whatever its
// files hold.
func renderFileGroup(ch chan<- prometheus.Metric, g config.FileGroup, r *probe.FileResult) {
	gauge(ch, lastRun, unix(r.Time), g.Name)
	gauge(ch, refreshInterval, g.Interval.D().Seconds(), g.Name)
}

func renderFileStates(ch chan<- prometheus.Metric, g config.FileGroup, files []probe.FileState, now time.Time) {
	for _, f := range files {
		if f.Reason != probe.ReasonNone {
			gauge(ch, fileError, 1, g.Name, f.Path, string(f.Reason))
			continue
		}
		renderLimits(ch, g.Name, f.Path, f.Limits)
		renderCerts(ch, g.Name, g.Source(), f.Path, f.Certificates, g.Limits, now)
	}
}

func renderCerts(ch chan<- prometheus.Metric, target, source, path string, certs []probe.CertInfo, lim config.Limits, now time.Time) {
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
		ch <- countdown{sample{certExpiry, c.NotAfter.Sub(now).Seconds(), labels}, c.NotAfter}
		gauge(ch, certNotAfter, unix(c.NotAfter), labels...)
		gauge(ch, certNotBefore, unix(c.NotBefore), labels...)
		sans, cut := sansLabel(c.SANs, lim.SANsPerCertificate)
		sansCut = sansCut || cut
		gauge(ch, certInfo, 1, append(labels, c.FingerprintSHA256, sans, c.KeyType,
			strconv.Itoa(c.KeyBits), c.SignatureAlgorithm)...)
	}
	if sansCut {
		gauge(ch, limitReached, 1, target, path, string(probe.LimitSANsPerCertificate))
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
	targets         *prometheus.Desc
	verifyCache     [3]*prometheus.Desc // hits, misses, evictions
	verifyEntries   *prometheus.Desc
	done            atomic.Uint64 // refreshes, for Collector.Refreshes
}

func newSelfMetrics() *selfMetrics {
	return &selfMetrics{
		refreshDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mcp_cert_exporter_refresh_duration_seconds",
			Help:    "Wall time of each refresh: one endpoint probe, one file group read or one posture scan.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_cert_exporter_refreshes_total",
			Help: "Refreshes run, by kind and by whether they found a failure.",
		}, []string{"kind", "result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcp_cert_exporter_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcp_cert_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
		targets: prometheus.NewDesc("mcp_cert_exporter_targets",
			"Targets in the configuration in force, by kind.", []string{"kind"}, nil),
		verifyCache: [3]*prometheus.Desc{
			prometheus.NewDesc("mcp_cert_exporter_verify_cache_hits_total",
				"Lookups answered by a verification cache: chains already built (cache=chains), signatures already checked (cache=signatures).", []string{"cache"}, nil),
			prometheus.NewDesc("mcp_cert_exporter_verify_cache_misses_total",
				"Lookups a verification cache could not answer: first sight, changed roots, a validity edge crossed, or a failed verification.", []string{"cache"}, nil),
			prometheus.NewDesc("mcp_cert_exporter_verify_cache_evictions_total",
				"Entries dropped from a full verification cache, least recently used first.", []string{"cache"}, nil),
		},
		verifyEntries: prometheus.NewDesc("mcp_cert_exporter_verify_cache_entries",
			fmt.Sprintf("Entries in a verification cache; it holds at most %d chains and %d signatures.",
				probe.VerifyCacheSize, 2*probe.VerifyCacheSize), []string{"cache"}, nil),
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
	gauge(ch, s.targets, float64(endpoints), "endpoint")
	gauge(ch, s.targets, float64(files), "file")
	chains, sigs := probe.ReadVerifyCacheStats()
	for _, c := range [2]struct {
		name string
		probe.VerifyCacheStats
	}{{"chains", chains}, {"signatures", sigs}} {
		for i, v := range [3]uint64{c.Hits, c.Misses, c.Evictions} {
			ch <- prometheus.MustNewConstMetric(s.verifyCache[i], prometheus.CounterValue, float64(v), c.name)
		}
		gauge(ch, s.verifyEntries, float64(c.Entries), c.name)
	}
}
