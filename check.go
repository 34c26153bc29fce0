package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/probe"
	"github.com/mcpcert/mcp_cert_exporter/web"
)

// checkCommand is `mcp_cert_exporter check`: one probe and posture scan,
// printed as the report /status?target= shows for the same results.
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
	ep := &cfg.Endpoints[0]
	res := target.Probe(context.Background())
	view := web.EndpointView{Endpoint: *ep, Policy: cfg.Policy, Last: res}
	now := time.Now()
	if c.posture && reachedCertificate(res) { // one scan, as the exporter runs every posture_interval
		view.Posture = target.Posture(context.Background(), probe.PostureOptionsFor(ep, cfg.Policy))
	}
	writeCheck(w, view, c.posture, now)
	if res.Healthy(ep) {
		return 0
	}
	return 1
}

// reachedCertificate says whether a posture scan has anything to look at.
func reachedCertificate(r *probe.TLSResult) bool { return r.Version != 0 || len(r.Certificates) > 0 }

// writeCheck prints the report of /status?target= for view, then why a
// posture scan that was asked for did not run.
func writeCheck(w io.Writer, view web.EndpointView, posture bool, now time.Time) {
	web.WriteTargetReport(w, web.EndpointReport(view, now))
	if posture && view.Posture == nil {
		fmt.Fprintln(w, "\nPosture:      not scanned: no TLS handshake got as far as the server's certificate")
	}
}
