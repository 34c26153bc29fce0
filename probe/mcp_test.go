package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/mcptest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

const testToken = "s3cret-token-for-tests"

// mcpEnv is what a case builds its servers from.
type mcpEnv struct {
	p     *pki
	calls *mcptest.Calls
	cert  tls.Certificate // localhost and 127.0.0.1, with its intermediate
	trust config.TLSConfig
}

// serve starts a TLS server, lets routes add handlers knowing its base URL,
// and returns the endpoint for base+path.
func (e *mcpEnv) serve(t *testing.T, path string, mc config.MCPConfig, routes func(base string, mux *http.ServeMux)) config.Endpoint {
	t.Helper()
	base, mux := mcptest.ServeTLS(t, e.cert)
	routes(base, mux)
	return urlEndpoint(base+path, e.trust, mc)
}

func urlEndpoint(u string, tc config.TLSConfig, mc config.MCPConfig) config.Endpoint {
	return config.Endpoint{Name: "mcp", URL: u, Timeout: config.Duration(10 * time.Second), TLSConfig: tc, MCP: mc}
}

// handle routes path to h.
func handle(path string, h http.Handler) func(string, *http.ServeMux) {
	return func(_ string, mux *http.ServeMux) { mux.Handle(path, h) }
}

// protected serves a bearer-protected stateful server at /mcp whose
// challenge names metadataURL (relative to the base when it starts with
// /), and meta at the path-specific well-known URL when not nil.
func protected(e *mcpEnv, metadataURL string, meta func(base string) http.Handler) func(string, *http.ServeMux) {
	return func(base string, mux *http.ServeMux) {
		if strings.HasPrefix(metadataURL, "/") {
			metadataURL = base + metadataURL
		}
		mux.Handle("/mcp", mcptest.Protect(mcptest.Streamable(mcptest.NewServer("guarded", e.calls), e.calls, nil), testToken, metadataURL))
		if meta != nil {
			mux.Handle(wellKnownResource+"/mcp", meta(base))
		}
	}
}

func goodMetadata(base string) http.Handler {
	return mcptest.Metadata(base+"/mcp", "https://auth.example")
}

func tokenFile(t *testing.T, token string) string {
	return testpki.WriteFile(t, t.TempDir(), "token", []byte(token))
}

// stall answers a POST with an event stream that never carries the answer,
// and reports when the client went away.
func stall(gone chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, ": working on it\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		gone <- struct{}{}
	})
}

