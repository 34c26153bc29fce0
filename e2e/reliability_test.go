package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// A SIGTERM arrives while a probe waits on a silent server with a 60s
// timeout and a slow client is halfway through a scrape too large for the
// socket buffers. The scrape is still answered in full, the probe is
// cancelled, and the exporter exits 0 long before the probe's timeout.
func TestSIGTERMFinishesScrapeAndCancelsProbe(t *testing.T) {
	var accepted atomic.Int64
	silent := testpki.ServeRaw(t, func(c net.Conn) {
		accepted.Add(1)
		_, _ = io.Copy(io.Discard, c)
	})
	dir, files := bulkyCertFiles(t)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "c.yml"), "endpoints:\n  - {name: silent, address: \""+silent+
		"\", timeout: 60s}\nfiles:\n  - {name: bulky, paths: [\""+dir+"/*.pem\"]}\n")
	e := startExporter(t, "--config.file="+cfg)
	eventually(t, "a probe is in flight to the silent server and the files are read", func() bool {
		_, f := e.metrics()
		return accepted.Load() >= 1 && len(f.Samples("ssl_certificate_info", map[string]string{"target": "bulky"})) == files
	})

	resp := slowScrape(t, e.addr)
	defer resp.Body.Close()
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the exporter starts shutting down", func() bool { return strings.Contains(e.logs.String(), "shutting down") })
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the in-flight scrape was cut after %d bytes: %v", len(body), err)
	}
	f := metricstest.Parse(t, string(body))
	if n := len(f.Samples("ssl_certificate_info", map[string]string{"target": "bulky"})); n != files {
		t.Fatalf("the in-flight scrape holds %d certificates of %d", n, files)
	}
	waitExit(t, e, 15*time.Second)
}

// bulkyCertFiles writes one certificate with many long SANs to many files,
// so that /metrics is several megabytes: more than the kernel buffers
// between the exporter and a client that does not read.
func bulkyCertFiles(t *testing.T) (dir string, n int) {
	label := strings.Repeat("x", 60)
	var sans []string
	for i := range 200 {
		sans = append(sans, fmt.Sprintf("san%03d.%s.%s.%s.example", i, label, label, label))
	}
	cert := testpki.NewCA("Bulky Root").Issue(testpki.Options{CN: "bulky", DNSNames: sans})
	dir = t.TempDir()
	const files = 150
	for i := range files {
		testpki.WriteFile(t, dir, fmt.Sprintf("%03d.pem", i), cert.PEM())
	}
	return dir, files
}

// slowScrape asks for /metrics from a socket with a small receive buffer and
// reads only the response header, so that the handler is still writing.
func slowScrape(t *testing.T, addr string) *http.Response {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }); cerr != nil {
			return cerr
		}
		return err
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: exporter\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	return resp
}

// waitExit bounds the wait for the exporter to exit and wants exit code 0.
func waitExit(t *testing.T, e *exporter, bound time.Duration) {
	t.Helper()
	select {
	case err := <-e.done:
		e.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(bound):
		t.Fatalf("still running %s after SIGTERM", bound)
	}
}

