// Package mcptest serves real go-sdk MCP servers over TLS for tests, and
// counts what clients asked of them, so tests can show that a probe called
// no tool, read no resource and ended its session.
package mcptest

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// Calls counts what clients did to one server.
type Calls struct {
	mu      sync.Mutex
	methods []string       // MCP methods, in arrival order
	http    map[string]int // HTTP methods
	tools   int            // tool calls and resource reads
}

// Methods lists the MCP methods received, in order.
func (c *Calls) Methods() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.methods)
}

// HTTP counts the requests with this HTTP method.
func (c *Calls) HTTP(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.http[method]
}

// SideEffects counts tool calls and resource reads.
func (c *Calls) SideEffects() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tools
}

func (c *Calls) add(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// Count wraps h to count the HTTP methods it serves.
func (c *Calls) Count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.add(func() {
			if c.http == nil {
				c.http = map[string]int{}
			}
			c.http[r.Method]++
		})
		h.ServeHTTP(w, r)
	})
}

// NewServer is an SDK server named name, version 1.2.3, with a tool and a
// resource whose handlers count their calls. versions, when given, are the
// only protocol versions it speaks.
func NewServer(name string, c *Calls, versions ...string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1.2.3"}, &mcp.ServerOptions{SupportedProtocolVersions: versions})
	mcp.AddTool(s, &mcp.Tool{Name: "delete_everything", Description: "a probe must never call this"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			c.add(func() { c.tools++ })
			return &mcp.CallToolResult{}, nil, nil
		})
	s.AddResource(&mcp.Resource{URI: "file:///secret", Name: "secret"}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		c.add(func() { c.tools++ })
		return &mcp.ReadResourceResult{}, nil
	})
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			c.add(func() { c.methods = append(c.methods, method) })
			return next(ctx, method, req)
		}
	})
	return s
}

// Streamable serves s over Streamable HTTP, counting HTTP methods in c.
func Streamable(s *mcp.Server, c *Calls, opts *mcp.StreamableHTTPOptions) http.Handler {
	return c.Count(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, opts))
}

// SSE serves s over the legacy HTTP+SSE transport, counting HTTP methods in c.
func SSE(s *mcp.Server, c *Calls) http.Handler {
	return c.Count(mcp.NewSSEHandler(func(*http.Request) *mcp.Server { return s }, nil))
}

// Protect demands Authorization: Bearer token, answering 401 with a Bearer
// challenge that names metadataURL (none when empty).
func Protect(h http.Handler, token, metadataURL string) http.Handler {
	verify := func(_ context.Context, got string, _ *http.Request) (*auth.TokenInfo, error) {
		if got != token {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{Expiration: time.Now().Add(time.Hour)}, nil
	}
	opts := &auth.RequireBearerTokenOptions{ResourceMetadataURL: metadataURL}
	if metadataURL == "" {
		opts = nil
	}
	return auth.RequireBearerToken(verify, opts)(h)
}

// Metadata serves RFC 9728 protected-resource metadata for resource.
func Metadata(resource string, authServers ...string) http.Handler {
	return auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource: resource, AuthorizationServers: authServers,
	})
}

// ServeTLS serves a mux over TLS with cert on 127.0.0.1 until the test
// ends. It returns the base URL, https://127.0.0.1:port, and the mux, so
// that routes naming the URL can be added once it is known.
func ServeTLS(t testing.TB, cert tls.Certificate) (string, *http.ServeMux) {
	t.Helper()
	return ServeTLSConfig(t, &tls.Config{Certificates: []tls.Certificate{cert}})
}

// ServeTLSConfig is ServeTLS with a TLS config of the test's own.
func ServeTLSConfig(t testing.TB, cfg *tls.Config) (string, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = cfg
	// Probes that give up on a handshake are expected; their log lines are noise.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, mux
}
