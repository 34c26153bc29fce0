package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
		return accepted.Load() == 1 && len(f.Samples("ssl_certificate_info", map[string]string{"target": "bulky"})) == files
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
