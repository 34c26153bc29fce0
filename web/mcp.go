package web

import (
	"time"

	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// MCPStatus is the MCP handshake as the status page shows it. It holds
// nothing secret: no token, no session id.
type MCPStatus struct {
	Up                bool   `json:"up"`
	Transport         string `json:"transport,omitempty"`
	ProtocolVersion   string `json:"protocol_version,omitempty"`
	ServerName        string `json:"server_name,omitempty"`
	ServerVersion     string `json:"server_version,omitempty"`
	Duration          string `json:"handshake_duration,omitempty"`
	HTTPStatus        int    `json:"http_status,omitempty"`
	Session           bool   `json:"session"`
	DeleteStatus      int    `json:"delete_status,omitempty"`
	Connections       int    `json:"tls_connections"`
	Detail            string `json:"detail,omitempty"` // while up: a failure to close the session
	AuthMetadataValid *bool  `json:"auth_metadata_valid,omitempty"`
	AuthDetail        string `json:"auth_detail,omitempty"`
	AuthLegacy        bool   `json:"auth_legacy,omitempty"` // working, but only through 2025-03-26 discovery
}

func fillMCPStatus(s *TargetStatus, m *probe.MCPResult) {
	if m == nil {
		return
	}
	s.MCP = &MCPStatus{
		Up: m.Up, Transport: m.Transport, ProtocolVersion: m.ProtocolVersion, ServerName: m.ServerName,
		ServerVersion: m.ServerVersion, HTTPStatus: m.HTTPStatus, Session: m.Session, DeleteStatus: m.DeleteStatus,
		Connections: m.Connections, AuthMetadataValid: m.AuthMetadataValid, AuthDetail: m.AuthDetail,
		AuthLegacy: m.AuthLegacy,
	}
	if m.Connections > 0 {
		s.MCP.Duration = m.Duration.Round(time.Microsecond).String()
	}
	if m.Up {
		s.MCP.Detail = m.Detail
	}
	if m.Reason != probe.MCPReasonNone {
		s.Problems = append(s.Problems, Problem{Layer: "mcp", Reason: string(m.Reason), Detail: m.Detail, Remedy: m.Reason.Remedy()})
	}
}
