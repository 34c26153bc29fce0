package probe

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/mcptest"
)

// Probes against good and hostile MCP servers leave no goroutine behind:
// every connection the exchange opened is closed when the probe returns.
func TestMCPProbesLeakNothing(t *testing.T) {
	p := newPKI(t)
	e := &mcpEnv{p: p, calls: &mcptest.Calls{}, cert: p.leaf.TLS(p.inter), trust: config.TLSConfig{CAFile: p.rootFile}}
	gone := make(chan struct{}, 100)
	ep := e.serve(t, "/mcp", config.MCPConfig{}, func(base string, mux *http.ServeMux) {
		mux.Handle("/mcp", mcptest.Streamable(mcptest.NewServer("stateful", e.calls), e.calls, nil))
		mux.Handle("/json", mcptest.Streamable(mcptest.NewServer("json", e.calls), e.calls, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true}))
		mux.Handle("/sse", mcptest.SSE(mcptest.NewServer("sse", e.calls), e.calls))
		mux.Handle("/stall", stall(gone))
		mux.Handle("/flood", flood("text/event-stream", "event: ping\ndata: {}\n\n"))
	})
	var targets []*Target
	// Good servers get a deadline far beyond the wait below, so that only
	// closing their connections ends them in time.
	for path, timeout := range map[string]time.Duration{"/mcp": time.Minute, "/json": time.Minute, "/sse": time.Minute,
		"/stall": 300 * time.Millisecond, "/flood": 300 * time.Millisecond} {
		ep := ep
		ep.URL = ep.URL[:len(ep.URL)-len("/mcp")] + path
		ep.Timeout = config.Duration(timeout)
		target, err := NewTarget(ep)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, target)
	}
	probeAll := func() {
		for _, target := range targets {
			target.Probe(context.Background())
		}
	}
	probeAll() // warm up: lazily started runtime and server goroutines
	settle(t, 0)
	base := runtime.NumGoroutine()
	for range 10 {
		probeAll()
	}
	settle(t, base)
}

// settle waits, up to a bound, for the goroutine count to fall to want plus
// a small margin; want 0 just lets things settle.
func settle(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if want == 0 {
			time.Sleep(200 * time.Millisecond)
			return
		}
		if n <= want+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after the probes, %d before:\n%s", n, want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
