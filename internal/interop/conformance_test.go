package interop

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// clientEnv makes the test binary act as the conformance suite's client,
// which writes its verdict to the file that resultEnv names.
const (
	clientEnv = "MCPCERT_CONFORMANCE_CLIENT"
	resultEnv = "MCPCERT_CONFORMANCE_RESULT"
)

func TestMain(m *testing.M) {
	if os.Getenv(clientEnv) != "" {
		os.Exit(conformanceClient(os.Args[len(os.Args)-1]))
	}
	os.Exit(m.Run())
}

// conformanceClient probes the suite's server at serverURL, as the suite
// runs a client: with the URL as its last argument, exit 0 on success. The
// suite serves plain HTTP on localhost and the exporter only speaks https://,
// so a TLS reverse proxy with a certificate made here stands in front.
func conformanceClient(serverURL string) int {
	u, err := url.Parse(serverURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ca := testpki.NewCA("Conformance Root")
	dir, err := os.MkdirTemp("", "conformance")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM(), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.Leaf("localhost").TLS()}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: u.Host})
	proxy.FlushInterval = -1 // event streams flow
	go func() { _ = http.Serve(ln, proxy) }()
	defer ln.Close()

	path := u.Path
	if path == "" {
		path = "/"
	}
	target, err := probe.NewTarget(config.Endpoint{Name: "conformance",
		URL:     "https://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port) + path,
		Timeout: config.Duration(20 * time.Second), TLSConfig: config.TLSConfig{CAFile: caFile}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r := target.Probe(context.Background())
	if r.MCP == nil {
		fmt.Fprintf(os.Stderr, "TLS %s: %s\n", r.Reason, r.Detail)
		return 1
	}
	m := r.MCP
	verdict := fmt.Sprintf("exporter: up %v transport %s protocol %s reason %q detail %q auth valid %v legacy %v (%s)\n",
		m.Up, m.Transport, m.ProtocolVersion, m.Reason, m.Detail, m.AuthMetadataValid != nil && *m.AuthMetadataValid,
		m.AuthLegacy, m.AuthDetail)
	if err := os.WriteFile(os.Getenv(resultEnv), []byte(verdict), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if !m.Up {
		return 1
	}
	return 0
}

// The MCP conformance suite's client scenarios where the exporter is a
// fitting client: it initializes and ends the session; it follows no OAuth
// flow and calls no tool, so the other scenarios do not apply (docs/mcp.md).
func TestConformance(t *testing.T) {
	modules, version := tooltest.NPMPackage(t, "@modelcontextprotocol/conformance")
	node := filepath.Join(modules, ".bin", "node") // Node 22, from npm's node package: the suite needs it
	if _, err := os.Stat(node); err != nil {
		t.Fatalf("Node 22 from npm: %v; run scripts/install-tools.sh", err)
	}
	t.Logf("@modelcontextprotocol/conformance %s", version)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		scenario string
		up       bool     // the whole scenario passes and the exporter reports the server up
		checks   []string // else: the suite's checks that must pass
	}{
		{scenario: "initialize", up: true},
		// The exporter follows no OAuth flow (no registration, authorization
		// or token request), so the scenario fails as a whole; the discovery
		// it does follow must pass.
		{scenario: "auth/2025-03-26-oauth-metadata-backcompat", checks: []string{"authorization-server-metadata"}},
	}
	for _, tc := range cases {
		t.Run(tc.scenario, func(t *testing.T) {
			out := t.TempDir()
			cmd := exec.Command(node, filepath.Join(modules, "@modelcontextprotocol", "conformance", "dist", "index.js"),
				"client", "--command", self, "--scenario", tc.scenario, "--timeout", "30000", "-o", out)
			result := filepath.Join(out, "exporter.txt")
			cmd.Env = append(os.Environ(), clientEnv+"=1", resultEnv+"="+result)
			got, err := cmd.CombinedOutput()
			verdict, rerr := os.ReadFile(result)
			if rerr != nil {
				t.Fatalf("the exporter left no verdict: %v\n%s", rerr, got)
			}
			t.Logf("%s\n%s", verdict, got)
			if tc.up && (err != nil || !strings.HasPrefix(string(verdict), "exporter: up true")) {
				t.Errorf("conformance %s: %v; want the scenario passed and the server up", tc.scenario, err)
			}
			for _, check := range tc.checks {
				if !passed(string(got), check) {
					t.Errorf("the suite's check %s did not pass", check)
				}
			}
		})
	}
}

// passed finds the suite's line for check and SUCCESS on it.
func passed(output, check string) bool {
	for _, line := range strings.Split(output, "\n") {
		id := strings.Contains(line, "["+check+" ") || strings.Contains(line, "["+check+"]")
		if id && strings.Contains(line, "SUCCESS") {
			return true
		}
	}
	return false
}
