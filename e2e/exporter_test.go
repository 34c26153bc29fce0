package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

var update = flag.Bool("update", false, "rewrite generated files: the status page screenshot, generated doc sections")

// built is the exporter binary, built with -race by the first test that
// runs it, so tests of run and of the docs need no build.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func exporterBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "mcp_cert_exporter-test"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "mcp_cert_exporter")
		out, err := exec.Command("go", "build", "-race", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatalf("building the exporter: %v", built.err)
	}
	return built.path
}

// TestMain runs the tests from the repository's root, where the binary is
// built and the shipped files (config.example.yml, alerts/, dashboards/)
// are, as their users run them.
func TestMain(m *testing.M) {
	if err := os.Chdir(".."); err != nil {
		panic(err)
	}
	// The race runtime sleeps a second before exiting, during which a child
	// that no longer waits for its goroutines would still look graceful.
	os.Setenv("GORACE", os.Getenv("GORACE")+" atexit_sleep_ms=0")
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// process is a child process, killed when the test ends; its output is
// logged if the test failed.
type process struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// syncBuffer holds a child's output, which the test reads while the child
// writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startProcess(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), logs: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s logs:\n%s", filepath.Base(name), p.logs.String())
		}
	})
	return p
}

// exited reports whether the process ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err // for cleanup
		return true, err
	default:
		return false, nil
	}
}

// listening is the line exporter-toolkit logs, in the exporter as in
// Prometheus and Alertmanager, with the address its listener got, in logfmt
// or JSON.
var listening = regexp.MustCompile(`"?msg"?[=:]"Listening on".*?"?address"?[=:]"?([^"\s,}]+)`)

