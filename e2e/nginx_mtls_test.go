package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/mcptest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// osslGet sends the posture scan's GET through openssl s_client, with the
// client certificate when cert is not empty, and returns what came back:
// TLS, then HTTP, as an independent client sees them.
func osslGet(t *testing.T, addr, caFile, cert, key string) string {
	t.Helper()
	args := []string{"s_client", "-connect", addr, "-servername", "localhost", "-CAfile", caFile, "-quiet"}
	if cert != "" {
		args = append(args, "-cert", cert, "-key", key)
	}
	cmd := exec.Command(tooltest.Require(t, "openssl"), args...)
	cmd.Stdin = strings.NewReader("GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	return string(out)
}

// TestNginxClientCertEnforcement: nginx with ssl_verify_client on completes
// the TLS handshake without a client certificate and refuses at HTTP with
// 400 "No required SSL certificate was sent"; with optional it passes the
// request on. openssl s_client sees the same, and the posture scan must
// call the first enforced and the second not.
func TestNginxClientCertEnforcement(t *testing.T) {
	ca := testpki.NewCA("Test Root")
	inter := ca.Intermediate("Test Intermediate")
	leaf := inter.Issue(testpki.Options{})
	clientCA := testpki.NewCA("Test Client CA")
	client := clientCA.Issue(testpki.Options{CN: "probe client", Client: true})
	calls := &mcptest.Calls{}
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcptest.Streamable(mcptest.NewServer("behind-nginx-mtls", calls), calls, nil))
	backend := httptest.NewServer(mux)
	t.Cleanup(backend.Close)

	for _, tc := range []struct {
		mode     string
		enforced bool
		openssl  string // in openssl's answer without a client certificate
	}{
		{"on", true, "No required SSL certificate was sent"},
		{"optional", false, "GET requires an Mcp-Session-Id header"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM())
			certFile := testpki.WriteFile(t, dir, "client.crt", client.PEM())
			keyFile := testpki.WriteFile(t, dir, "client.key", client.KeyPEM())
			testpki.WriteFile(t, dir, "client-ca.pem", clientCA.PEM())
			listen := startNginx(t, dir, leaf, inter, strings.TrimPrefix(backend.URL, "http://"),
				"ssl_client_certificate "+dir+"/client-ca.pem;", "ssl_verify_client "+tc.mode+";")

			without := osslGet(t, listen, caFile, "", "")
			if !strings.Contains(without, tc.openssl) {
				t.Fatalf("openssl without a client certificate: want %q in\n%s", tc.openssl, without)
			}
			if with := osslGet(t, listen, caFile, certFile, keyFile); !strings.Contains(with, "GET requires an Mcp-Session-Id header") {
				t.Fatalf("openssl with a client certificate did not reach the backend:\n%s", with)
			}

			target, err := probe.NewTarget(config.Endpoint{Name: "nginx-mtls", URL: "https://" + listen + "/mcp",
				Timeout:   config.Duration(10 * time.Second),
				TLSConfig: config.TLSConfig{CAFile: caFile, ServerName: "localhost", CertFile: certFile, KeyFile: keyFile}})
			if err != nil {
				t.Fatal(err)
			}
			r := target.Posture(context.Background(), probe.PostureOptions{ClientCert: true})
			if r.ClientCertRequired == nil || *r.ClientCertRequired != tc.enforced {
				t.Fatalf("client cert required %v, want %v; unknown: %+v", r.ClientCertRequired, tc.enforced, r.Unknown)
			}
		})
	}
}
