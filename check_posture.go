package main

import (
	"context"
	"fmt"
	"io"

	"github.com/mcpcert/mcp_cert_exporter/collector"
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
	scan := target.Posture(context.Background(), probe.PostureOptionsFor(ep, cfg.Policy))
	collector.WritePosture(w, cfg.Policy, ep, res, scan)
}
