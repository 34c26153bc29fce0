package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpcert/mcp_cert_exporter/internal/mcptest"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// plantedToken is the bearer token of the protected server; it must never
// leave the exporter except in the Authorization header.
const plantedToken = "planted-bearer-token-7f3a9c"

// mcpFleet is a set of real go-sdk servers over TLS with one CA.
type mcpFleet struct {
	dir, caFile, tokenFile string
	cert                   tls.Certificate
	calls                  *mcptest.Calls
}

func newMCPFleet(t *testing.T) *mcpFleet {
	dir := t.TempDir()
	ca := testpki.NewCA("Test Root")
	inter := ca.Intermediate("Test Intermediate")
	return &mcpFleet{
		dir:       dir,
		caFile:    testpki.WriteFile(t, dir, "ca.pem", ca.PEM()),
		tokenFile: testpki.WriteFile(t, dir, "token", []byte(plantedToken+"\n")),
		cert:      inter.Leaf("mcp.test").TLS(inter),
		calls:     &mcptest.Calls{},
	}
}

// serve starts a server whose routes may name its base URL, and returns base+path.
func (f *mcpFleet) serve(t *testing.T, path string, routes func(base string, mux *http.ServeMux)) string {
	base, mux := mcptest.ServeTLS(t, f.cert)
	routes(base, mux)
	return base + path
}

func (f *mcpFleet) at(path string, h http.Handler) func(string, *http.ServeMux) {
	return func(_ string, mux *http.ServeMux) { mux.Handle(path, h) }
}

func (f *mcpFleet) protected() func(string, *http.ServeMux) {
	return func(base string, mux *http.ServeMux) {
		s := mcptest.Streamable(mcptest.NewServer("guarded", f.calls), f.calls, nil)
		mux.Handle("/mcp", mcptest.Protect(s, plantedToken, base+"/.well-known/oauth-protected-resource/mcp"))
		mux.Handle("/.well-known/oauth-protected-resource/mcp", mcptest.Metadata(base+"/mcp", "https://auth.example"))
	}
}

