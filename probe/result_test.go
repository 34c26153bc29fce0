package probe

import (
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// TestHealthy is the one verdict check, /status and refreshes_total share.
func TestHealthy(t *testing.T) {
	yes, no := true, false
	up := &MCPResult{Up: true}
	protected := &MCPResult{Reason: MCPAuthRequired, AuthMetadataValid: &yes}
	for _, tc := range []struct {
		name  string
		res   TLSResult
		token string
		want  bool
	}{
		{"verified, no MCP", TLSResult{Success: true, Verified: true}, "", true},
		{"verified, MCP up", TLSResult{Success: true, Verified: true, MCP: up}, "", true},
		{"handshake failed", TLSResult{Reason: ReasonConnectionRefused}, "", false},
		{"not verified", TLSResult{Success: true, Reason: ReasonCertificateExpired}, "", false},
		{"not verified, waived", TLSResult{Success: true, InsecureSkipVerify: true, Reason: ReasonCertificateExpired}, "", true},
		{"waived, but no handshake", TLSResult{InsecureSkipVerify: true, Reason: ReasonTimeout}, "", false},
		{"protected, no token, discovery works", TLSResult{Success: true, Verified: true, MCP: protected}, "", true},
		{"protected, token refused", TLSResult{Success: true, Verified: true, MCP: protected}, "token", false},
		{"protected, discovery broken", TLSResult{Success: true, Verified: true,
			MCP: &MCPResult{Reason: MCPAuthRequired, AuthMetadataValid: &no}}, "", false},
		{"403, no discovery checked", TLSResult{Success: true, Verified: true, MCP: &MCPResult{Reason: MCPAuthRequired}}, "", false},
		{"not MCP", TLSResult{Success: true, Verified: true, MCP: &MCPResult{Reason: MCPNotMCP}}, "", false},
	} {
		ep := &config.Endpoint{MCP: config.MCPConfig{BearerTokenFile: tc.token}}
		if got := tc.res.Healthy(ep); got != tc.want {
			t.Errorf("%s: Healthy %v, want %v", tc.name, got, tc.want)
		}
	}
}
