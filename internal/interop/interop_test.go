// Package interop runs the exporter's probe against MCP servers that no one
// here wrote, the TypeScript SDK's and mcp-go's, and checks its verdicts
// against the servers' own logs: the sessions they opened and saw closed,
// and the TLS connections they accepted.
package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// event is one line of a server's log.
type event struct {
	Kind   string `json:"kind"`
	Ev     string `json:"ev"`
	Port   int    `json:"port"`
	UA     string `json:"ua"`
	Method string `json:"method"`
	Ready  bool   `json:"ready"`
}

// serverLog collects the events a server process prints, by server kind.
type serverLog struct {
	mu     sync.Mutex
	counts map[string]map[string]int // kind -> event -> count
	agents map[string]bool           // User-Agents seen
	ports  map[string]int
	ready  chan struct{}
}

func newServerLog() *serverLog {
	return &serverLog{counts: map[string]map[string]int{}, agents: map[string]bool{}, ports: map[string]int{},
		ready: make(chan struct{})}
}

// read consumes the process's JSON lines until it ends.
func (l *serverLog) read(t *testing.T, r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Logf("server: %s", sc.Text())
			continue
		}
		l.mu.Lock()
		switch {
		case e.Ready:
			close(l.ready)
		case e.Ev == "listen":
			l.ports[e.Kind] = e.Port
		default:
			if l.counts[e.Kind] == nil {
				l.counts[e.Kind] = map[string]int{}
			}
			l.counts[e.Kind][e.Ev]++
			if e.Ev == "request" {
				l.agents[e.UA] = true
			}
		}
		l.mu.Unlock()
	}
}

func (l *serverLog) count(kind, ev string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[kind][ev]
}

func (l *serverLog) port(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ports[kind]
}

// startServers runs cmd, whose stdout is a server log, until the test ends.
func startServers(t *testing.T, cmd *exec.Cmd) *serverLog {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	l := newServerLog()
	done := make(chan struct{})
	go func() { l.read(t, out); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // the test is over; how the servers end does not matter
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server stderr:\n%s", stderr.String())
		}
	})
	select {
	case <-l.ready:
	case <-done:
		t.Fatalf("%s exited before it was ready:\n%s", cmd.Path, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready after 60s:\n%s", cmd.Path, stderr.String())
	}
	return l
}

// pki is one CA and a leaf for localhost and 127.0.0.1 in files.
type pki struct {
	caFile, certFile, keyFile string
}

func newPKI(t *testing.T) pki {
	dir := t.TempDir()
	ca := testpki.NewCA("Interop Root")
	leaf := ca.Leaf("localhost")
	return pki{
		caFile:   testpki.WriteFile(t, dir, "ca.pem", ca.PEM()),
		certFile: testpki.WriteFile(t, dir, "cert.pem", leaf.PEM()),
		keyFile:  testpki.WriteFile(t, dir, "key.pem", leaf.KeyPEM()),
	}
}

// interopCase is one probe of one server kind and what both sides must say.
type interopCase struct {
	name      string
	kind      string // the server, as its log names it
	path      string
	transport string
	token     bool
	timeout   time.Duration // 10s when zero

	up        bool
	reason    probe.MCPReason
	proto     string // negotiated version, when up
	got       string // the transport reported
	session   bool
	authValid string // "", "valid", "legacy" or "broken"
	opened    int    // sessions the server opened; all must be closed unless lost
	lost      bool   // the server lost its session: nothing to close
	tls       int    // TLS connections the server accepted for the probe
	tlsBefore int    // and before it, on a server that earlier cases used
	detail    string // a part of the detail, when set
}

func (tc *interopCase) probe(t *testing.T, p pki, port int, tokenFile string) *probe.MCPResult {
	t.Helper()
	timeout := tc.timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	mc := config.MCPConfig{Transport: tc.transport}
	if tc.token {
		mc.BearerTokenFile = tokenFile
	}
	ep := config.Endpoint{Name: tc.name, URL: "https://localhost:" + strconv.Itoa(port) + tc.path, Timeout: config.Duration(timeout),
		TLSConfig: config.TLSConfig{CAFile: p.caFile}, MCP: mc}
	target, err := probe.NewTarget(ep)
	if err != nil {
		t.Fatal(err)
	}
	r := target.Probe(context.Background())
	if !r.Success || r.MCP == nil {
		t.Fatalf("TLS %s %s; MCP %+v", r.Reason, r.Detail, r.MCP)
	}
	return r.MCP
}

// check compares the exporter's result and the server's log with the case.
func (tc *interopCase) check(t *testing.T, l *serverLog, m *probe.MCPResult) {
	t.Helper()
	if m.Up != tc.up || m.Reason != tc.reason || m.Transport != tc.got || m.Session != tc.session {
		t.Errorf("up %v reason %q transport %q session %v, want %v %q %q %v\ndetail: %s",
			m.Up, m.Reason, m.Transport, m.Session, tc.up, tc.reason, tc.got, tc.session, m.Detail)
	}
	if tc.proto != "" && m.ProtocolVersion != tc.proto {
		t.Errorf("protocol %q, want %q", m.ProtocolVersion, tc.proto)
	}
	if got := authVerdict(m); got != tc.authValid {
		t.Errorf("auth verdict %q, want %q (%s)", got, tc.authValid, m.AuthDetail)
	}
	if tc.detail != "" && !strings.Contains(m.Detail, tc.detail) {
		t.Errorf("detail %q lacks %q", m.Detail, tc.detail)
	}
	closed := tc.opened
	if tc.lost {
		closed = 0
	}
	// The server logs what it saw a moment after answering.
	settled := eventually(func() bool {
		return l.count(tc.kind, "open") == tc.opened && l.count(tc.kind, "delete") == closed && l.count(tc.kind, "tls") == tc.tls
	})
	if !settled {
		t.Errorf("server %s (totals): sessions opened %d, deleted %d, TLS connections %d; want %d, %d, %d",
			tc.kind, l.count(tc.kind, "open"), l.count(tc.kind, "delete"), l.count(tc.kind, "tls"), tc.opened, closed, tc.tls)
	}
	if n := l.count(tc.kind, "tls") - tc.tlsBefore; m.Connections != n {
		t.Errorf("the exporter counts %d TLS connections, the server accepted %d", m.Connections, n)
	}
	if n := l.count(tc.kind, "tool"); n != 0 {
		t.Errorf("%d tool calls, want none", n)
	}
	if t.Failed() {
		t.Logf("detail: %s", m.Detail)
	}
}

func authVerdict(m *probe.MCPResult) string {
	switch {
	case m.AuthMetadataValid == nil:
		return ""
	case !*m.AuthMetadataValid:
		return "broken"
	case m.AuthLegacy:
		return "legacy"
	}
	return "valid"
}

// eventually polls cond for up to 10 seconds; it reports, never fails.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
