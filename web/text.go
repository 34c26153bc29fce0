package web

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// This file holds the text writers: /status?format=text, and a target's
// report, which the per-target view shows and `check` prints. They read the
// report model only, never a probe's or a file's result, so that the page,
// its JSON and the command cannot drift apart.

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
			fmt.Fprintf(w, " soonest expiry %s", humanDuration(t.SoonestExpiry.Sub(rep.Now)))
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

// WriteProbeReport and WritePostureReport write the two parts of an
// endpoint's report in the per-target view, so that `check` can print the
// probe's part before its posture scan has run: together they write what
// WriteTargetReport does.
func WriteProbeReport(w io.Writer, rep *StatusReport) {
	if t := singleEndpoint(rep); t != nil {
		writeProbeReport(w, t)
	}
}

// WritePostureReport: see WriteProbeReport.
func WritePostureReport(w io.Writer, rep *StatusReport) {
	if t := singleEndpoint(rep); t != nil {
		writePostureReport(w, t)
	}
}

// singleEndpoint is the row of the per-target view of a probed endpoint.
func singleEndpoint(rep *StatusReport) *TargetStatus {
	if !rep.Single || rep.Targets[0].Kind != "endpoint" || rep.Targets[0].TargetDetail == nil {
		return nil
	}
	return &rep.Targets[0]
}

// reportText is the report of a row of the per-target view.
func reportText(t *TargetStatus) string {
	var b strings.Builder
	if t.Kind == "file" {
		writeFileReport(&b, t)
	} else {
		writeProbeReport(&b, t)
		writePostureReport(&b, t)
	}
	return b.String()
}

// problem is the row's problem of a layer, if any.
func (t *TargetStatus) problem(layer string) Problem {
	for _, p := range t.Problems {
		if p.Layer == layer {
			return p
		}
	}
	return Problem{}
}

// writeProbeReport writes an endpoint's probe: timing, negotiated
// parameters, the chain, the verdict with its remedy, and MCP.
func writeProbeReport(w io.Writer, t *TargetStatus) {
	fmt.Fprintf(w, "Target:       %s (dial %s, SNI %s)\n", t.Name, t.Dial, t.SNI)
	fmt.Fprintf(w, "Timing:       dns %s, connect %s, handshake %s\n", t.Timing.DNS, t.Timing.Connect, t.Timing.Handshake)
	if t.Version != "" {
		fmt.Fprintf(w, "Negotiated:   %s, %s\n", t.Version, t.Cipher)
	}
	if t.ClientCertRequested {
		fmt.Fprintln(w, "Client cert:  requested by the server (mTLS)")
	}
	if len(t.Certs) > 0 {
		fmt.Fprintln(w, "Chain:")
	}
	for i := range t.Certs {
		writeCert(w, &t.Certs[i])
	}
	writeVerdict(w, t)
	writeMCP(w, t)
}

func writeCert(w io.Writer, c *CertStatus) {
	fmt.Fprintf(w, "  %d [%s] %s\n", c.Index, c.Role, c.Subject)
	fmt.Fprintf(w, "      issuer      %s\n", c.Issuer)
	fmt.Fprintf(w, "      valid       %s to %s (%s)\n", c.NotBefore.UTC().Format(time.RFC3339),
		c.NotAfter.UTC().Format(time.RFC3339), c.ExpiresIn)
	if len(c.SANs) > 0 {
		fmt.Fprintf(w, "      SANs        %s\n", strings.Join(c.SANs, ", "))
	}
	fmt.Fprintf(w, "      key         %s %d bits, signed %s\n", c.KeyType, c.KeyBits, c.SignatureAlgorithm)
	fmt.Fprintf(w, "      serial      %s\n      sha256      %s\n", c.Serial, c.SHA256)
}

func writeVerdict(w io.Writer, t *TargetStatus) {
	p := t.problem("")
	switch t.Verdict {
	case VerdictOK:
		fmt.Fprintln(w, "Verdict:      OK: handshake completed and the chain, hostname and dates verify")
		return
	case VerdictWaived:
		fmt.Fprintf(w, "Verdict:      %s (not counted: insecure skip verify)\n", p.Reason)
	default:
		fmt.Fprintf(w, "Verdict:      FAILED: %s\n", p.Reason)
	}
	if p.Detail != "" {
		fmt.Fprintf(w, "Detail:       %s\n", p.Detail)
	}
	fmt.Fprintf(w, "Remedy:       %s\n", p.Remedy)
}

