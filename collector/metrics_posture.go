package collector

import (
	"crypto/tls"
	"strconv"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/policy"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

func renderEndpointPosture(ch *metrics.Samples, pol config.Policy, ep config.Endpoint, last *probe.TLSResult, scan *probe.PostureResult) {
	if last != nil {
		renderFindings(ch, pol, ep.Name, "endpoint", "", last.Certificates)
		renderOCSP(ch, ep.Name, last.OCSP)
	}
	if scan != nil {
		renderScan(ch, ep, scan)
	}
	for _, v := range policy.EndpointViolations(pol, ep, last, scan) {
		gauge(ch, metrics.PolicyViolation, 1, ep.Name, string(v.Rule))
	}
}

func renderScan(ch *metrics.Samples, ep config.Endpoint, s *probe.PostureResult) {
	name := ep.Name
	gauge(ch, metrics.PostureLastRun, unix(s.Time), name)
	for _, v := range s.Versions {
		gauge(ch, metrics.VersionAccepted, boolValue(v.Accepted), name, tls.VersionName(v.Version))
	}
	for _, su := range s.Suites {
		gauge(ch, metrics.SuiteAccepted, 1, name, tls.VersionName(su.Version), tls.CipherSuiteName(su.Suite), strconv.FormatBool(su.Secure))
	}
	if s.ClientCertRequired != nil && ep.TLSConfig.CertFile != "" {
		gauge(ch, metrics.ClientCertRequired, boolValue(*s.ClientCertRequired), name)
	}
	if s.HSTS != nil {
		gauge(ch, metrics.HSTSMaxAge, float64(s.HSTS.MaxAge), name)
	}
	renderUnknown(ch, name, s.Unknown)
}

func renderKeys(ch *metrics.Samples, name string, r *certfile.KeyResult) {
	gauge(ch, metrics.PostureLastRun, unix(r.Time), name)
	for _, k := range r.Keys {
		gauge(ch, metrics.KeyInsecure, boolValue(k.InsecurePermissions), name, k.Path)
		if k.Matches != nil {
			gauge(ch, metrics.KeyMatches, boolValue(*k.Matches), name, k.Path)
		}
	}
	renderUnknown(ch, name, r.Unknown)
}

// renderUnknown reports each check once: a glob repeated in key_paths
// fails twice, and a repeated series would fail the whole scrape.
func renderUnknown(ch *metrics.Samples, name string, us []probe.UnknownCheck) {
	done := make(map[probe.UnknownCheck]bool, len(us))
	for _, u := range us {
		k := probe.UnknownCheck{Check: u.Check, Reason: u.Reason}
		if !done[k] {
			done[k] = true
			gauge(ch, metrics.PostureUnknown, 1, name, u.Check, string(u.Reason))
		}
	}
}

func renderOCSP(ch *metrics.Samples, name string, o *probe.OCSPInfo) {
	if o == nil {
		return
	}
	gauge(ch, metrics.OCSPStapled, boolValue(o.Stapled), name)
	if o.Status != "" {
		gauge(ch, metrics.OCSPStatus, 1, name, o.Status)
	}
	if !o.NextUpdate.IsZero() {
		gauge(ch, metrics.OCSPNextUpdate, unix(o.NextUpdate), name)
	}
}

func renderPins(ch *metrics.Samples, ep config.Endpoint, last *probe.TLSResult) {
	if len(ep.PinSHA256) == 0 || last == nil || len(last.Certificates) == 0 {
		return
	}
	gauge(ch, metrics.PinMatch, boolValue(policy.PinMatch(ep.PinSHA256, last.Certificates)), ep.Name)
}

func renderFilePosture(ch *metrics.Samples, pol config.Policy, g config.FileGroup, res *certfile.FileResult) {
	for _, f := range res.Files {
		renderFindings(ch, pol, g.Name, g.Source(), f.Path, f.Certificates)
	}
	for _, v := range policy.FileViolations(pol, res) {
		gauge(ch, metrics.PolicyViolation, 1, g.Name, string(v.Rule))
	}
}

// renderFindings labels each certificate's serial as renderCerts does, so
// findings join its other series; certificates that would still share role
// and serial (old roots numbered 0, with different names) get a fingerprint
// suffix, as a repeated series would fail the whole scrape.
func renderFindings(ch *metrics.Samples, pol config.Policy, target, source, path string, certs []probe.CertInfo) {
	seen := make(map[string]bool, len(certs))
	owner := make(map[string]string, len(certs)) // role and serial label → fingerprint
	for i := range certs {
		c := &certs[i]
		serial := c.Serial
		if len(certs) > 1 {
			serial = distinctSerial(seen, c)
		}
		key := c.Role + "\x00" + serial
		if fp, taken := owner[key]; !taken {
			owner[key] = c.FingerprintSHA256
		} else if fp != c.FingerprintSHA256 {
			serial += "-" + c.FingerprintSHA256[:12]
		}
		for _, f := range probe.CertFindings(c, pol) {
			gauge(ch, metrics.CertFinding, 1, target, source, path, c.Role, serial, string(f))
		}
	}
}