// copyConfigFixtures copies the files of config/testdata that the bad
// configs name (ca.pem, client.key, empty_token …) under dir/testdata, and
// returns dir/testdata/bad, where a config must live for the bad configs'
// relative paths to mean what they mean in the config tests.
func copyConfigFixtures(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir("config/testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join("config/testdata", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		testpki.WriteFile(t, filepath.Join(dir, "testdata"), e.Name(), data)
	}
	bad := filepath.Join(dir, "testdata", "bad")
	if err := os.Mkdir(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	return bad
}

// logRecord is one line of the exporter's JSON log.
type logRecord struct {
	Level, Msg, File, Err string
}

// logged returns the records with this message so far.
func (e *exporter) logged(msg string) []logRecord {
	var out []logRecord
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var r logRecord
		if json.Unmarshal([]byte(line), &r) == nil && r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}

func (e *exporter) reload() (int, string) {
	e.t.Helper()
	resp, err := http.Post("http://"+e.addr+"/-/reload", "", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

const reloadFailed = "config reload failed; the previous config keeps running"

// Every file of config/testdata/bad is applied as a reload to one running
// exporter. Each reload is refused with the message config.LoadFile gives
// for that file (config's TestLoadFileBad holds those messages to the exact
// file, line and field), in the answer and in the log; the metric says the
// reload failed; and the old config keeps refreshing its target. A valid
// config then reloads cleanly.
func TestBadConfigReloadsKeepTheOldConfig(t *testing.T) {
	s := startServers(t)
	badFiles, err := filepath.Glob("config/testdata/bad/*.yml")
	if err != nil || len(badFiles) < 25 {
		t.Fatalf("%d bad configs (%v), want at least 25", len(badFiles), err)
	}
	live := filepath.Join(copyConfigFixtures(t, t.TempDir()), "live.yml")
	writeConfig(t, live, strings.Replace(endpointsConfig(s, "good"), "interval: 1h", "interval: 100ms", 1))
	e := startExporter(t, "--config.file="+live, "--log.format=json")
	good := map[string]string{"target": "good"}
	var firstRun float64
	eventually(t, "the good config probes its target", func() bool {
		_, f := e.metrics()
		if s := f.Samples("ssl_probe_last_run_timestamp_seconds", good); len(s) == 1 {
			firstRun = s[0].Value
		}
		return firstRun > 0
	})
	where := regexp.MustCompile(`^` + regexp.QuoteMeta(live) + `:[1-9][0-9]*: \S`)

	for i, bad := range badFiles {
		t.Run(filepath.Base(bad), func(t *testing.T) {
			data, err := os.ReadFile(bad)
			if err != nil {
				t.Fatal(err)
			}
			writeConfig(t, live, string(data))
			_, want := config.LoadFile(live)
			if want == nil || !where.MatchString(want.Error()) {
				t.Fatalf("config.LoadFile: %v; want an error that starts with the file and line", want)
			}
			code, body := e.reload()
			if code != http.StatusInternalServerError || !strings.Contains(body, want.Error()) {
				t.Errorf("reload answered %d %q, want 500 with %q", code, body, want)
			}
			var failures []logRecord
			eventually(t, "the failed reload is logged", func() bool {
				failures = e.logged(reloadFailed)
				return len(failures) > i
			})
			if last := failures[len(failures)-1]; len(failures) != i+1 || last.Level != "ERROR" || last.File != live || last.Err != want.Error() {
				t.Errorf("%d failed reloads logged, the last %+v; want %d, the last with err %q", len(failures), last, i+1, want)
			}
			_, f := e.metrics()
			if v := f.One(t, "mcp_cert_exporter_config_last_reload_successful", nil); v != 0 {
				t.Errorf("last_reload_successful = %v", v)
			}
			if v := f.One(t, "mcp_cert_exporter_targets", map[string]string{"kind": "endpoint"}); v != 1 {
				t.Errorf("%v endpoints in force, want the old config's 1", v)
			}
			f.One(t, "ssl_probe_success", good)
		})
	}
	eventually(t, "the old config keeps refreshing", func() bool {
		_, f := e.metrics()
		return f.One(t, "ssl_probe_last_run_timestamp_seconds", good) > firstRun
	})

	writeConfig(t, live, endpointsConfig(s, "good", "expired"))
	if code, body := e.reload(); code != 200 {
		t.Fatalf("valid config: reload answered %d %q", code, body)
	}
	eventually(t, "the valid config is in force", func() bool {
		_, f := e.metrics()
		return f.One(t, "mcp_cert_exporter_config_last_reload_successful", nil) == 1 &&
			len(f.Samples("ssl_probe_success", map[string]string{"target": "expired"})) == 1
	})

	// SIGHUP reloads as POST /-/reload does; GET does not reload.
	writeConfig(t, live, endpointsConfig(s, "expired"))
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SIGHUP drops good", func() bool {
		_, f := e.metrics()
		return len(f.Samples("ssl_probe_success", good)) == 0 &&
			len(f.Samples("ssl_probe_success", map[string]string{"target": "expired"})) == 1
	})
	if code, _ := e.get("/-/reload"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload = %d, want 405", code)
	}
}

// fileState is what the exporter reports for one file group: the subject
// CNs of its certificates, or the reasons its files failed.
func fileState(f metricstest.Families, target string) string {
	sel := map[string]string{"target": target}
	if reasons := f.LabelValues("ssl_file_error_info", "reason", sel); len(reasons) > 0 {
		return strings.Join(reasons, ",")
	}
	return strings.Join(f.LabelValues("ssl_certificate_expiry_seconds", "subject_cn", sel), ",")
}

// Certificate files change under a running exporter: replaced by rename,
// truncated, rewritten, removed, recreated, swapped through a symlink. The
// first refresh that starts after each change reports the new state, never
// the old one; then a symlink swapped back and forth while the exporter
// reads always shows one whole version.
func TestFileChangesShowOnTheNextRefresh(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA("Files Root")
	pemOf := func(cn string) []byte { return ca.Issue(testpki.Options{CN: cn}).PEM() }
	plain := filepath.Join(dir, "live", "tls.crt")
	link := filepath.Join(dir, "link.crt")
	testpki.WriteFile(t, dir, "live/tls.crt", pemOf("v1"))
	a := testpki.WriteFile(t, dir, "a/tls.crt", pemOf("a"))
	b := testpki.WriteFile(t, dir, "b/tls.crt", pemOf("b"))
	swapLink(t, link, a)
	cfg := writeConfig(t, filepath.Join(dir, "c.yml"), "interval: 10ms\nfiles:\n"+
		"  - {name: plain, paths: [\""+plain+"\"]}\n  - {name: linked, paths: [\""+link+"\"]}\n")
	e := startExporter(t, "--config.file="+cfg)

	steps := []struct {
		name, target string
		change       func()
		want         string
	}{
		{"first read", "plain", func() {}, "v1"},
		{"replaced by rename", "plain", func() {
			tmp := testpki.WriteFile(t, dir, "live/.tls.crt.new", pemOf("v2"))
			if err := os.Rename(tmp, plain); err != nil {
				t.Fatal(err)
			}
		}, "v2"},
		{"truncated", "plain", func() {
			if err := os.Truncate(plain, 0); err != nil {
				t.Fatal(err)
			}
		}, "NO_CERTIFICATE"},
		{"rewritten in place", "plain", func() { writeConfig(t, plain, string(pemOf("v3"))) }, "v3"},
		{"removed", "plain", func() {
			if err := os.Remove(plain); err != nil {
				t.Fatal(err)
			}
		}, "NO_MATCH"},
		{"recreated", "plain", func() { writeConfig(t, plain, string(pemOf("v4"))) }, "v4"},
		{"first read through a symlink", "linked", func() {}, "a"},
		{"symlink swapped", "linked", func() { swapLink(t, link, b) }, "b"},
		{"symlink left dangling", "linked", func() { swapLink(t, link, filepath.Join(dir, "gone.crt")) }, "UNREADABLE"},
		{"symlink swapped back", "linked", func() { swapLink(t, link, a) }, "a"},
	}
	for _, step := range steps {
		step.change()
		changed := float64(time.Now().UnixNano())/1e9 + 0.001
		var f metricstest.Families
		eventually(t, step.name+": a refresh after the change", func() bool {
			_, f = e.metrics()
			s := f.Samples("ssl_probe_last_run_timestamp_seconds", map[string]string{"target": step.target})
			return len(s) == 1 && s[0].Value > changed
		})
		if got := fileState(f, step.target); got != step.want {
			t.Errorf("%s: %s reports %q, want %q", step.name, step.target, got, step.want)
		}
	}

	done := make(chan struct{})
	go func() { // t.Fatal belongs to the test's goroutine: report with t.Error
		defer close(done)
		for i := range 200 {
			if err := pointLink(link, []string{b, a}[i%2]); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for scrapes := 0; ; scrapes++ {
		select {
		case <-done:
			if code, _ := e.get("/-/healthy"); code != 200 || scrapes == 0 {
				t.Fatalf("after the swaps: healthy %d after %d scrapes", code, scrapes)
			}
			return
		default:
		}
		_, f := e.metrics()
		if got := fileState(f, "linked"); got != "a" && got != "b" {
			t.Fatalf("scrape %d while the symlink swaps: %q, want a or b", scrapes, got)
		}
	}
}

func swapLink(t *testing.T, link, target string) {
	t.Helper()
	if err := pointLink(link, target); err != nil {
		t.Fatal(err)
	}
}

// pointLink points link at target atomically, as deployment tools do.
func pointLink(link, target string) error {
	tmp := link + ".new"
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// The exporter dials only what its config names: /probe refuses targets
// outside a module's allowed_targets (here a module that allows nothing) and
// requests without a known module, and a listener named in requests of
// every shape gets no connection, while the configured targets are probed
// again and again.
func TestNoStrayDials(t *testing.T) {
	var stray atomic.Int64
	canary := testpki.ServeRaw(t, func(net.Conn) { stray.Add(1) })
	s := startServers(t)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "c.yml"),
		strings.Replace(endpointsConfig(s, "good", "expired"), "interval: 1h", "interval: 50ms\nmodules: {tls: {}}", 1))
	e := startExporter(t, "--config.file="+cfg)

	for path, want := range map[string]int{
		"/probe?target=" + canary:                             http.StatusBadRequest,
		"/probe?module=tls&target=" + canary:                  http.StatusForbidden,
		"/probe?module=tls&target=https://" + canary + "/mcp": http.StatusBadRequest,
		"/probe?module=tls&debug=true&target=" + canary:       http.StatusForbidden,
		"/probe?module=other&target=" + canary:                http.StatusBadRequest,
		"/probe":                                              http.StatusBadRequest,
	} {
		if code, _ := e.get(path); code != want {
			t.Errorf("GET %s = %d, want %d", path, code, want)
		}
		resp, err := http.Post("http://"+e.addr+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("POST %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	for _, path := range []string{"/metrics?target=" + canary, "/status?target=" + canary, "/?target=" + canary} {
		if code, _ := e.get(path); code != 200 {
			t.Errorf("GET %s = %d", path, code)
		}
	}
	// An absolute URL naming the canary, as sent to a forward proxy.
	proxied, err := http.NewRequest("GET", "http://"+canary+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &http.Client{Transport: &http.Transport{Proxy: func(*http.Request) (*url.URL, error) {
		return &url.URL{Scheme: "http", Host: e.addr}, nil
	}}}
	resp, err := proxy.Do(proxied)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a proxy-style request for the canary = %d, want the exporter's own metrics", resp.StatusCode)
	}

	eventually(t, "the configured targets are probed repeatedly", func() bool {
		_, f := e.metrics()
		return f.One(t, "mcp_cert_exporter_refreshes_total", map[string]string{"kind": "endpoint", "result": "success"}) >= 10 &&
			f.One(t, "mcp_cert_exporter_refreshes_total", map[string]string{"kind": "endpoint", "result": "failure"}) >= 10
	})
	if n := stray.Load(); n != 0 {
		t.Fatalf("the exporter dialled an address it was not configured with %d times", n)
	}
}
