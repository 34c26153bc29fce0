// Command mcpgo serves mark3labs/mcp-go MCP servers over TLS on 127.0.0.1,
// one port per kind, for the exporter's interop test. It is its own module,
// so mcp-go stays out of the exporter's go.mod. Usage:
//
//	mcpgo CERT_FILE KEY_FILE
//
// It prints {"kind","ev":"listen","port"} per server, then {"ready":true},
// then one JSON line per event: "tls" per TLS handshake, "open" and "delete"
// per session mcp-go registers and unregisters, "request" per HTTP request.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"log"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

var (
	outMu sync.Mutex
	enc   = json.NewEncoder(os.Stdout)
)

func emit(v map[string]any) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = enc.Encode(v) // stdout is the test's pipe; nothing to do if it is gone
}

func newServer(kind string) *server.MCPServer {
	hooks := &server.Hooks{}
	hooks.AddOnRegisterSession(func(_ context.Context, s server.ClientSession) {
		emit(map[string]any{"kind": kind, "ev": "open", "id": s.SessionID()})
	})
	hooks.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		emit(map[string]any{"kind": kind, "ev": "delete", "id": s.SessionID()})
	})
	s := server.NewMCPServer("mcpgo-"+kind, "9.9.9", server.WithHooks(hooks))
	s.AddTool(mcp.NewTool("delete_everything"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		emit(map[string]any{"kind": kind, "ev": "tool"})
		return &mcp.CallToolResult{}, nil
	})
	return s
}

func main() {
	cert, err := tls.LoadX509KeyPair(os.Args[1], os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	kinds := map[string]http.Handler{
		"stateful":  server.NewStreamableHTTPServer(newServer("stateful")),
		"stateless": server.NewStreamableHTTPServer(newServer("stateless"), server.WithStateLess(true)),
		"sse":       server.NewSSEServer(newServer("sse")),
	}
	for kind, h := range kinds {
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			emit(map[string]any{"kind": kind, "ev": "tls"})
			return nil, nil
		}}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			emit(map[string]any{"kind": kind, "ev": "request", "method": r.Method, "ua": r.UserAgent()})
			h.ServeHTTP(w, r)
		})
		srv := &http.Server{Handler: logged, TLSConfig: cfg, ErrorLog: log.New(os.Stderr, kind+": ", 0)}
		go func() { log.Fatal(srv.ServeTLS(ln, "", "")) }()
		emit(map[string]any{"kind": kind, "ev": "listen", "port": ln.Addr().(*net.TCPAddr).Port})
	}
	emit(map[string]any{"ready": true})
	select {}
}
