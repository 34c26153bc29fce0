package main

import (
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
