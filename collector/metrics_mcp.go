package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpcert/mcp_cert_exporter/probe"
)

var (
	mcpUp = prometheus.NewDesc("mcp_up",
		"1 if the MCP handshake after TLS completed (initialize or server/discover answered)."+cachedNote, []string{"target"}, nil)
	mcpServerInfo = prometheus.NewDesc("mcp_server_info",
		"Always 1; labels describe the MCP server as its handshake answered: transport (streamable or sse), the negotiated "+
			"protocol version and the server's name and version."+cachedNote,
		[]string{"target", "transport", "protocol_version", "server_name", "server_version"}, nil)
	mcpDuration = prometheus.NewDesc("mcp_handshake_duration_seconds",
		"Time of the MCP exchange after TLS, closing the session included."+cachedNote, []string{"target"}, nil)
	mcpError = prometheus.NewDesc("mcp_error_info",
		"1 for the reason the last MCP handshake failed; absent when it completed. Reasons and remedies are in docs/reasons.md."+cachedNote,
		[]string{"target", "reason"}, nil)
	mcpBearerToken = prometheus.NewDesc("mcp_bearer_token_configured",
		"1 if the endpoint sends a bearer token (mcp.bearer_token_file is set), 0 if not; only for endpoints that speak MCP. "+
			"AUTH_REQUIRED with a token configured means the server refused it.", []string{"target"}, nil)
	mcpAuthMetadataValid = prometheus.NewDesc("mcp_auth_metadata_valid",
		"Only for servers that answered 401: 1 if their OAuth discovery (WWW-Authenticate resource_metadata and RFC 9728 "+
			"protected-resource metadata with authorization_servers) is well-formed, or clients of MCP 2025-03-26 can log in "+
			"(see mcp_auth_metadata_legacy)."+cachedNote, []string{"target"}, nil)
	mcpAuthMetadataLegacy = prometheus.NewDesc("mcp_auth_metadata_legacy",
		"Only with mcp_auth_metadata_valid: 1 if clients can log in only through MCP 2025-03-26 discovery (no RFC 9728 "+
			"document, RFC 8414 authorization-server metadata at the host's root): working, but pre-2025-06-18."+cachedNote,
		[]string{"target"}, nil)
)

// renderMCP renders the MCP result of an endpoint probe; nil renders nothing.
func renderMCP(ch chan<- prometheus.Metric, target string, m *probe.MCPResult) {
	if m == nil {
		return
	}
	gauge(ch, mcpUp, boolValue(m.Up), target)
	if m.Up {
		gauge(ch, mcpServerInfo, 1, target, m.Transport, m.ProtocolVersion, m.ServerName, m.ServerVersion)
	}
	if m.Connections > 0 { // MCP was spoken
		gauge(ch, mcpDuration, m.Duration.Seconds(), target)
	}
	if m.Reason != probe.MCPReasonNone {
		gauge(ch, mcpError, 1, target, string(m.Reason))
	}
	if m.AuthMetadataValid != nil {
		gauge(ch, mcpAuthMetadataValid, boolValue(*m.AuthMetadataValid), target)
		gauge(ch, mcpAuthMetadataLegacy, boolValue(m.AuthLegacy), target)
	}
}