// listenAddr waits for the process to log the address it listens on. The
// tests start servers on port 0: a port chosen beforehand could be taken by
// another process before the child binds it.
func (p *process) listenAddr(t *testing.T) string {
	t.Helper()
	var addr string
	eventually(t, filepath.Base(p.cmd.Path)+" listens", func() bool {
		if done, err := p.exited(); done {
			t.Fatalf("%s exited: %v", filepath.Base(p.cmd.Path), err)
		}
		m := listening.FindStringSubmatch(p.logs.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr
}

// exporter is the real binary running as a child process.
type exporter struct {
	*process
	t    *testing.T
	addr string
}

func startExporter(t *testing.T, args ...string) *exporter {
	t.Helper()
	e := launchExporter(t, args...)
	eventually(t, "exporter serves /-/healthy", func() bool {
		resp, err := http.Get("http://" + e.addr + "/-/healthy")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return e
}

// launchExporter starts the binary and waits until it listens, without
// asking it anything, for callers that reach it through TLS or
// authentication.
func launchExporter(t *testing.T, args ...string) *exporter {
	t.Helper()
	e := &exporter{t: t}
	e.process = startProcess(t, exporterBinary(t), append([]string{"--web.listen-address=127.0.0.1:0", "--log.level=debug"}, args...)...)
	e.addr = e.listenAddr(t)
	return e
}

// freeAddr is a port free when picked, for peers that must not answer.
func freeAddr(t *testing.T) string { return testpki.ClosedAddr(t) }

func (e *exporter) get(path string) (int, string) {
	e.t.Helper()
	resp, err := http.Get("http://" + e.addr + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (e *exporter) metrics() (string, metricstest.Families) {
	e.t.Helper()
	_, body := e.get("/metrics")
	return body, metricstest.Parse(e.t, body)
}

// eventually polls cond; it bounds the wait, it does not time anything.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servers starts a good and an expired TLS server with one CA.
type servers struct {
	caFile, good, expired string
}

func startServers(t *testing.T) servers {
	var s servers
	s.caFile, s.good, s.expired = testpki.GoodAndExpired(t)
	return s
}

func writeConfig(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func endpointsConfig(s servers, names ...string) string {
	addrs := map[string]string{"good": s.good, "expired": s.expired}
	var b strings.Builder
	b.WriteString("interval: 1h\nendpoints:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    address: %s\n    tls_config: {ca_file: %s, server_name: localhost}\n", n, addrs[n], s.caFile)
	}
	return b.String()
}

func TestExpiredServerReportsNegativeExpiryAndReason(t *testing.T) {
	s := startServers(t)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "c.yml"), endpointsConfig(s, "good", "expired"))
	e := startExporter(t, "--config.file="+cfg)
	var fams metricstest.Families
	eventually(t, "both endpoints probed", func() bool {
		_, fams = e.metrics()
		return len(fams.Samples("ssl_probe_success", nil)) == 2
	})
	leaf := map[string]string{"target": "expired", "role": "leaf"}
	if v := fams.One(t, "ssl_certificate_expiry_seconds", leaf); v > -23*3600 {
		t.Errorf("expired leaf expiry = %v, want about -86400", v)
	}
	fams.One(t, "ssl_probe_error_info", map[string]string{"target": "expired", "reason": "CERTIFICATE_EXPIRED"})
	if v := fams.One(t, "ssl_probe_success", map[string]string{"target": "expired"}); v != 1 {
		t.Errorf("handshake with the expired server should succeed, got %v", v)
	}
	if v := fams.One(t, "ssl_certificate_verified", map[string]string{"target": "good"}); v != 1 {
		t.Errorf("good server verified = %v", v)
	}
	fams.Absent(t, "ssl_probe_error_info", map[string]string{"target": "good"})
	roles := fams.LabelValues("ssl_certificate_expiry_seconds", "role", map[string]string{"target": "good"})
	if strings.Join(roles, ",") != "intermediate,leaf,root" {
		t.Errorf("roles for the good server = %v, want intermediate, leaf and root", roles)
	}
}

func TestStatusPageShowsReasonAndRemedy(t *testing.T) {
	s := startServers(t)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "c.yml"), endpointsConfig(s, "expired"))
	e := startExporter(t, "--config.file="+cfg)
	var st []struct {
		Name     string
		Pending  bool
		Problems []struct{ Reason, Remedy string }
	}
	eventually(t, "status has the probe result", func() bool {
		_, body := e.get("/status?format=json")
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("status JSON: %v", err)
		}
		return len(st) == 1 && !st[0].Pending
	})
	if len(st[0].Problems) != 1 || st[0].Problems[0].Reason != "CERTIFICATE_EXPIRED" || st[0].Problems[0].Remedy == "" {
		t.Fatalf("status = %+v", st)
	}
	code, html := e.get("/status")
	if code != 200 || !strings.Contains(html, "CERTIFICATE_EXPIRED") || !strings.Contains(html, "Renew it") {
		t.Fatalf("HTML status page lacks the reason or remedy: %d", code)
	}
	if code, page := e.get("/"); code != 200 || !strings.Contains(page, "/status") || strings.Contains(page, "debug/pprof") {
		t.Errorf("landing page: %d, links status: %v, pprof: %v", code, strings.Contains(page, "/status"), strings.Contains(page, "debug/pprof"))
	}
}

// runBinary runs the built binary, for tests that must see everything the
// process writes, whoever writes it.
func runBinary(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(exporterBinary(t), args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// The README's first command: the shipped example shows real certificates on
// a machine with no MCP server, and unreachable endpoints show why.
func TestExampleConfigShowsRealMetrics(t *testing.T) {
	e := startExporter(t, "--config.file=config.example.yml")
	var text string
	var f metricstest.Families
	eventually(t, "example endpoints and demo files refreshed", func() bool {
		text, f = e.metrics()
		return len(f.Samples("ssl_probe_error_info", nil)) == 2 &&
			len(f.Samples("ssl_certificate_expiry_seconds", map[string]string{"target": "demo-certs"})) == 4
	})
	f.One(t, "ssl_probe_error_info", map[string]string{"target": "internal-mcp", "reason": "DNS_FAILURE"})
	f.One(t, "ssl_probe_error_info", map[string]string{"target": "local-mcp", "reason": "CONNECTION_REFUSED"})
	if v := f.One(t, "ssl_certificate_expiry_seconds", map[string]string{"subject_cn": "old.demo.example"}); v >= 0 {
		t.Errorf("demo expired certificate expiry = %v, want negative", v)
	}
	tooltest.CheckMetrics(t, text)
}