func writeMCP(w io.Writer, t *TargetStatus) {
	m := t.MCP
	if m == nil {
		return
	}
	detail, problem := m.Detail, t.problem("mcp")
	if m.Up {
		fmt.Fprintf(w, "MCP:          OK: %s, protocol %s, server %q version %q\n", m.Transport, m.ProtocolVersion, m.ServerName, m.ServerVersion)
	} else {
		detail = problem.Detail
		fmt.Fprintf(w, "MCP:          FAILED: %s\n", m.Reason)
	}
	if m.Connections > 0 {
		fmt.Fprintf(w, "MCP exchange: %s over %d TLS connection(s)%s\n", m.Duration, m.Connections, sessionText(m))
	}
	if detail != "" {
		fmt.Fprintf(w, "MCP detail:   %s\n", detail)
	}
	if !m.Up {
		fmt.Fprintf(w, "MCP remedy:   %s\n", problem.Remedy)
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

func sessionText(m *MCPStatus) string {
	switch {
	case !m.Session:
		return ", no session"
	case m.Reason == string(probe.MCPSessionLost):
		return ", session lost by the server (nothing to close)"
	case m.DeleteStatus == 0:
		return ", session not closed (DELETE got no answer)"
	}
	return fmt.Sprintf(", session closed (DELETE answered %d)", m.DeleteStatus)
}

// writePostureReport writes the posture section of an endpoint's report:
// the scan, the stapled OCSP response, findings and violations; nothing
// when no scan ran.
func writePostureReport(w io.Writer, t *TargetStatus) {
	s := t.Posture
	if s == nil {
		return
	}
	fmt.Fprintf(w, "\nPosture (scan took %s):\n", s.Duration)
	fmt.Fprintf(w, "  Versions:     %s\n", versionsLine(s))
	writeSuites(w, s)
	if s.ClientCertRequired != nil {
		fmt.Fprintf(w, "  Client cert:  %s\n", map[bool]string{true: "the server refuses clients without one",
			false: "NOT enforced: the server completed a handshake without one"}[*s.ClientCertRequired])
	}
	fmt.Fprintf(w, "  OCSP staple:  %s\n", ocspLine(t.OCSP))
	if s.HSTS != nil {
		fmt.Fprintf(w, "  HSTS:         %s\n", hstsLine(s.HSTS))
	}
	for _, u := range s.Unknown {
		fmt.Fprintf(w, "  Unknown:      %s: %s (%s)\n      remedy: %s\n", u.Check, u.Reason, u.Detail, u.Remedy)
	}
	writeFindings(w, t.Findings)
	writeViolations(w, t.Violations)
}

func versionsLine(s *PostureStatus) string {
	if len(s.Versions) == 0 {
		return "none tested"
	}
	parts := make([]string, len(s.Versions))
	for i, v := range s.Versions {
		parts[i] = v.Version + map[bool]string{true: " accepted", false: " refused"}[v.Accepted]
	}
	return strings.Join(parts, ", ") + " (SSLv3 cannot be tested)"
}

// writeSuites lists the accepted suites of each version, insecure ones marked.
func writeSuites(w io.Writer, s *PostureStatus) {
	for i := 0; i < len(s.Ciphers); {
		v := s.Ciphers[i].Version
		var names []string
		for ; i < len(s.Ciphers) && s.Ciphers[i].Version == v; i++ {
			name := s.Ciphers[i].Suite
			if !s.Ciphers[i].Secure {
				name += " (insecure)"
			}
			names = append(names, name)
		}
		fmt.Fprintf(w, "  Ciphers %s: %s\n", v, strings.Join(names, ", "))
	}
}

func ocspLine(o *OCSPStatus) string {
	switch {
	case o == nil:
		return "unknown: no certificate was received"
	case !o.Stapled:
		return "none"
	case o.Detail != "":
		return o.Status + ": " + o.Detail
	case o.NextUpdate != nil:
		return fmt.Sprintf("%s, next update %s", o.Status, o.NextUpdate.UTC().Format(time.RFC3339))
	}
	return o.Status
}

func hstsLine(h *HSTSStatus) string {
	switch {
	case !h.Present:
		return fmt.Sprintf("no Strict-Transport-Security header (HTTP %d)", h.HTTPStatus)
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

func writeFindings(w io.Writer, fs []FindingStatus) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "Findings:     none")
		return
	}
	fmt.Fprintln(w, "Findings:")
	for _, f := range fs {
		fmt.Fprintf(w, "  %s on %s %q (serial %s)\n      remedy: %s\n", f.Finding, f.Role, f.Subject, f.Serial, f.Remedy)
	}
}

func writeViolations(w io.Writer, vs []ViolationStatus) {
	if len(vs) == 0 {
		fmt.Fprintln(w, "Policy:       no violation")
		return
	}
	fmt.Fprintln(w, "Policy violations:")
	for _, v := range vs {
		fmt.Fprintf(w, "  %s: %s\n      remedy: %s\n", v.Rule, v.Detail, v.Remedy)
	}
}

// writeFileReport is the report of a file group, which `check` does not
// probe: each path in reading order with its certificates in file order, or
// its failure and remedy, then the row's findings and violations.
func writeFileReport(w io.Writer, t *TargetStatus) {
	fmt.Fprintf(w, "Files:        %s (%s)\n", t.Name, t.Target)
	fmt.Fprintf(w, "Read:         %s\n", t.LastRun.UTC().Format(time.RFC3339))
	certs := certsByFile(t)
	for _, f := range t.Files {
		fmt.Fprintf(w, "%s\n", f.Path)
		if f.Reason != "" {
			fmt.Fprintf(w, "  FAILED:     %s\n", f.Reason)
			if f.Detail != "" {
				fmt.Fprintf(w, "  Detail:     %s\n", f.Detail)
			}
			fmt.Fprintf(w, "  Remedy:     %s\n", f.Remedy)
		}
		for _, c := range certs[f.Path] {
			writeCert(w, c)
		}
	}
	writeFindings(w, t.Findings)
	writeViolations(w, t.Violations)
}

// certsByFile groups a file group's certificates, which the row orders by
// expiry, by file again, in file order.
func certsByFile(t *TargetStatus) map[string][]*CertStatus {
	byFile := make(map[string][]*CertStatus, len(t.Files))
	for i := range t.Certs {
		c := &t.Certs[i]
		byFile[c.Path] = append(byFile[c.Path], c)
	}
	for _, certs := range byFile {
		slices.SortFunc(certs, func(a, b *CertStatus) int { return a.Index - b.Index })
	}
	return byFile
}