// legacyAuth is a protected server of the 2025-03-26 revision: its 401 names
// no resource_metadata, and RFC 8414 metadata sits at the host's root.
func (f *mcpFleet) legacyAuth() func(string, *http.ServeMux) {
	return func(base string, mux *http.ServeMux) {
		s := mcptest.Streamable(mcptest.NewServer("guarded", f.calls), f.calls, nil)
		mux.Handle("/mcp", mcptest.Protect(s, plantedToken, ""))
		mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"issuer":%[1]q,"authorization_endpoint":"%[1]s/authorize","token_endpoint":"%[1]s/token"}`, base)
		})
	}
}

// mcpTarget is one endpoint of the config and what its metrics must say.
type mcpTarget struct {
	name, url, extra string // extra: YAML lines under the endpoint
	up               bool
	transport        string // for mcp_server_info
	version          string
	server           string
	reason           string // for mcp_error_info
	authValid        string // "", "0" or "1"
	authLegacy       string // with authValid: "0" or "1"
}

func TestMCPMetricsStatusAndCheck(t *testing.T) {
	f := newMCPFleet(t)
	stall := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	stateless := &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true}
	targets := []mcpTarget{
		{name: "stateful", url: f.serve(t, "/mcp", f.at("/mcp", mcptest.Streamable(mcptest.NewServer("stateful", f.calls), f.calls, nil))),
			up: true, transport: "streamable", version: "2025-11-25", server: "stateful"},
		{name: "stateless", url: f.serve(t, "/mcp", f.at("/mcp", mcptest.Streamable(mcptest.NewServer("stateless", f.calls), f.calls, stateless))),
			up: true, transport: "streamable", version: "2026-07-28", server: "stateless"},
		{name: "pinned", url: f.serve(t, "/mcp", f.at("/mcp", mcptest.Streamable(mcptest.NewServer("pinned", f.calls, "2025-06-18"), f.calls, nil))),
			up: true, transport: "streamable", version: "2025-06-18", server: "pinned"},
		{name: "legacy-sse", url: f.serve(t, "/sse", f.at("/sse", mcptest.SSE(mcptest.NewServer("legacy", f.calls), f.calls))),
			up: true, transport: "sse", version: "2025-11-25", server: "legacy"},
		{name: "protected", url: f.serve(t, "/mcp", f.protected()), reason: "AUTH_REQUIRED", authValid: "1", authLegacy: "0"},
		{name: "protected-2025-03-26", url: f.serve(t, "/mcp", f.legacyAuth()), reason: "AUTH_REQUIRED", authValid: "1", authLegacy: "1"},
		{name: "protected-token", url: f.serve(t, "/mcp", f.protected()), extra: "    mcp: {bearer_token_file: " + f.tokenFile + "}\n",
			up: true, transport: "streamable", version: "2025-11-25", server: "guarded"},
		// A revoked token: refused although one is configured, which pages.
		{name: "protected-revoked", url: f.serve(t, "/mcp", f.protected()),
			extra:  "    mcp: {bearer_token_file: " + testpki.WriteFile(t, f.dir, "revoked", []byte("revoked-token\n")) + "}\n",
			reason: "AUTH_REQUIRED", authValid: "1", authLegacy: "0"},
		{name: "not-mcp", url: f.serve(t, "/mcp", f.at("/", http.NotFoundHandler())), reason: "NOT_MCP"},
		{name: "stalls", url: f.serve(t, "/mcp", f.at("/mcp", stall)), extra: "    timeout: 1s\n", reason: "TIMEOUT"},
	}
	var cfg strings.Builder
	cfg.WriteString("interval: 1h\nendpoints:\n")
	for _, tg := range targets {
		fmt.Fprintf(&cfg, "  - name: %s\n    url: %s\n    tls_config: {ca_file: %s}\n%s", tg.name, tg.url, f.caFile, tg.extra)
	}
	e := startExporter(t, "--config.file="+writeConfig(t, filepath.Join(f.dir, "c.yml"), cfg.String()))
	var text string
	var fams metricstest.Families
	eventually(t, "every endpoint's MCP handshake reported", func() bool {
		text, fams = e.metrics()
		return len(fams.Samples("mcp_up", nil)) == len(targets)
	})
	for _, tg := range targets {
		assertMCPMetrics(t, fams, tg)
	}
	status := assertMCPStatus(t, e)
	assertMCPCheck(t, f, targets)
	if n := f.calls.SideEffects(); n != 0 {
		t.Errorf("%d tool calls or resource reads, want none", n)
	}
	// Logs are read once the exporter has stopped writing them.
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e.done <- <-e.done
	for what, out := range map[string]string{"metrics": text, "status": status, "logs": e.logs.String()} {
		if strings.Contains(out, plantedToken) {
			t.Errorf("the bearer token appears in the %s", what)
		}
	}
}

func assertMCPMetrics(t *testing.T, fams metricstest.Families, tg mcpTarget) {
	t.Helper()
	target := map[string]string{"target": tg.name}
	want := 0.0
	if tg.up {
		want = 1
	}
	if v := fams.One(t, "mcp_up", target); v != want {
		t.Errorf("%s: mcp_up %v, want %v", tg.name, v, want)
	}
	fams.One(t, "mcp_handshake_duration_seconds", target)
	if tg.up {
		fams.One(t, "mcp_server_info", map[string]string{"target": tg.name, "transport": tg.transport,
			"protocol_version": tg.version, "server_name": tg.server, "server_version": "1.2.3"})
		fams.Absent(t, "mcp_error_info", target)
	} else {
		fams.One(t, "mcp_error_info", map[string]string{"target": tg.name, "reason": tg.reason})
		fams.Absent(t, "mcp_server_info", target)
	}
	if tg.authValid == "" {
		fams.Absent(t, "mcp_auth_metadata_valid", target)
		fams.Absent(t, "mcp_auth_metadata_legacy", target)
	} else {
		if v := fams.One(t, "mcp_auth_metadata_valid", target); fmt.Sprint(v) != tg.authValid {
			t.Errorf("%s: mcp_auth_metadata_valid %v, want %s", tg.name, v, tg.authValid)
		}
		if v := fams.One(t, "mcp_auth_metadata_legacy", target); fmt.Sprint(v) != tg.authLegacy {
			t.Errorf("%s: mcp_auth_metadata_legacy %v, want %s", tg.name, v, tg.authLegacy)
		}
	}
	if v := fams.One(t, "ssl_certificate_verified", target); v != 1 {
		t.Errorf("%s: ssl_certificate_verified %v", tg.name, v)
	}
	if v, want := fams.One(t, "mcp_bearer_token_configured", target), strings.Contains(tg.extra, "bearer_token_file"); (v == 1) != want {
		t.Errorf("%s: mcp_bearer_token_configured %v, want %v", tg.name, v, want)
	}
}

// assertMCPStatus checks the status page's MCP fields and returns both its
// forms, for the secret check.
func assertMCPStatus(t *testing.T, e *exporter) string {
	t.Helper()
	_, body := e.get("/status?format=json")
	var st []struct {
		Name     string
		State    string
		Problems []struct{ Layer, Reason, Remedy string }
		MCP      *struct {
			Up                bool
			ServerName        string `json:"server_name"`
			AuthMetadataValid *bool  `json:"auth_metadata_valid"`
		}
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status JSON: %v", err)
	}
	for _, s := range st {
		switch {
		case s.MCP == nil:
			t.Errorf("%s: no MCP on the status page", s.Name)
		case s.Name == "stateful" && (!s.MCP.Up || s.MCP.ServerName != "stateful"):
			t.Errorf("stateful: MCP %+v", *s.MCP)
		case s.Name == "protected" && (s.MCP.AuthMetadataValid == nil || !*s.MCP.AuthMetadataValid ||
			len(s.Problems) != 1 || s.Problems[0].Layer != "mcp" || s.Problems[0].Reason != "AUTH_REQUIRED" || s.Problems[0].Remedy == ""):
			t.Errorf("protected: MCP %+v, problems %+v", *s.MCP, s.Problems)
		}
		// The verdict check exits on (assertMCPCheck): 0 for protected, 1 for not-mcp.
		if want, ok := map[string]string{"protected": "healthy", "not-mcp": "failing"}[s.Name]; ok && s.State != want {
			t.Errorf("%s: state %s on the status page, want %s as check's exit code says", s.Name, s.State, want)
		}
	}
	_, html := e.get("/status")
	if !strings.Contains(html, "MCP AUTH_REQUIRED") || !strings.Contains(html, "2026-07-28") {
		t.Error("the HTML status page lacks the MCP reason or the protocol version")
	}
	return body + html
}

func assertMCPCheck(t *testing.T, f *mcpFleet, targets []mcpTarget) {
	t.Helper()
	url := func(name string) string {
		for _, tg := range targets {
			if tg.name == name {
				return tg.url
			}
		}
		t.Fatalf("no target %s", name)
		return ""
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"stateful", nil, 0, []string{`MCP:          OK: streamable, protocol 2025-11-25, server "stateful"`, "session closed (DELETE answered 204)"}},
		{"protected", nil, 0, []string{"MCP:          FAILED: AUTH_REQUIRED", "OAuth:        discovery well-formed"}},
		{"protected-2025-03-26", nil, 0, []string{"OAuth:        discovery working but pre-2025-06-18"}},
		{"protected-token", []string{"--bearer-token-file", f.tokenFile}, 0, []string{`server "guarded"`}},
		{"not-mcp", nil, 1, []string{"MCP:          FAILED: NOT_MCP", "MCP remedy:"}},
		{"legacy-sse", []string{"--mcp-transport", "sse"}, 0, []string{"OK: sse"}},
	} {
		code, out := runBinary(t, append([]string{"check", url(tc.name), "--ca-file", f.caFile}, tc.args...)...)
		if code != tc.code {
			t.Errorf("check %s exited %d, want %d:\n%s", tc.name, code, tc.code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("check %s lacks %q:\n%s", tc.name, w, out)
			}
		}
		if strings.Contains(out, plantedToken) {
			t.Errorf("check %s prints the bearer token", tc.name)
		}
	}
}
