package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/mcptest"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// nginxConf terminates TLS in front of a plain-HTTP MCP server the way
// production guides configure nginx for MCP: HTTP/1.1 to the upstream with
// keep-alive, no buffering or caching so event streams flow, and a long read
// timeout for open streams. One process (master_process off) because the
// test runs it as whatever user it is; every path is under dir.
const nginxConf = `worker_processes 1;
master_process off;
events { worker_connections 64; }
http {
    access_log {{dir}}/access.log;
    client_body_temp_path {{dir}}/client_body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;

    upstream mcp_backend {
        server {{backend}};
        keepalive 8;
    }
    server {
        listen {{listen}} ssl;
        server_name localhost;
        ssl_certificate {{dir}}/fullchain.pem;
        ssl_certificate_key {{dir}}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        {{server}}

        location / {
            proxy_pass http://mcp_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection '';
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering {{buffering}};
            proxy_cache off;
            chunked_transfer_encoding on;
            proxy_read_timeout 1h;
        }
    }
}
`

// startNginx runs nginx in the foreground with a TLS certificate, proxying
// to backend, and returns the address it listens on. server holds further
// directives of the server block.
func startNginx(t *testing.T, dir string, cert, inter *testpki.Cert, backend string, server ...string) string {
	t.Helper()
	return startNginxBuffering(t, dir, cert, inter, backend, "off", server...)
}

// startNginxBuffering is startNginx with proxy_buffering set to buffering.
func startNginxBuffering(t *testing.T, dir string, cert, inter *testpki.Cert, backend, buffering string, server ...string) string {
	t.Helper()
	bin := tooltest.Require(t, "nginx")
	listen := freeAddr(t)
	testpki.WriteFile(t, dir, "fullchain.pem", testpki.Bundle(cert, inter))
	testpki.WriteFile(t, dir, "key.pem", cert.KeyPEM())
	conf := strings.NewReplacer("{{dir}}", dir, "{{backend}}", backend, "{{listen}}", listen, "{{buffering}}", buffering,
		"{{server}}", strings.Join(server, "\n        ")).Replace(nginxConf)
	confFile := writeConfig(t, filepath.Join(dir, "nginx.conf"), conf)
	var logs strings.Builder
	cmd := exec.Command(bin, "-e", "stderr", "-p", dir, "-c", confFile,
		"-g", fmt.Sprintf("daemon off; pid %s; error_log stderr;", filepath.Join(dir, "nginx.pid")))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the test is over; how nginx ends does not matter
		<-done
		if t.Failed() {
			access, _ := os.ReadFile(filepath.Join(dir, "access.log"))
			t.Logf("nginx logs:\n%s\naccess log:\n%s", logs.String(), access)
		}
	})
	eventually(t, "nginx accepts TLS", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("nginx exited: %v\n%s", err, logs.String())
		default:
		}
		c, err := tls.Dial("tcp", listen, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return false
		}
		return c.Close() == nil
	})
	return listen
}

// The exporter reports nginx's certificate and the MCP server behind it, over
// both transports.
func TestMCPBehindNginx(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA("Test Root")
	inter := ca.Intermediate("Test Intermediate")
	leaf := inter.Issue(testpki.Options{CN: "nginx.test"})
	calls := &mcptest.Calls{}
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcptest.Streamable(mcptest.NewServer("behind-nginx", calls), calls, nil))
	mux.Handle("/sse", mcptest.SSE(mcptest.NewServer("behind-nginx-sse", calls), calls))
	backend := httptest.NewServer(mux) // plain HTTP: nginx terminates TLS
	t.Cleanup(backend.Close)
	listen := startNginx(t, dir, leaf, inter, strings.TrimPrefix(backend.URL, "http://"))
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM())

	cfg := fmt.Sprintf("interval: 1h\nendpoints:\n"+
		"  - name: via-nginx\n    url: https://%[1]s/mcp\n    tls_config: {ca_file: %[2]s}\n"+
		"  - name: via-nginx-sse\n    url: https://%[1]s/sse\n    tls_config: {ca_file: %[2]s}\n", listen, caFile)
	e := startExporter(t, "--config.file="+writeConfig(t, filepath.Join(dir, "c.yml"), cfg))
	var fams metricstest.Families
	eventually(t, "both endpoints probed", func() bool {
		_, fams = e.metrics()
		return len(fams.Samples("mcp_up", nil)) == 2
	})
	for _, tc := range []struct{ target, transport, server string }{
		{"via-nginx", "streamable", "behind-nginx"},
		{"via-nginx-sse", "sse", "behind-nginx-sse"},
	} {
		target := map[string]string{"target": tc.target}
		if v := fams.One(t, "mcp_up", target); v != 1 {
			t.Errorf("%s: mcp_up %v", tc.target, v)
		}
		fams.One(t, "mcp_server_info", map[string]string{"target": tc.target, "transport": tc.transport, "server_name": tc.server})
		fams.One(t, "ssl_certificate_info", map[string]string{"target": tc.target, "role": "leaf", "subject_cn": "nginx.test"})
		if v := fams.One(t, "ssl_certificate_verified", target); v != 1 {
			t.Errorf("%s: nginx's certificate does not verify", tc.target)
		}
	}
	if n := calls.HTTP("DELETE"); n != 1 {
		t.Errorf("the session DELETEs that reached the MCP server through nginx: %d, want 1", n)
	}
	if n := calls.SideEffects(); n != 0 {
		t.Errorf("%d tool calls or resource reads, want none", n)
	}
}

// nginx with proxy_buffering on holds an SSE stream back: the probe times
// out waiting for the endpoint event. That is TIMEOUT, whose remedy names
// proxy buffering, whether auto fell back to SSE or sse was configured.
func TestMCPBehindBufferingNginx(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA("Test Root")
	leaf := ca.Leaf("localhost")
	calls := &mcptest.Calls{}
	backend := httptest.NewServer(mcptest.SSE(mcptest.NewServer("buffered-sse", calls), calls))
	t.Cleanup(backend.Close)
	listen := startNginxBuffering(t, dir, leaf, ca, strings.TrimPrefix(backend.URL, "http://"), "on")
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM())
	for _, transport := range []string{config.TransportAuto, config.TransportSSE} {
		t.Run(transport, func(t *testing.T) {
			gets := calls.HTTP("GET")
			target, err := probe.NewTarget(config.Endpoint{Name: "buffered", URL: "https://" + listen + "/sse",
				Timeout: config.Duration(3 * time.Second), TLSConfig: config.TLSConfig{CAFile: caFile},
				MCP: config.MCPConfig{Transport: transport}})
			if err != nil {
				t.Fatal(err)
			}
			m := target.Probe(context.Background()).MCP
			if m == nil || m.Reason != probe.MCPTimeout || m.Transport != probe.TransportSSE {
				t.Fatalf("MCP result %+v, want TIMEOUT over sse", m)
			}
			if !strings.Contains(m.Reason.Remedy(), "proxy_buffering off") {
				t.Errorf("remedy %q does not name proxy buffering", m.Reason.Remedy())
			}
			if calls.HTTP("GET") == gets {
				t.Error("the SSE GET never reached the server behind nginx")
			}
		})
	}
}
