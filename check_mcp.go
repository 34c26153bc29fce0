package main

import (
	"fmt"
	"io"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// mcpHealthy: the handshake completed, or a protected server without a
// token asked for one with well-formed discovery (reachable, protected).
func mcpHealthy(m *probe.MCPResult, tokenFile string) bool {
	if m == nil || m.Up {
		return true
	}
	return m.Reason == probe.MCPAuthRequired && tokenFile == "" && m.AuthMetadataValid != nil && *m.AuthMetadataValid
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
