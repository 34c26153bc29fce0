package interop

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// The exporter against the official TypeScript SDK's servers (ts/servers.cjs)
// over Node's https: each case is one probe, and the server's own log must
// agree with the verdict.
func TestTypeScriptSDK(t *testing.T) {
	node := tooltest.Require(t, "node")
	modules, version := tooltest.NPMPackage(t, "@modelcontextprotocol/sdk")
	t.Logf("@modelcontextprotocol/sdk %s", version)
	p := newPKI(t)
	cmd := exec.Command(node, filepath.Join("ts", "servers.cjs"), p.certFile, p.keyFile)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	l := startServers(t, cmd)
	tokenFile := testpki.WriteFile(t, t.TempDir(), "token", []byte("interop-token"))

	cases := []interopCase{
		{name: "stateful: one session, closed, on one TLS connection", kind: "stateful", path: "/mcp",
			up: true, got: "streamable", proto: "2025-11-25", session: true, opened: 1, tls: 1},
		{name: "stateless: no session", kind: "stateless", path: "/mcp",
			up: true, got: "streamable", proto: "2025-11-25", tls: 1},
		{name: "legacy SSE: auto falls back", kind: "sse", path: "/sse",
			up: true, got: "sse", proto: "2025-11-25", opened: 1, tls: 2},
		{name: "bearer with the token", kind: "bearer", path: "/mcp", token: true,
			up: true, got: "streamable", proto: "2025-11-25", session: true, opened: 1, tls: 1},
		{name: "bearer without a token: AUTH_REQUIRED, discovery valid", kind: "bearer", path: "/mcp",
			reason: probe.MCPAuthRequired, got: "streamable", authValid: "valid", tls: 1},
		{name: "2025-03-26-style auth: working but pre-2025-06-18", kind: "legacyauth", path: "/mcp",
			reason: probe.MCPAuthRequired, got: "streamable", authValid: "legacy", tls: 1},
		{name: "stalls after initialize: TIMEOUT, and the session is still closed", kind: "stall", path: "/mcp",
			timeout: 2e9, reason: probe.MCPTimeout, got: "streamable", session: true, opened: 1, tls: 2},
		{name: "loses the session: SESSION_LOST", kind: "lost", path: "/mcp",
			reason: probe.MCPSessionLost, got: "streamable", session: true, opened: 1, lost: true, tls: 1},
		{name: "transport sse at a Streamable HTTP server: TRANSPORT_MISMATCH", kind: "stateful", path: "/mcp",
			transport: "sse", reason: probe.MCPTransportMismatch, got: "sse", session: true, opened: 1, tls: 1,
			detail: "set mcp.transport to streamable or auto"},
	}
	// Sequential: cases that share a server add to its counts.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opened += l.count(tc.kind, "open")
			tc.tlsBefore = l.count(tc.kind, "tls")
			tc.tls += tc.tlsBefore
			m := tc.probe(t, p, l.port(tc.kind), tokenFile)
			tc.check(t, l, m)
		})
	}
	for agent := range l.agents {
		if !strings.HasPrefix(agent, "mcp_cert_exporter/") {
			t.Errorf("a request came with User-Agent %q", agent)
		}
	}
}
