package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// runPosture scans once, as the exporter does every posture_interval, and
// prints the section.
func runPosture(w io.Writer, cfg *config.Config, target *probe.Target, res *probe.TLSResult) {
	if res.Version == 0 && len(res.Certificates) == 0 {
		fmt.Fprintln(w, "\nPosture:      not scanned: no TLS handshake got as far as the server's certificate")
		return
	}
	ep := &cfg.Endpoints[0]
	scan := target.Posture(context.Background(), probe.PostureOptions{ClientCert: ep.TLSConfig.CertFile != ""})
	writePosture(w, cfg.Policy, ep, res, scan)
}

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
		fmt.Fprintf(w, "  Unknown:      %s: %s (%s)\n", u.Check, u.Reason, u.Detail)
	}
	writeFindings(w, pol, r.Certificates)
	writeViolations(w, probe.EndpointViolations(pol, *ep, r, s))
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
		for _, f := range probe.CertFindings(c, pol) {
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

func writeViolations(w io.Writer, vs []probe.Violation) {
	if len(vs) == 0 {
		fmt.Fprintln(w, "Policy:       no violation")
		return
	}
	fmt.Fprintln(w, "Policy violations:")
	for _, v := range vs {
		fmt.Fprintf(w, "  %s: %s\n      remedy: %s\n", v.Rule, v.Detail, v.Rule.Remedy())
	}
}
