package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mcpcert/mcp_cert_exporter/collector"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// checkCommand is `mcp_cert_exporter check`: one probe, a readable report.
type checkCommand struct {
	cmd      *kingpin.CmdClause
	target   string
	tls      config.TLSConfig
	timeout  time.Duration
	minVer   string
	noVerify bool
	mcp      config.MCPConfig
	posture  bool
}

func addCheckCommand(app *kingpin.Application) *checkCommand {
	c := &checkCommand{}
	c.cmd = app.Command("check", "Probe one endpoint once and print a readable report; exits non-zero on failure.")
	c.cmd.Arg("target", "https:// URL or host:port (port 443 if omitted).").Required().StringVar(&c.target)
	c.cmd.Flag("ca-file", "Trust the CAs in this PEM file instead of the system pool.").StringVar(&c.tls.CAFile)
	c.cmd.Flag("cert-file", "Client certificate for mTLS.").StringVar(&c.tls.CertFile)
	c.cmd.Flag("key-file", "Private key of the client certificate.").StringVar(&c.tls.KeyFile)
	c.cmd.Flag("server-name", "SNI and verification name (default: the target's host).").StringVar(&c.tls.ServerName)
	c.cmd.Flag("insecure-skip-verify", "Report verification problems without failing.").BoolVar(&c.noVerify)
	c.cmd.Flag("timeout", "Deadline for the whole probe, TLS and MCP together.").Default("10s").DurationVar(&c.timeout)
	c.cmd.Flag("mcp-transport", "MCP transport after TLS for https:// URLs: auto, streamable, sse or none.").
		Default(config.TransportAuto).StringVar(&c.mcp.Transport)
	c.cmd.Flag("bearer-token-file", "File holding a bearer token for the MCP server.").StringVar(&c.mcp.BearerTokenFile)
	c.cmd.Flag("posture", "Also run the posture scan: versions, ciphers, mTLS, HSTS, findings; --no-posture skips its extra handshakes.").
		Default("true").BoolVar(&c.posture)
	return c
}

func (c *checkCommand) endpoint() config.Endpoint {
	ep := config.Endpoint{Name: c.target, TLSConfig: c.tls, Timeout: config.Duration(c.timeout)}
	if strings.Contains(c.target, "://") {
		ep.MCP = c.mcp // address endpoints only do TLS
	}
	ep.TLSConfig.InsecureSkipVerify = c.noVerify
	switch {
	case strings.HasPrefix(c.target, "https://"):
		ep.URL = c.target
	case strings.Contains(c.target, "://"):
		ep.URL = c.target // rejected by validation with a clear message
	default:
		ep.Address = c.target
		if _, _, err := net.SplitHostPort(c.target); err != nil {
			ep.Address = net.JoinHostPort(strings.Trim(c.target, "[]"), "443")
		}
	}
	return ep
}

func (c *checkCommand) run(w io.Writer) int {
	cfg := &config.Config{Endpoints: []config.Endpoint{c.endpoint()}}
	if err := cfg.Finish(); err != nil {
		fmt.Fprintf(w, "invalid target or flags:\n%v\n", err)
		return 2
	}
	target, err := probe.NewTarget(cfg.Endpoints[0])
	if err != nil {
		fmt.Fprintf(w, "cannot prepare probe: %v\n", err)
		return 2
	}
	res := target.Probe(context.Background())
	writeReport(w, &cfg.Endpoints[0], res, time.Now())
	if c.posture {
		runPosture(w, cfg, target, res)
	}
	if res.Success && (res.Verified || res.InsecureSkipVerify) && mcpHealthy(res.MCP, c.mcp.BearerTokenFile) {
		return 0
	}
	return 1
}

func writeReport(w io.Writer, ep *config.Endpoint, r *probe.TLSResult, now time.Time) {
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
		c.NotAfter.UTC().Format(time.RFC3339), collector.HumanDuration(c.NotAfter.Sub(now)))
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
	case r.Success && r.InsecureSkipVerify:
		fmt.Fprintf(w, "Verdict:      %s (not counted: insecure skip verify)\n", r.Reason)
	default:
		fmt.Fprintf(w, "Verdict:      FAILED: %s\n", r.Reason)
	}
	if r.Detail != "" {
		fmt.Fprintf(w, "Detail:       %s\n", r.Detail)
	}
	fmt.Fprintf(w, "Remedy:       %s\n", r.Reason.Remedy())
}
