package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// healthcheck asks the real exporter, started with the flags it is given,
// the way a container runtime does: same flags, exit code only.
func TestHealthcheckCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, filepath.Join(dir, "c.yml"), "endpoints: []\n")
	ca := testpki.NewCA("Exporter CA")
	leaf := ca.Leaf("exporter")
	tlsAuth := writeConfig(t, filepath.Join(dir, "web.yml"), fmt.Sprintf(
		"tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prometheus: %s\n",
		testpki.WriteFile(t, dir, "server.crt", leaf.PEM()), testpki.WriteFile(t, dir, "server.key", leaf.KeyPEM()),
		bcryptHash(t, "correct horse")))
	plain := launchExporter(t, "--config.file="+cfg)
	secured := launchExporter(t, "--config.file="+cfg, "--web.config.file="+tlsAuth)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not today", http.StatusServiceUnavailable)
	}))
	defer failing.Close()

	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"plain HTTP", []string{"--web.listen-address=" + plain.addr}, 0, ""},
		{"TLS and basic auth", []string{"--web.listen-address=" + secured.addr, "--web.config.file=" + tlsAuth}, 0, ""},
		{"TLS server asked over HTTP", []string{"--web.listen-address=" + secured.addr}, 1, "400 Bad Request"},
		{"nothing listening", []string{"--web.listen-address=" + freeAddr(t)}, 1, "connection refused"},
		{"unhealthy answer", []string{"--web.listen-address=" + strings.TrimPrefix(failing.URL, "http://")}, 1, "503"},
		{"missing web config", []string{"--web.config.file=" + filepath.Join(dir, "nope.yml")}, 1, "nope.yml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runBinary(t, append([]string{"healthcheck"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.out) {
				t.Errorf("exit %d, want %d; output %q, want it to contain %q", code, tc.code, out, tc.out)
			}
		})
	}
}
