package collector

import (
	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// renderMCP renders the MCP result of an endpoint probe; nil renders nothing.
func renderMCP(ch *metrics.Samples, target string, m *probe.MCPResult) {
	if m == nil {
		return
	}
	gauge(ch, metrics.MCPUp, boolValue(m.Up), target)
	if m.Up {
		gauge(ch, metrics.MCPServerInfo, 1, target, m.Transport, m.ProtocolVersion, m.ServerName, m.ServerVersion)
	}
	if m.Connections > 0 { // MCP was spoken
		gauge(ch, metrics.MCPDuration, m.Duration.Seconds(), target)
	}
	if m.Reason != probe.MCPReasonNone {
		gauge(ch, metrics.MCPError, 1, target, string(m.Reason))
	}
	if m.AuthMetadataValid != nil {
		gauge(ch, metrics.MCPAuthMetadataValid, boolValue(*m.AuthMetadataValid), target)
		gauge(ch, metrics.MCPAuthMetadataLegacy, boolValue(m.AuthLegacy), target)
	}
}
