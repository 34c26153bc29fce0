package metrics

import (
	"crypto/tls"
	"strconv"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/policy"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// RenderEndpointPosture renders an endpoint's posture: certificate
// findings and OCSP from its last probe, its last posture scan, and the
// policy's verdict on both.
func RenderEndpointPosture(ch *Samples, pol config.Policy, ep config.Endpoint, last *probe.TLSResult, scan *probe.PostureResult) {
	if last != nil {
		renderFindings(ch, pol, ep.Name, "endpoint", "", last.Certificates)
		renderOCSP(ch, ep.Name, last.OCSP)
	}
	if scan != nil {
		renderScan(ch, ep, scan)
	}
	for _, v := range policy.EndpointViolations(pol, ep, last, scan) {
		ch.Gauge(PolicyViolation, 1, ep.Name, string(v.Rule))
	}
}

func renderScan(ch *Samples, ep config.Endpoint, s *probe.PostureResult) {
	name := ep.Name
	ch.Gauge(PostureLastRun, Unix(s.Time), name)
	for _, v := range s.Versions {
		ch.Gauge(VersionAccepted, Bool(v.Accepted), name, tls.VersionName(v.Version))
	}
	for _, su := range s.Suites {
		ch.Gauge(SuiteAccepted, 1, name, tls.VersionName(su.Version), suiteName(su.Suite), strconv.FormatBool(su.Secure))
	}
	if s.ClientCertRequired != nil && ep.TLSConfig.CertFile != "" {
		ch.Gauge(ClientCertRequired, Bool(*s.ClientCertRequired), name)
	}
	if s.HSTS != nil {
		ch.Gauge(HSTSMaxAge, float64(s.HSTS.MaxAge), name)
	}
	renderUnknown(ch, name, s.Unknown)
}

// RenderKeys renders a key check of a file group.
func RenderKeys(ch *Samples, name string, r *certfile.KeyResult) {
	ch.Gauge(PostureLastRun, Unix(r.Time), name)
	for _, k := range r.Keys {
		ch.Gauge(KeyInsecure, Bool(k.InsecurePermissions), name, k.Path)
		if k.Matches != nil {
			ch.Gauge(KeyMatches, Bool(*k.Matches), name, k.Path)
		}
	}
	renderUnknown(ch, name, r.Unknown)
}

// renderUnknown reports each check once: a glob repeated in key_paths
// fails twice, and a repeated series would fail the whole scrape.
func renderUnknown(ch *Samples, name string, us []probe.UnknownCheck) {
	done := make(map[probe.UnknownCheck]bool, len(us))
	for _, u := range us {
		k := probe.UnknownCheck{Check: u.Check, Reason: u.Reason}
		if !done[k] {
			done[k] = true
			ch.Gauge(PostureUnknown, 1, name, u.Check, string(u.Reason))
		}
	}
}

func renderOCSP(ch *Samples, name string, o *probe.OCSPInfo) {
	if o == nil {
		return
	}
	ch.Gauge(OCSPStapled, Bool(o.Stapled), name)
	if o.Status != "" {
		ch.Gauge(OCSPStatus, 1, name, o.Status)
	}
	if !o.NextUpdate.IsZero() {
		ch.Gauge(OCSPNextUpdate, Unix(o.NextUpdate), name)
	}
}

// RenderPins renders whether the served chain matches the endpoint's pins.
func RenderPins(ch *Samples, ep config.Endpoint, last *probe.TLSResult) {
	if len(ep.PinSHA256) == 0 || last == nil || len(last.Certificates) == 0 {
		return
	}
	ch.Gauge(PinMatch, Bool(policy.PinMatch(ep.PinSHA256, last.Certificates)), ep.Name)
}

// RenderFilePosture renders a file group's certificate findings and the
// policy's verdict on them.
func RenderFilePosture(ch *Samples, pol config.Policy, g config.FileGroup, res *certfile.FileResult) {
	for _, f := range res.Files {
		renderFindings(ch, pol, g.Name, g.Source(), f.Path, f.Certificates)
	}
	for _, v := range policy.FileViolations(pol, res) {
		ch.Gauge(PolicyViolation, 1, g.Name, string(v.Rule))
	}
}

// renderFindings labels each certificate's serial as renderCerts does, so
// findings join its other series; certificates that would still share role
// and serial (old roots numbered 0, with different names) get a fingerprint
// suffix, as a repeated series would fail the whole scrape.
func renderFindings(ch *Samples, pol config.Policy, target, source, path string, certs []probe.CertInfo) {
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
		for _, f := range policy.CertFindings(c, pol) {
			ch.Gauge(CertFinding, 1, target, source, path, c.Role, serial, string(f))
		}
	}
}

// RenderLastChange renders when an endpoint's leaf certificate last changed.
func RenderLastChange(ch *Samples, name string, at time.Time) {
	ch.Gauge(LastChange, Unix(at), name)
}
