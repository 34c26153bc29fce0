package collector

import (
	"crypto/tls"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

const postureNote = " From the last cached posture scan (every posture_interval), not at scrape time."

var (
	versionAccepted = prometheus.NewDesc("ssl_tls_version_accepted",
		"1 if the server completed a handshake offering only this TLS version, 0 if it refused it; absent when the version "+
			"could not be tested (SSLv3 never can: Go lacks it)."+postureNote, []string{"target", "version"}, nil)
	suiteAccepted = prometheus.NewDesc("ssl_cipher_suite_accepted",
		"1 for each cipher suite the server accepted at this version, by Go's name; secure is false for CBC, RSA key exchange, "+
			"3DES and RC4. TLS 1.3 shows only the suite the server chose."+postureNote,
		[]string{"target", "version", "cipher", "secure"}, nil)
	clientCertRequired = prometheus.NewDesc("ssl_client_cert_required",
		"For endpoints with a client certificate configured: 1 if the server refuses a handshake without one, 0 if it "+
			"completes it; absent when unknown."+postureNote, []string{"target"}, nil)
	certFinding = prometheus.NewDesc("ssl_certificate_finding_info",
		"1 for each quality finding of a certificate (WEAK_KEY, WEAK_SIGNATURE, NO_SAN, VALIDITY_TOO_LONG, SELF_SIGNED, "+
			"CHAIN_ORDER, INCOMPLETE_CHAIN, MUST_STAPLE_MISSING). Remedies are in docs/posture.md."+cachedNote,
		[]string{"target", "source", "path", "role", "serial", "finding"}, nil)
	ocspStapled = prometheus.NewDesc("ssl_ocsp_stapled",
		"1 if the server stapled an OCSP response to its certificate."+cachedNote, []string{"target"}, nil)
	ocspStatus = prometheus.NewDesc("ssl_ocsp_status_info",
		"1 for the status of the stapled OCSP response: good, revoked or unknown once its signature checked against the "+
			"issuer, else invalid or unverified; absent when nothing was stapled."+cachedNote, []string{"target", "status"}, nil)
	ocspNextUpdate = prometheus.NewDesc("ssl_ocsp_next_update_timestamp_seconds",
		"NextUpdate of the stapled OCSP response as a Unix timestamp, when its signature checked out."+cachedNote,
		[]string{"target"}, nil)
	lastChange = prometheus.NewDesc("ssl_certificate_last_change_timestamp_seconds",
		"When the endpoint's leaf fingerprint last changed between two probes, as a Unix timestamp; before any change is "+
			"seen, the leaf's NotBefore.", []string{"target"}, nil)
	pinMatch = prometheus.NewDesc("ssl_certificate_pin_match",
		"1 if a public key of the served chain (or the verified root) matches one of the endpoint's pin_sha256 values; present only when pins are "+
			"configured."+cachedNote, []string{"target"}, nil)
	hstsMaxAge = prometheus.NewDesc("ssl_hsts_max_age_seconds",
		"max-age of the Strict-Transport-Security header of a url endpoint; 0 when there is no valid header."+postureNote,
		[]string{"target"}, nil)
	policyViolation = prometheus.NewDesc("ssl_policy_violation_info",
		"1 for each policy rule (a key under policy:) the target breaches. Rules and remedies are in docs/posture.md.",
		[]string{"target", "rule"}, nil)
	postureLastRun = prometheus.NewDesc("ssl_posture_last_run_timestamp_seconds",
		"When the last posture scan of this target (an endpoint's scan, a file group's key check) started, as a Unix timestamp.",
		[]string{"target"}, nil)
	keyMatches = prometheus.NewDesc("ssl_private_key_matches_certificate",
		"1 if the private key file belongs to the certificate it is paired with (its own file, key_pairs, the same name "+
			"stem, or else a certificate of the group with its public key), 0 if not; absent when the key could not be read or "+
			"belongs to no certificate of the group."+postureNote, []string{"target", "path"}, nil)
	keyInsecure = prometheus.NewDesc("ssl_private_key_insecure_permissions",
		"1 if the private key file is readable by its group or by others, or is not a regular file."+postureNote,
		[]string{"target", "path"}, nil)
	postureUnknown = prometheus.NewDesc("ssl_posture_check_unknown_info",
		"1 for each posture check the last scan could not run, with the reason; its metric is then absent, never passed."+postureNote,
		[]string{"target", "check", "reason"}, nil)
)

func renderEndpointPosture(ch chan<- prometheus.Metric, pol config.Policy, ep config.Endpoint, last *probe.TLSResult, scan *probe.PostureResult) {
	if last != nil {
		renderFindings(ch, pol, ep.Name, "endpoint", "", last.Certificates)
		renderOCSP(ch, ep.Name, last.OCSP)
	}
	if scan != nil {
		renderScan(ch, ep, scan)
	}
	for _, v := range probe.EndpointViolations(pol, ep, last, scan) {
		gauge(ch, policyViolation, 1, ep.Name, string(v.Rule))
	}
}

func renderScan(ch chan<- prometheus.Metric, ep config.Endpoint, s *probe.PostureResult) {
	name := ep.Name
	gauge(ch, postureLastRun, unix(s.Time), name)
	for _, v := range s.Versions {
		gauge(ch, versionAccepted, boolValue(v.Accepted), name, tls.VersionName(v.Version))
	}
	for _, su := range s.Suites {
		gauge(ch, suiteAccepted, 1, name, tls.VersionName(su.Version), tls.CipherSuiteName(su.Suite), strconv.FormatBool(su.Secure))
	}
	if s.ClientCertRequired != nil && ep.TLSConfig.CertFile != "" {
		gauge(ch, clientCertRequired, boolValue(*s.ClientCertRequired), name)
	}
	if s.HSTS != nil {
		gauge(ch, hstsMaxAge, float64(s.HSTS.MaxAge), name)
	}
	renderUnknown(ch, name, s.Unknown)
}

func renderKeys(ch chan<- prometheus.Metric, name string, r *probe.KeyResult) {
	gauge(ch, postureLastRun, unix(r.Time), name)
	for _, k := range r.Keys {
		gauge(ch, keyInsecure, boolValue(k.InsecurePermissions), name, k.Path)
		if k.Matches != nil {
			gauge(ch, keyMatches, boolValue(*k.Matches), name, k.Path)
		}
	}
	renderUnknown(ch, name, r.Unknown)
}

// renderUnknown reports each check once: a glob repeated in key_paths
// fails twice, and a repeated series would fail the whole scrape.
func renderUnknown(ch chan<- prometheus.Metric, name string, us []probe.UnknownCheck) {
	done := make(map[probe.UnknownCheck]bool, len(us))
	for _, u := range us {
		k := probe.UnknownCheck{Check: u.Check, Reason: u.Reason}
		if !done[k] {
			done[k] = true
			gauge(ch, postureUnknown, 1, name, u.Check, string(u.Reason))
		}
	}
}

func renderOCSP(ch chan<- prometheus.Metric, name string, o *probe.OCSPInfo) {
	if o == nil {
		return
	}
	gauge(ch, ocspStapled, boolValue(o.Stapled), name)
	if o.Status != "" {
		gauge(ch, ocspStatus, 1, name, o.Status)
	}
	if !o.NextUpdate.IsZero() {
		gauge(ch, ocspNextUpdate, unix(o.NextUpdate), name)
	}
}

func renderPins(ch chan<- prometheus.Metric, ep config.Endpoint, last *probe.TLSResult) {
	if len(ep.PinSHA256) == 0 || last == nil || len(last.Certificates) == 0 {
		return
	}
	gauge(ch, pinMatch, boolValue(probe.PinMatch(ep.PinSHA256, last.Certificates)), ep.Name)
}

func renderFilePosture(ch chan<- prometheus.Metric, pol config.Policy, g config.FileGroup, res *probe.FileResult) {
	for _, f := range res.Files {
		renderFindings(ch, pol, g.Name, g.Source(), f.Path, f.Certificates)
	}
	for _, v := range probe.FileViolations(pol, res) {
		gauge(ch, policyViolation, 1, g.Name, string(v.Rule))
	}
}

// renderFindings labels each certificate's serial as renderCerts does, so
// findings join its other series; certificates that would still share role
// and serial (old roots numbered 0, with different names) get a fingerprint
// suffix, as a repeated series would fail the whole scrape.
func renderFindings(ch chan<- prometheus.Metric, pol config.Policy, target, source, path string, certs []probe.CertInfo) {
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
			gauge(ch, certFinding, 1, target, source, path, c.Role, serial, string(f))
		}
	}
}
