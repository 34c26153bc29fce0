package interop

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// The exporter against mark3labs/mcp-go's servers. They live in the module
// under mcpgo/, built here, so that mcp-go stays out of the exporter's go.mod.
func TestMCPGo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mcpgo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = "mcpgo"
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the mcp-go servers: %v\n%s", err, out)
	}
	p := newPKI(t)
	l := startServers(t, exec.Command(bin, p.certFile, p.keyFile))

	cases := []interopCase{
		// mcp-go answers server/discover: 2026-07-28 is sessionless.
		{name: "Streamable HTTP: server/discover, no session", kind: "stateful", path: "/mcp",
			up: true, got: "streamable", proto: "2026-07-28", tls: 1},
		{name: "stateless: no session", kind: "stateless", path: "/mcp",
			up: true, got: "streamable", proto: "2026-07-28", tls: 1},
		{name: "legacy SSE: auto falls back", kind: "sse", path: "/sse",
			up: true, got: "sse", opened: 1, tls: 2},
		{name: "transport sse at a Streamable HTTP server: TRANSPORT_MISMATCH", kind: "stateful", path: "/mcp",
			transport: "sse", timeout: 4e9, reason: probe.MCPTransportMismatch, got: "sse", opened: 1, tls: 2, // its GET stream registers a session
			detail: "set mcp.transport to streamable or auto"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opened += l.count(tc.kind, "open")
			tc.tlsBefore = l.count(tc.kind, "tls")
			tc.tls += tc.tlsBefore
			tc.check(t, l, tc.probe(t, p, l.port(tc.kind), ""))
		})
	}
	for agent := range l.agents {
		if !strings.HasPrefix(agent, "mcp_cert_exporter/") {
			t.Errorf("a request came with User-Agent %q", agent)
		}
	}
}
