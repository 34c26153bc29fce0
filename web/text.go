package web

import (
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/policy"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// This file holds the text writers: /status?format=text, and a target's
// report, which the per-target view shows and `check` prints. The report
// reads results only, the same way for both, so that the page and the
// command cannot drift apart.

// writeStatusText writes the summary and one line per target, or, for one
// target, what `check` prints.
func writeStatusText(w io.Writer, rep *StatusReport) {
	s := &rep.Summary
	fmt.Fprintf(w, "Targets: %d failing, %d expiring, %d healthy, %d pending; certificates: %d expired, %d within 7d, %d within 30d; %d targets violate policy\n",
		s.Failing, s.Expiring, s.Healthy, s.Pending, s.Expired, s.Within7d, s.Within30d, s.Violating)
	if s.LastRefresh != nil {
		fmt.Fprintf(w, "Last refresh: %s\n", s.LastRefresh.UTC().Format(time.RFC3339))
	}
	if rep.Single && rep.Targets[0].Report != "" {
		fmt.Fprintln(w)
		WriteTargetReport(w, rep)
		return
	}
	fmt.Fprintln(w)
	for _, t := range rep.Targets {
		fmt.Fprintf(w, "%-8s %s (%s)", t.State, t.Name, t.Target)
		if t.SoonestExpiry != nil {
			fmt.Fprintf(w, " soonest expiry %s", HumanDuration(t.SoonestExpiry.Sub(rep.Now)))
		}
		if t.Note != "" {
			fmt.Fprintf(w, "; %s", t.Note)
		}
		fmt.Fprintln(w)
		for _, p := range t.Problems {
			fmt.Fprintf(w, "         %s%s: %s\n         remedy: %s\n", p.Title(), p.where(), p.Detail, p.Remedy)
		}
	}
	if n := rep.Folded(); n > 0 {
		fmt.Fprintf(w, "... and %d more; narrow with ?state= or ?target=, or raise ?limit=\n", n)
	}
}

// Title is the problem's reason, MCP ones marked as such.
func (p Problem) Title() string {
	if p.Layer == "mcp" {
		return "MCP " + p.Reason
	}
	return p.Reason
}

func (p Problem) where() string {
	if p.Path == "" {
		return ""
	}
	return " (" + p.Path + ")"
}

// WriteTargetReport writes the report of the per-target view: what
// /status?target=NAME&format=text shows under its summary, and all `check`
// prints.
func WriteTargetReport(w io.Writer, rep *StatusReport) {
	if rep.Single {
		io.WriteString(w, rep.Targets[0].Report)
	}
}

// writeEndpointReport writes an endpoint's probe: timing, negotiated
// parameters, the chain, the verdict with its remedy, and MCP.
func writeEndpointReport(w io.Writer, ep *config.Endpoint, r *probe.TLSResult, now time.Time) {
	fmt.Fprintf(w, "Target:       %s (dial %s, SNI %s)\n", ep.Name, ep.HostPort(), ep.ServerName())
	fmt.Fprintf(w, "Timing:       dns %s, connect %s, handshake %s\n",
		r.Phases.DNS.Round(time.Microsecond), r.Phases.Connect.Round(time.Microsecond), r.Phases.Handshake.Round(time.Microsecond))
	if r.Version != 0 {
		fmt.Fprintf(w, "Negotiated:   %s, %s\n", tls.VersionName(r.Version), tls.CipherSuiteName(r.CipherSuite))
	}
	if r.ClientCertRequested {
		fmt.Fprintln(w, "Client cert:  requested by the server (mTLS)")
	}
	if len(r.Certificates) > 0 {
		fmt.Fprintln(w, "Chain:")
	}
	for i, c := range r.Certificates {
		writeCert(w, i, &c, now)
	}
	writeVerdict(w, r)
	writeMCP(w, r.MCP)
}

func writeCert(w io.Writer, i int, c *probe.CertInfo, now time.Time) {
	fmt.Fprintf(w, "  %d [%s] %s\n", i, c.Role, c.SubjectCN)
	fmt.Fprintf(w, "      issuer      %s\n", c.IssuerCN)
	fmt.Fprintf(w, "      valid       %s to %s (%s)\n", c.NotBefore.UTC().Format(time.RFC3339),
		c.NotAfter.UTC().Format(time.RFC3339), HumanDuration(c.NotAfter.Sub(now)))
	if len(c.SANs) > 0 {
		fmt.Fprintf(w, "      SANs        %s\n", strings.Join(c.SANs, ", "))
	}
	fmt.Fprintf(w, "      key         %s %d bits, signed %s\n", c.KeyType, c.KeyBits, c.SignatureAlgorithm)
	fmt.Fprintf(w, "      serial      %s\n      sha256      %s\n", c.Serial, c.FingerprintSHA256)
}

func writeVerdict(w io.Writer, r *probe.TLSResult) {
	switch {
	case r.Reason == probe.ReasonNone:
		fmt.Fprintln(w, "Verdict:      OK: handshake completed and the chain, hostname and dates verify")
		return
	case r.Trusted(): // a failed verification that insecure_skip_verify waives
		fmt.Fprintf(w, "Verdict:      %s (not counted: insecure skip verify)\n", r.Reason)
	default:
		fmt.Fprintf(w, "Verdict:      FAILED: %s\n", r.Reason)
	}
	if r.Detail != "" {
		fmt.Fprintf(w, "Detail:       %s\n", r.Detail)
	}
	fmt.Fprintf(w, "Remedy:       %s\n", r.Reason.Remedy())
}

func writeMCP(w io.Writer, m *probe.MCPResult) {
	if m == nil {
		return
	}
	if m.Up {
		fmt.Fprintf(w, "MCP:          OK: %s, protocol %s, server %q version %q\n", m.Transport, m.ProtocolVersion, m.ServerName, m.ServerVersion)
	} else {
		fmt.Fprintf(w, "MCP:          FAILED: %s\n", m.Reason)
	}
	if m.Connections > 0 {
		fmt.Fprintf(w, "MCP exchange: %s over %d TLS connection(s)%s\n", m.Duration.Round(time.Microsecond), m.Connections, sessionText(m))
	}
	if m.Detail != "" {
		fmt.Fprintf(w, "MCP detail:   %s\n", m.Detail)
	}
	if !m.Up {
		fmt.Fprintf(w, "MCP remedy:   %s\n", m.Reason.Remedy())
	}
	if m.AuthMetadataValid != nil {
		verdict := "well-formed"
		switch {
		case !*m.AuthMetadataValid:
			verdict = "BROKEN"
		case m.AuthLegacy:
			verdict = "working but pre-2025-06-18"
		}
		fmt.Fprintf(w, "OAuth:        discovery %s: %s\n", verdict, m.AuthDetail)
	}
}

func sessionText(m *probe.MCPResult) string {
	switch {
	case !m.Session:
		return ", no session"
	case m.Reason == probe.MCPSessionLost:
		return ", session lost by the server (nothing to close)"
	case m.DeleteStatus == 0:
		return ", session not closed (DELETE got no answer)"
	}
	return fmt.Sprintf(", session closed (DELETE answered %d)", m.DeleteStatus)
}

// writePosture writes the posture section of an endpoint's report from its
// last probe and posture scan.
func writePosture(w io.Writer, pol config.Policy, ep *config.Endpoint, r *probe.TLSResult, s *probe.PostureResult) {
	fmt.Fprintf(w, "\nPosture (scan took %s):\n", s.Duration.Round(time.Millisecond))
	fmt.Fprintf(w, "  Versions:     %s\n", versionsLine(s))
	writeSuites(w, s)
	if s.ClientCertRequired != nil {
		fmt.Fprintf(w, "  Client cert:  %s\n", map[bool]string{true: "the server refuses clients without one",
			false: "NOT enforced: the server completed a handshake without one"}[*s.ClientCertRequired])
	}
	fmt.Fprintf(w, "  OCSP staple:  %s\n", ocspLine(r.OCSP))
	if s.HSTS != nil {
		fmt.Fprintf(w, "  HSTS:         %s\n", hstsLine(s.HSTS))
	}
	for _, u := range s.Unknown {
		fmt.Fprintf(w, "  Unknown:      %s: %s (%s)\n      remedy: %s\n", u.Check, u.Reason, u.Detail, u.Reason.Remedy())
	}
	writeFindings(w, pol, r.Certificates)
	writeViolations(w, policy.EndpointViolations(pol, *ep, r, s))
}

func versionsLine(s *probe.PostureResult) string {
	if len(s.Versions) == 0 {
		return "none tested"
	}
	parts := make([]string, len(s.Versions))
	for i, v := range s.Versions {
		parts[i] = tls.VersionName(v.Version) + map[bool]string{true: " accepted", false: " refused"}[v.Accepted]
	}
	return strings.Join(parts, ", ") + " (SSLv3 cannot be tested)"
}

// writeSuites lists the accepted suites of each version, insecure ones marked.
func writeSuites(w io.Writer, s *probe.PostureResult) {
	for i := 0; i < len(s.Suites); {
		v := s.Suites[i].Version
		var names []string
		for ; i < len(s.Suites) && s.Suites[i].Version == v; i++ {
			name := tls.CipherSuiteName(s.Suites[i].Suite)
			if !s.Suites[i].Secure {
				name += " (insecure)"
			}
			names = append(names, name)
		}
		fmt.Fprintf(w, "  Ciphers %s: %s\n", tls.VersionName(v), strings.Join(names, ", "))
	}
}

func ocspLine(o *probe.OCSPInfo) string {
	switch {
	case o == nil:
		return "unknown: no certificate was received"
	case !o.Stapled:
		return "none"
	case o.Detail != "":
		return o.Status + ": " + o.Detail
	case !o.NextUpdate.IsZero():
		return fmt.Sprintf("%s, next update %s", o.Status, o.NextUpdate.UTC().Format(time.RFC3339))
	}
	return o.Status
}

func hstsLine(h *probe.HSTSResult) string {
	switch {
	case !h.Present:
		return fmt.Sprintf("no Strict-Transport-Security header (HTTP %d)", h.Status)
	case !h.Valid:
		return "Strict-Transport-Security header without a valid max-age: clients ignore it"
	}
	line := fmt.Sprintf("max-age=%d", h.MaxAge)
	if h.IncludeSubDomains {
		line += "; includeSubDomains"
	}
	if h.Preload {
		line += "; preload"
	}
	return line
}

func writeFindings(w io.Writer, pol config.Policy, certs []probe.CertInfo) {
	n := 0
	for i := range certs {
		c := &certs[i]
		for _, f := range policy.CertFindings(c, pol) {
			if n == 0 {
				fmt.Fprintln(w, "Findings:")
			}
			n++
			fmt.Fprintf(w, "  %s on %s %q (serial %s)\n      remedy: %s\n", f, c.Role, c.SubjectCN, c.Serial, f.Remedy())
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "Findings:     none")
	}
}

func writeViolations(w io.Writer, vs []policy.Violation) {
	if len(vs) == 0 {
		fmt.Fprintln(w, "Policy:       no violation")
		return
	}
	fmt.Fprintln(w, "Policy violations:")
	for _, v := range vs {
		fmt.Fprintf(w, "  %s: %s\n      remedy: %s\n", v.Rule, v.Detail, v.Rule.Remedy())
	}
}

// writeFileReport is the report of a file group, which `check` does not
// probe: each path with its certificates or its failure and remedy.
func writeFileReport(w io.Writer, g *config.FileGroup, r *certfile.FileResult, pol config.Policy, now time.Time) {
	fmt.Fprintf(w, "Files:        %s (%s)\n", g.Name, strings.Join(g.Paths, ", "))
	fmt.Fprintf(w, "Read:         %s\n", r.Time.UTC().Format(time.RFC3339))
	var certs []probe.CertInfo
	for _, f := range r.Files {
		fmt.Fprintf(w, "%s\n", f.Path)
		if f.Reason != probe.ReasonNone {
			fmt.Fprintf(w, "  FAILED:     %s\n", f.Reason)
			if f.Detail != "" {
				fmt.Fprintf(w, "  Detail:     %s\n", f.Detail)
			}
			fmt.Fprintf(w, "  Remedy:     %s\n", f.Reason.Remedy())
		}
		for i, c := range f.Certificates {
			writeCert(w, i, &c, now)
		}
		certs = append(certs, f.Certificates...)
	}
	writeFindings(w, pol, certs)
	writeViolations(w, policy.FileViolations(pol, r))
}
