// Package policy judges results under the config's policy: which rules a
// target breaches, and whether its chain matches its pins. Its functions
// are pure: results in, verdicts out.
package policy

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// Rule is a policy key that a target breaches, the rule label of
// ssl_policy_violation_info. Each is named after the key under policy:.
type Rule string

// Policy rules.
const (
	RuleMinVersion           Rule = "min_version"
	RuleAllowInsecureCiphers Rule = "allow_insecure_ciphers"
	RuleRequireClientCert    Rule = "require_client_cert"
	RuleMaxValidity          Rule = "max_validity"
	RuleMinHSTSMaxAge        Rule = "min_hsts_max_age"
	RuleAllowSelfSigned      Rule = "allow_self_signed"
)

// Rules lists every rule, in documentation order.
var Rules = []Rule{RuleMinVersion, RuleAllowInsecureCiphers, RuleRequireClientCert, RuleMaxValidity, RuleMinHSTSMaxAge, RuleAllowSelfSigned}

var ruleDocs = map[Rule]struct{ breach, remedy string }{
	RuleMinVersion: {"the endpoint accepts a TLS version below policy.min_version (default TLS12)",
		"Disable the old versions on the server (nginx: ssl_protocols TLSv1.2 TLSv1.3; Go: tls.Config.MinVersion)."},
	RuleAllowInsecureCiphers: {"the endpoint accepts an insecure cipher suite and policy.allow_insecure_ciphers is false (the default)",
		"Allow only ECDHE suites with AES-GCM or ChaCha20-Poly1305 for TLS 1.2 (Mozilla's intermediate profile); TLS 1.3 suites are all fine."},
	RuleRequireClientCert: {"policy.require_client_cert is true and the endpoint completes a handshake without a client certificate " +
		"(for url endpoints: and answers HTTP without one)",
		"Make the server demand and verify client certificates (nginx: ssl_verify_client on; Go: tls.RequireAndVerifyClientCert)."},
	RuleMaxValidity: {"a leaf, served or in a file, is valid for longer than policy.max_validity",
		"Reissue the certificate with a shorter lifetime and automate its renewal, or raise policy.max_validity."},
	RuleMinHSTSMaxAge: {"a url endpoint sends no valid Strict-Transport-Security header, or one with a max-age below policy.min_hsts_max_age",
		"Send Strict-Transport-Security: max-age=31536000 (nginx: add_header Strict-Transport-Security \"max-age=31536000\" always)."},
	RuleAllowSelfSigned: {"a leaf, served or in a file, is self-signed and policy.allow_self_signed is false (the default)",
		"Issue the certificate from a CA clients trust (public or internal), or set policy.allow_self_signed for test setups."},
}

// Breach says when the rule is breached.
func (r Rule) Breach() string { return ruleDocs[r].breach }

// Remedy is a short, actionable fix for a breach of the rule.
func (r Rule) Remedy() string { return ruleDocs[r].remedy }

// Violation is one breached rule with what breached it.
type Violation struct {
	Rule   Rule
	Detail string
}

// EndpointViolations judges an endpoint's last probe and posture scan, either
// of which may be nil (not run yet). Only evidence breaches a rule: a check
// that could not run breaches none.
func EndpointViolations(pol config.Policy, ep config.Endpoint, last *probe.TLSResult, scan *probe.PostureResult) []Violation {
	var vs violations
	if scan != nil {
		vs.scanRules(pol, ep, scan)
	}
	if last != nil {
		vs.certRules(pol, "", last.Certificates)
	}
	return vs.list
}

// FileViolations judges the certificates of a file group.
func FileViolations(pol config.Policy, res *certfile.FileResult) []Violation {
	var vs violations
	for _, f := range res.Files {
		vs.certRules(pol, f.Path, f.Certificates)
	}
	return vs.list
}

// violations keeps the first breach of each rule: the metric has one series
// per rule, and the first example is enough to act on.
type violations struct{ list []Violation }

func (vs *violations) add(r Rule, format string, args ...any) {
	for _, v := range vs.list {
		if v.Rule == r {
			return
		}
	}
	vs.list = append(vs.list, Violation{Rule: r, Detail: fmt.Sprintf(format, args...)})
}

func (vs *violations) scanRules(pol config.Policy, ep config.Endpoint, scan *probe.PostureResult) {
	for _, v := range scan.Versions {
		if v.Accepted && v.Version < uint16(pol.MinVersion) {
			vs.add(RuleMinVersion, "accepts %s, below %s", tls.VersionName(v.Version), tls.VersionName(uint16(pol.MinVersion)))
		}
	}
	if !pol.AllowInsecureCiphers {
		var weak []string
		for _, s := range scan.Suites {
			if !s.Secure {
				weak = append(weak, tls.VersionName(s.Version)+" "+tls.CipherSuiteName(s.Suite))
			}
		}
		if len(weak) > 0 {
			vs.add(RuleAllowInsecureCiphers, "accepts %s", strings.Join(weak, ", "))
		}
	}
	if pol.RequireClientCert && scan.ClientCertRequired != nil && !*scan.ClientCertRequired {
		vs.add(RuleRequireClientCert, "served without a client certificate")
	}
	if min := pol.MinHSTSMaxAge.D(); min > 0 && ep.URL != "" && scan.HSTS != nil && scan.HSTS.MaxAge < int64(min/time.Second) {
		// Compared in seconds: the peer's max-age times a second could overflow.
		vs.add(RuleMinHSTSMaxAge, "HSTS max-age is %ds, below %ds", scan.HSTS.MaxAge, int64(min.Seconds()))
	}
}

func (vs *violations) certRules(pol config.Policy, path string, certs []probe.CertInfo) {
	where := ""
	if path != "" {
		where = " in " + path
	}
	for i := range certs {
		c := &certs[i]
		if c.Role != probe.RoleLeaf {
			continue
		}
		if max := pol.MaxValidity.D(); max > 0 && ValidityTooLong(c.NotBefore, c.NotAfter, max) {
			vs.add(RuleMaxValidity, "leaf %q%s is valid for %s, more than %s", c.SubjectCN, where,
				c.NotAfter.Sub(c.NotBefore).Round(time.Hour), max)
		}
		for _, f := range c.Findings {
			if f == probe.FindingSelfSigned && !pol.AllowSelfSignedLeaves {
				vs.add(RuleAllowSelfSigned, "leaf %q%s is self-signed", c.SubjectCN, where)
			}
		}
	}
}

// PinMatch reports whether a public key of the chain matches one of the
// pins, as HPKP did: pinning the CA's key survives leaf renewals. Pins were
// validated when the config was loaded.
func PinMatch(pins []string, certs []probe.CertInfo) bool {
	for _, c := range certs {
		spki, err := base64.StdEncoding.DecodeString(c.SPKISHA256)
		if err != nil {
			continue
		}
		for _, p := range pins {
			if want, err := config.DecodePin(p); err == nil && bytes.Equal(want, spki) {
				return true
			}
		}
	}
	return false
}