// stallAfterInit passes initialize and the DELETE to h, and never answers
// a POST carrying the session: a server that answers initialize, then stalls.
func stallAfterInit(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get(sessionHeader) != "" {
			_, _ = io.Copy(io.Discard, r.Body) // so that the server sees the client go away
			<-r.Context().Done()
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authServerMeta is RFC 8414 metadata for an authorization server at base.
func authServerMeta(base string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%[1]q,"authorization_endpoint":%[1]q,"token_endpoint":%[1]q}`, base)
	})
}

// flood sends body forever, in the given content type, until the client
// goes away.
func flood(contentType, chunk string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		big := strings.Repeat(chunk, 64<<10/len(chunk))
		for r.Context().Err() == nil {
			if _, err := fmt.Fprint(w, big); err != nil {
				return
			}
		}
	})
}

// certSwitch serves h at /mcp with first on the first connections and then
// on every later one, and closes each connection after one answer, so that
// every request of the MCP exchange needs a handshake of its own.
func certSwitch(t *testing.T, firsts int32, first, then tls.Certificate, h http.Handler, trust config.TLSConfig) config.Endpoint {
	var n atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if n.Add(1) <= firsts {
			return &tls.Config{Certificates: []tls.Certificate{first}}, nil
		}
		return &tls.Config{Certificates: []tls.Certificate{then}}, nil
	}}
	srv.Config.SetKeepAlivesEnabled(false)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return urlEndpoint(srv.URL+"/mcp", trust, config.MCPConfig{})
}

type mcpCase struct {
	name     string
	endpoint func(t *testing.T, e *mcpEnv) config.Endpoint
	// want is compared field by field, except Duration, Detail, AuthDetail,
	// Connections and AuthMetadataValid; nil means no MCP result.
	want      *MCPResult
	authValid *bool
	check     func(t *testing.T, e *mcpEnv, r *TLSResult)
}

func TestMCP(t *testing.T) {
	yes, no := new(bool), new(bool)
	*yes = true
	up := func(transport, version, name string, session bool, deleteStatus int) *MCPResult {
		return &MCPResult{Up: true, Transport: transport, ProtocolVersion: version, ServerName: name, ServerVersion: "1.2.3",
			Session: session, DeleteStatus: deleteStatus}
	}
	failed := func(transport string, reason MCPReason, status int) *MCPResult {
		return &MCPResult{Transport: transport, Reason: reason, HTTPStatus: status}
	}
	cases := []mcpCase{
		{
			name: "stateful Streamable HTTP: initialize, then DELETE ends the session",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", mcptest.Streamable(mcptest.NewServer("stateful", e.calls), e.calls, nil)))
			},
			want: up("streamable", "2025-11-25", "stateful", true, http.StatusNoContent),
			check: func(t *testing.T, e *mcpEnv, r *TLSResult) {
				if n := e.calls.HTTP("DELETE"); n != 1 {
					t.Errorf("DELETE requests %d, want 1", n)
				}
				// The server answers a notification with 202 before it
				// dispatches it, so the record may trail the probe a little.
				var m []string
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
					if m = e.calls.Methods(); slices.Contains(m, "notifications/initialized") {
						break
					}
				}
				if !slices.Contains(m, "initialize") || !slices.Contains(m, "notifications/initialized") {
					t.Errorf("methods %v, want initialize and notifications/initialized", m)
				}
			},
		},
		{
			name: "stateless JSON server: server/discover of 2026-07-28, no session",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				opts := &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true}
				return e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", mcptest.Streamable(mcptest.NewServer("stateless", e.calls), e.calls, opts)))
			},
			want: up("streamable", "2026-07-28", "stateless", false, 0),
			check: func(t *testing.T, e *mcpEnv, r *TLSResult) {
				if m := e.calls.Methods(); !slices.Equal(m, []string{"server/discover"}) {
					t.Errorf("methods %v, want server/discover only", m)
				}
				if r.MCP.Connections != 1 {
					t.Errorf("connections %d, want the probe's own reused for the one POST", r.MCP.Connections)
				}
				if n := e.calls.HTTP("DELETE"); n != 0 {
					t.Errorf("DELETE requests %d without a session", n)
				}
			},
		},
		{
			name: "server that only speaks 2025-06-18",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				s := mcptest.NewServer("pinned", e.calls, "2025-06-18")
				return e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", mcptest.Streamable(s, e.calls, nil)))
			},
			want: up("streamable", "2025-06-18", "pinned", true, http.StatusNoContent),
		},
		{
			name: "legacy HTTP+SSE: auto falls back when the POST answers 400",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/sse", config.MCPConfig{}, handle("/sse", mcptest.SSE(mcptest.NewServer("legacy", e.calls), e.calls)))
			},
			want:  up("sse", "2025-11-25", "legacy", false, 0),
			check: requests("GET", 1),
		},
		{
			name: "legacy HTTP+SSE with transport sse: no Streamable attempt",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				mc := config.MCPConfig{Transport: config.TransportSSE}
				return e.serve(t, "/sse", mc, handle("/sse", mcptest.SSE(mcptest.NewServer("legacy", e.calls), e.calls)))
			},
			want:  up("sse", "2025-11-25", "legacy", false, 0),
			check: requests("POST", 2), // initialize and notifications/initialized
		},
		{
			name: "bearer-protected without a token: AUTH_REQUIRED, discovery well-formed",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, protected(e, wellKnownResource+"/mcp", goodMetadata))
			},
			want: failed("streamable", MCPAuthRequired, 401), authValid: yes,
		},
		{
			name: "bearer-protected with the token file",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				mc := config.MCPConfig{BearerTokenFile: tokenFile(t, "  "+testToken+"\n")}
				return e.serve(t, "/mcp", mc, protected(e, wellKnownResource+"/mcp", goodMetadata))
			},
			want: up("streamable", "2025-11-25", "guarded", true, http.StatusNoContent),
		},
		{
			name: "bearer-protected, token rejected: AUTH_REQUIRED",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				mc := config.MCPConfig{BearerTokenFile: tokenFile(t, "expired-token")}
				return e.serve(t, "/mcp", mc, protected(e, wellKnownResource+"/mcp", goodMetadata))
			},
			want: failed("streamable", MCPAuthRequired, 401), authValid: yes,
		},
		{
			name: "token file missing: AUTH_REQUIRED, nothing sent",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				mc := config.MCPConfig{BearerTokenFile: filepath.Join(t.TempDir(), "absent")}
				return e.serve(t, "/mcp", mc, protected(e, wellKnownResource+"/mcp", goodMetadata))
			},
			want: &MCPResult{Reason: MCPAuthRequired},
			check: func(t *testing.T, e *mcpEnv, r *TLSResult) {
				if e.calls.HTTP("POST") != 0 || !strings.Contains(r.MCP.Detail, "bearer_token_file") {
					t.Errorf("POSTs %d, detail %q: want none sent and the file named", e.calls.HTTP("POST"), r.MCP.Detail)
				}
			},
		},
		{
			name: "discovery without authorization_servers is broken",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, protected(e, wellKnownResource+"/mcp", func(base string) http.Handler {
					return mcptest.Metadata(base + "/mcp")
				}))
			},
			want: failed("streamable", MCPAuthRequired, 401), authValid: no,
			check: authDetail("no authorization_servers"),
		},
		{
			name: "discovery naming another resource is broken",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, protected(e, wellKnownResource+"/mcp", func(string) http.Handler {
					return mcptest.Metadata("https://elsewhere.example/mcp", "https://auth.example")
				}))
			},
			want: failed("streamable", MCPAuthRequired, 401), authValid: no,
			check: authDetail("does not match the endpoint"),
		},
		{
			name: "discovery document missing is broken",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, protected(e, wellKnownResource+"/mcp", nil))
			},
			want: failed("streamable", MCPAuthRequired, 401), authValid: no,
			check: authDetail("answered 404"),
		},
		{
			name: "resource_metadata on another host: not fetched, the endpoint's well-known URL is",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, protected(e, "https://auth.elsewhere.example/prm", goodMetadata))
			},
			want: failed("streamable", MCPAuthRequired, 401), authValid: yes,
			check: authDetail("another host and was not fetched"),
		},
		{
			name: "not MCP: 404 on both transports",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, handle("/other", http.NotFoundHandler()))
			},
			want:  failed("streamable", MCPNotMCP, 404),
			check: detail("SSE fallback: GET /mcp answered 404"),
		},
		{
			name: "not MCP: a web page",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/", config.MCPConfig{}, handle("/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set("Content-Type", "text/html")
					fmt.Fprint(w, "<html><body>Welcome</body></html>")
				})))
			},
			want: failed("streamable", MCPNotMCP, 200),
		},
		{
			name: "HTTP_ERROR: 503 from a proxy",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					http.Error(w, "upstream down", http.StatusServiceUnavailable)
				})))
			},
			want: failed("streamable", MCPHTTPError, 503),
		},
		{
			name: "HTTP_ERROR: a redirect is not followed",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, func(base string, mux *http.ServeMux) {
					mux.Handle("/mcp", http.RedirectHandler(base+"/moved", http.StatusTemporaryRedirect))
					mux.Handle("/moved", mcptest.Streamable(mcptest.NewServer("moved", e.calls), e.calls, nil))
				})
			},
			want:  failed("streamable", MCPHTTPError, 307),
			check: requests("POST", 0), // the redirect's target got none
		},
		{
			name: "TIMEOUT: a server that stalls mid-stream",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				gone := make(chan struct{}, 8)
				t.Cleanup(func() {
					select { // the probe closed the stream it gave up on
					case <-gone:
					case <-time.After(10 * time.Second):
						t.Error("the stalled request was still open 10s after the probe returned")
					}
				})
				ep := e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", stall(gone)))
				ep.Timeout = config.Duration(time.Second)
				return ep
			},
			want: failed("streamable", MCPTimeout, 0),
		},
		{
			name: "TIMEOUT, not TLS_FAILED: answers initialize, then stalls; the session is still closed",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				ep := e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", stallAfterInit(mcptest.Streamable(mcptest.NewServer("stall", e.calls), e.calls, nil))))
				ep.URL = strings.Replace(ep.URL, "127.0.0.1", "localhost", 1) // the DELETE's dial resolves a name
				ep.Timeout = config.Duration(time.Second)
				return ep
			},
			want:  &MCPResult{Transport: "streamable", Reason: MCPTimeout, Session: true, DeleteStatus: http.StatusNoContent},
			check: requests("DELETE", 1),
		},
		{
			name: "TIMEOUT, and the DELETE stalls too: its own budget runs out, and the detail says the session was not closed",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				h := stallAfterInit(mcptest.Streamable(mcptest.NewServer("stall", e.calls), e.calls, nil))
				ep := e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodDelete {
						<-r.Context().Done()
						return
					}
					h.ServeHTTP(w, r)
				})))
				ep.Timeout = config.Duration(time.Second)
				return ep
			},
			want:  &MCPResult{Transport: "streamable", Reason: MCPTimeout, Session: true},
			check: detail("the session the server assigned could not be closed: DELETE /mcp: "),
		},
		{
			name: "SESSION_LOST: the next request reaches a replica that never saw the initialize",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				a := mcptest.Streamable(mcptest.NewServer("replica-a", e.calls), e.calls, nil)
				b := mcptest.Streamable(mcptest.NewServer("replica-b", e.calls), e.calls, nil)
				return e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Header.Get(sessionHeader) != "" {
						b.ServeHTTP(w, r)
						return
					}
					a.ServeHTTP(w, r)
				})))
			},
			want:  &MCPResult{Transport: "streamable", Reason: MCPSessionLost, HTTPStatus: 404, Session: true},
			check: requests("GET", 0), // no SSE fallback
		},
		{
			name: "TRANSPORT_MISMATCH: transport sse at a Streamable HTTP server",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				mc := config.MCPConfig{Transport: config.TransportSSE}
				return e.serve(t, "/mcp", mc, handle("/mcp", mcptest.Streamable(mcptest.NewServer("modern", e.calls), e.calls, nil)))
			},
			want:  &MCPResult{Transport: "sse", Reason: MCPTransportMismatch, Session: true, DeleteStatus: http.StatusNoContent},
			check: detail("set mcp.transport to streamable or auto"),
		},
		{
			name: "2025-03-26-style auth: no RFC 9728 document, RFC 8414 metadata at the root: working but legacy",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, func(base string, mux *http.ServeMux) {
					protected(e, "", nil)(base, mux)
					mux.Handle(wellKnownAuthServer, authServerMeta(base))
				})
			},
			want:      &MCPResult{Transport: "streamable", Reason: MCPAuthRequired, HTTPStatus: 401, AuthLegacy: true},
			authValid: yes,
			check:     authDetail("working but pre-2025-06-18"),
		},
		{
			name: "a broken resource_metadata is broken, even with RFC 8414 metadata at the root",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, func(base string, mux *http.ServeMux) {
					protected(e, wellKnownResource+"/mcp", nil)(base, mux)
					mux.Handle(wellKnownAuthServer, authServerMeta(base))
				})
			},
			want: failed("streamable", MCPAuthRequired, 401), authValid: no,
		},
		{
			name: "PROTOCOL_ERROR: an endless event stream is cut at its size limit",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", flood("text/event-stream", "event: ping\ndata: {}\n\n")))
			},
			want:  failed("streamable", MCPProtocolError, 200),
			check: detail("past the limit"),
		},
		{
			name: "PROTOCOL_ERROR: a gigabyte JSON body is cut at its size limit",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", flood("application/json", "[[[[[[[[")))
			},
			want:  failed("streamable", MCPProtocolError, 200),
			check: detail("past the limit"),
		},
		{
			name: "PROTOCOL_ERROR: an SSE endpoint on another host is not contacted",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				mc := config.MCPConfig{Transport: config.TransportSSE}
				return e.serve(t, "/sse", mc, handle("/sse", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/event-stream")
					fmt.Fprint(w, "event: endpoint\ndata: https://elsewhere.example/messages\n\n")
					w.(http.Flusher).Flush()
					<-r.Context().Done()
				})))
			},
			want:  failed("sse", MCPProtocolError, 0),
			check: detail("elsewhere.example refused"),
		},
		{
			name: "TLS_FAILED: nothing is sent over an unverified connection",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				tc := config.TLSConfig{CAFile: otherCAFile(t)}
				ep := e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", mcptest.Streamable(mcptest.NewServer("x", e.calls), e.calls, nil)))
				ep.TLSConfig = tc
				return ep
			},
			want: &MCPResult{Reason: MCPTLSFailed},
			check: func(t *testing.T, e *mcpEnv, r *TLSResult) {
				if r.Reason != ReasonVerifyFailed || e.calls.HTTP("POST") != 0 {
					t.Errorf("TLS reason %s, POSTs %d: want CERTIFICATE_VERIFY_FAILED and none", r.Reason, e.calls.HTTP("POST"))
				}
			},
		},
		{
			name: "insecure_skip_verify: MCP is spoken over an unverified connection",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				ep := e.serve(t, "/mcp", config.MCPConfig{}, handle("/mcp", mcptest.Streamable(mcptest.NewServer("lab", e.calls), e.calls, nil)))
				ep.TLSConfig = config.TLSConfig{CAFile: otherCAFile(t), InsecureSkipVerify: true}
				return ep
			},
			want: up("streamable", "2025-11-25", "lab", true, http.StatusNoContent),
		},
		{
			name: "mTLS: the client certificate is offered on the MCP traffic too",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				base, mux := mcptest.ServeTLSConfig(t, &tls.Config{Certificates: []tls.Certificate{e.cert},
					ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: testpki.Pool(e.p.clientCA)})
				mux.Handle("/mcp", mcptest.Streamable(mcptest.NewServer("mtls", e.calls), e.calls, nil))
				tc := e.trust
				tc.CertFile, tc.KeyFile = e.p.clientCert, e.p.clientKey
				return urlEndpoint(base+"/mcp", tc, config.MCPConfig{})
			},
			want: up("streamable", "2025-11-25", "mtls", true, http.StatusNoContent),
		},
		{
			name: "further connections are verified and their certificates reported",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				second := e.p.inter.Issue(testpki.Options{CN: "second.localhost"})
				return certSwitch(t, 1, e.cert, second.TLS(e.p.inter), mcptest.Streamable(mcptest.NewServer("switch", e.calls), e.calls, nil), e.trust)
			},
			want: up("streamable", "2025-11-25", "switch", true, http.StatusNoContent),
			check: func(t *testing.T, _ *mcpEnv, r *TLSResult) {
				if r.MCP.Connections < 2 {
					t.Errorf("connections %d, want further ones", r.MCP.Connections)
				}
				var leaves []string
				for _, c := range r.Certificates {
					if c.Role == RoleLeaf {
						leaves = append(leaves, c.SubjectCN)
					}
				}
				if !slices.Equal(leaves, []string{"localhost", "second.localhost"}) {
					t.Errorf("leaves %v, want the first handshake's and the further one's", leaves)
				}
			},
		},
		{
			name: "TLS_FAILED: a further connection meets a certificate that does not verify",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				rogue := testpki.NewCA("Rogue CA").Leaf("rogue")
				return certSwitch(t, 1, e.cert, rogue.TLS(), mcptest.Streamable(mcptest.NewServer("switch", e.calls), e.calls, nil), e.trust)
			},
			want:  failed("streamable", MCPTLSFailed, 0),
			check: detail("did not verify: CERTIFICATE_VERIFY_FAILED"),
		},
		{
			name: "up, but the DELETE's connection does not verify: the session is not ended there",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				rogue := testpki.NewCA("Rogue CA").Leaf("rogue")
				// server/discover, initialize and notifications/initialized, then the DELETE
				return certSwitch(t, 3, e.cert, rogue.TLS(), mcptest.Streamable(mcptest.NewServer("switch", e.calls), e.calls, nil), e.trust)
			},
			want:  up("streamable", "2025-11-25", "switch", true, 0),
			check: detail("closing the session: "),
		},
		{
			name: "transport none: no MCP",
			endpoint: func(t *testing.T, e *mcpEnv) config.Endpoint {
				return e.serve(t, "/mcp", config.MCPConfig{Transport: config.TransportNone}, handle("/mcp", http.NotFoundHandler()))
			},
			check: requests("POST", 0),
		},
	}
	p := newPKI(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &mcpEnv{p: p, calls: &mcptest.Calls{}, cert: p.leaf.TLS(p.inter), trust: config.TLSConfig{CAFile: p.rootFile}}
			ep := tc.endpoint(t, e)
			target, err := NewTarget(ep)
			if err != nil {
				t.Fatal(err)
			}
			r := target.Probe(context.Background())
			tc.assert(t, e, r)
		})
	}
}

func (tc *mcpCase) assert(t *testing.T, e *mcpEnv, r *TLSResult) {
	t.Helper()
	if tc.want == nil {
		if r.MCP != nil {
			t.Fatalf("MCP result %+v, want none", r.MCP)
		}
	} else {
		if r.MCP == nil {
			t.Fatalf("no MCP result; TLS %s %s", r.Reason, r.Detail)
		}
		got := *r.MCP
		got.Duration, got.Detail, got.AuthDetail, got.Connections, got.AuthMetadataValid = 0, "", "", 0, nil
		if got != *tc.want {
			t.Errorf("MCP result\n got %+v\nwant %+v\ndetail: %s", got, *tc.want, r.MCP.Detail)
		}
		if (tc.authValid == nil) != (r.MCP.AuthMetadataValid == nil) ||
			(tc.authValid != nil && *tc.authValid != *r.MCP.AuthMetadataValid) {
			t.Errorf("auth metadata valid %v, want %v (%s)", ptrText(r.MCP.AuthMetadataValid), ptrText(tc.authValid), r.MCP.AuthDetail)
		}
		if strings.Contains(r.MCP.Detail+r.MCP.AuthDetail, testToken) {
			t.Error("the token appears in the result")
		}
	}
	if n := e.calls.SideEffects(); n != 0 {
		t.Errorf("%d tool calls or resource reads, want none", n)
	}
	for _, m := range e.calls.Methods() {
		if !slices.Contains([]string{"server/discover", "initialize", "notifications/initialized"}, m) {
			t.Errorf("the server received %s; a probe only handshakes", m)
		}
	}
	if tc.check != nil {
		tc.check(t, e, r)
	}
}

func ptrText(b *bool) string {
	if b == nil {
		return "absent"
	}
	return fmt.Sprint(*b)
}

func requests(method string, want int) func(*testing.T, *mcpEnv, *TLSResult) {
	return func(t *testing.T, e *mcpEnv, _ *TLSResult) {
		if n := e.calls.HTTP(method); n != want {
			t.Errorf("%s requests %d, want %d", method, n, want)
		}
	}
}

func detail(want string) func(*testing.T, *mcpEnv, *TLSResult) {
	return func(t *testing.T, _ *mcpEnv, r *TLSResult) {
		if !strings.Contains(r.MCP.Detail, want) {
			t.Errorf("detail %q lacks %q", r.MCP.Detail, want)
		}
	}
}

func authDetail(want string) func(*testing.T, *mcpEnv, *TLSResult) {
	return func(t *testing.T, _ *mcpEnv, r *TLSResult) {
		if !strings.Contains(r.MCP.AuthDetail, want) {
			t.Errorf("auth detail %q lacks %q", r.MCP.AuthDetail, want)
		}
	}
}

// The token is read at every probe: a rotated file is used at once.
func TestMCPBearerTokenRotation(t *testing.T) {
	p := newPKI(t)
	e := &mcpEnv{p: p, calls: &mcptest.Calls{}, cert: p.leaf.TLS(p.inter), trust: config.TLSConfig{CAFile: p.rootFile}}
	file := tokenFile(t, "old-token")
	ep := e.serve(t, "/mcp", config.MCPConfig{BearerTokenFile: file}, protected(e, wellKnownResource+"/mcp", goodMetadata))
	target, err := NewTarget(ep)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		token  string
		reason MCPReason
	}{{"old-token", MCPAuthRequired}, {testToken + "\n", MCPReasonNone}, {"revoked", MCPAuthRequired}} {
		if err := os.WriteFile(file, []byte(step.token), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := target.Probe(context.Background()); r.MCP.Reason != step.reason {
			t.Errorf("token %q: reason %q (%s), want %q", step.token, r.MCP.Reason, r.MCP.Detail, step.reason)
		}
	}
}

func TestNewTargetMCP(t *testing.T) {
	for _, tc := range []struct {
		ep   config.Endpoint
		want bool
	}{
		{config.Endpoint{Name: "a", Address: "127.0.0.1:443"}, false},
		{config.Endpoint{Name: "u", URL: "https://127.0.0.1/mcp"}, true},
		{config.Endpoint{Name: "n", URL: "https://127.0.0.1/mcp", MCP: config.MCPConfig{Transport: config.TransportNone}}, false},
	} {
		target, err := NewTarget(tc.ep)
		if err != nil {
			t.Fatal(err)
		}
		if got := target.mcp != nil; got != tc.want {
			t.Errorf("%s: speaks MCP %v, want %v", tc.ep.Name, got, tc.want)
		}
	}
}
