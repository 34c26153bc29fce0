package metrics

import (
	"crypto/tls"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// The render functions turn one result into samples: pure functions of the
// result, its target's config and, for countdowns, the time.

// Bool is a boolean as a sample value.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Unix is a time as a sample value: seconds since the epoch.
func Unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// RenderEndpoint renders an endpoint probe: its outcome, phases, MCP
// exchange, TLS version and cipher; RenderEndpointCerts renders the
// certificates it was served.
func RenderEndpoint(ch *Samples, ep config.Endpoint, r *probe.TLSResult, now time.Time) {
	name := ep.Name
	ch.Gauge(ProbeSuccess, Bool(r.Success), name)
	ch.Gauge(LastRun, Unix(r.Time), name)
	ch.Gauge(RefreshInterval, ep.Interval.D().Seconds(), name)
	ch.Gauge(InsecureSkip, Bool(ep.TLSConfig.InsecureSkipVerify), name)
	if ep.MCPTransport() != config.TransportNone {
		ch.Gauge(MCPBearerToken, Bool(ep.MCP.BearerTokenFile != ""), name)
	}
	if r.Reason != probe.ReasonNone {
		ch.Gauge(ProbeError, 1, name, string(r.Reason))
	}
	ch.Gauge(ProbeDuration, r.Phases.DNS.Seconds(), name, "dns")
	ch.Gauge(ProbeDuration, r.Phases.Connect.Seconds(), name, "connect")
	ch.Gauge(ProbeDuration, r.Phases.Handshake.Seconds(), name, "handshake")
	renderMCP(ch, name, r.MCP)
	if !r.Success && len(r.Certificates) == 0 {
		return
	}
	ch.Gauge(CertVerified, Bool(r.Verified), name)
	if r.Version != 0 {
		ch.Gauge(TLSVersion, 1, name, tls.VersionName(r.Version))
		ch.Gauge(TLSCipher, 1, name, suiteName(r.CipherSuite))
	}
	renderLimits(ch, name, "", r.Limits)
}

// RenderEndpointCerts renders the certificates an endpoint probe was served:
// a function of them, the endpoint and limits.label_length alone (expiry is
// a countdown, computed at each scrape), so equal lists (SameCerts) render
// the same text.
func RenderEndpointCerts(ch *Samples, ep config.Endpoint, certs []probe.CertInfo, now time.Time) {
	renderCerts(ch, ep.Name, "endpoint", "", certs, ep.Limits, now)
}

// SameCerts reports whether two certificate lists hold the same values of
// every field renderCerts reads (Findings and the SPKI hash it does not).
func SameCerts(a, b []probe.CertInfo) bool {
	if len(a) == len(b) && len(a) > 0 && &a[0] == &b[0] {
		return true // one list: the probe reused the facts of the last
	}
	return slices.EqualFunc(a, b, func(x, y probe.CertInfo) bool {
		return x.Role == y.Role && x.SubjectCN == y.SubjectCN && x.IssuerCN == y.IssuerCN && x.Serial == y.Serial &&
			x.NotBefore.Equal(y.NotBefore) && x.NotAfter.Equal(y.NotAfter) && x.FingerprintSHA256 == y.FingerprintSHA256 &&
			slices.Equal(x.SANs, y.SANs) && x.KeyType == y.KeyType && x.KeyBits == y.KeyBits &&
			x.SignatureAlgorithm == y.SignatureAlgorithm
	})
}

// suiteNames is tls.CipherSuiteName of every suite Go knows, kept:
// CipherSuiteName builds the list of suites anew at each call.
var suiteNames = func() map[uint16]string {
	m := map[uint16]string{}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		m[s.ID] = s.Name
	}
	return m
}()

func suiteName(id uint16) string {
	if name, ok := suiteNames[id]; ok {
		return name
	}
	return tls.CipherSuiteName(id) // 0x%04X
}

func renderLimits(ch *Samples, target, path string, limits []probe.LimitReached) {
	for _, l := range limits {
		ch.Gauge(LimitReached, 1, target, path, string(l.Limit))
	}
}

// RenderFiles renders a read of a file group: the group and its files.
func RenderFiles(ch *Samples, g config.FileGroup, r *certfile.FileResult, now time.Time) {
	RenderFileGroup(ch, g, r)
	RenderFileStates(ch, g, r.Files, now)
}

// RenderFileGroup renders what changes at every read of a group, whatever its
// files hold.
func RenderFileGroup(ch *Samples, g config.FileGroup, r *certfile.FileResult) {
	ch.Gauge(LastRun, Unix(r.Time), g.Name)
	ch.Gauge(RefreshInterval, g.Interval.D().Seconds(), g.Name)
}

// RenderFileStates renders a group's files: the certificates in each, or
// why it could not be read.
func RenderFileStates(ch *Samples, g config.FileGroup, files []certfile.FileState, now time.Time) {
	for _, f := range files {
		if f.Reason != probe.ReasonNone {
			ch.Gauge(FileError, 1, g.Name, f.Path, string(f.Reason))
			continue
		}
		renderLimits(ch, g.Name, f.Path, f.Limits)
		renderCerts(ch, g.Name, g.Source(), f.Path, f.Certificates, g.Limits, now)
	}
}

func renderCerts(ch *Samples, target, source, path string, certs []probe.CertInfo, lim config.Limits, now time.Time) {
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
		*ch = append(*ch, Sample{Family: CertExpiry, Value: c.NotAfter.Sub(now).Seconds(), Labels: labels, Deadline: c.NotAfter})
		ch.Gauge(CertNotAfter, Unix(c.NotAfter), labels...)
		ch.Gauge(CertNotBefore, Unix(c.NotBefore), labels...)
		sans, cut := sansLabel(c.SANs, lim.SANsPerCertificate)
		sansCut = sansCut || cut
		ch.Gauge(CertInfo, 1, append(labels, c.FingerprintSHA256, sans, c.KeyType,
			strconv.Itoa(c.KeyBits), c.SignatureAlgorithm)...)
	}
	if sansCut {
		ch.Gauge(LimitReached, 1, target, path, string(probe.LimitSANsPerCertificate))
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

// renderMCP renders the MCP result of an endpoint probe; nil renders nothing.
func renderMCP(ch *Samples, target string, m *probe.MCPResult) {
	if m == nil {
		return
	}
	ch.Gauge(MCPUp, Bool(m.Up), target)
	if m.Up {
		ch.Gauge(MCPServerInfo, 1, target, m.Transport, m.ProtocolVersion, m.ServerName, m.ServerVersion)
	}
	if m.Connections > 0 { // MCP was spoken
		ch.Gauge(MCPDuration, m.Duration.Seconds(), target)
	}
	if m.Reason != probe.MCPReasonNone {
		ch.Gauge(MCPError, 1, target, string(m.Reason))
	}
	if m.AuthMetadataValid != nil {
		ch.Gauge(MCPAuthMetadataValid, Bool(*m.AuthMetadataValid), target)
		ch.Gauge(MCPAuthMetadataLegacy, Bool(m.AuthLegacy), target)
	}
}
