package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// The listeners run in a child process, the harness binary started again
// with these variables set, so that their CPU is not counted as the
// exporter's.
const (
	childDirEnv   = "LOADTEST_LISTENERS_DIR"
	childCountEnv = "LOADTEST_LISTENERS"
)

// pki is the chain every listener serves: an ECDSA P-256 root and a leaf
// for localhost and 127.0.0.1 that it signed.
type pki struct {
	dir    string
	caFile string
	roots  *x509.CertPool
}

func newPKI(dir string) (*pki, error) {
	ca := testpki.NewCA("Loadtest Root")
	leaf := ca.Leaf("localhost")
	files := map[string][]byte{"ca.pem": ca.PEM(), "leaf.pem": leaf.PEM(), "leaf.key": leaf.KeyPEM()}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return &pki{dir: dir, caFile: filepath.Join(dir, "ca.pem"), roots: testpki.Pool(ca)}, nil
}

// listeners is the child process serving them.
type listeners struct {
	cmd   *exec.Cmd
	stdin io.Closer
	addrs []string
}

// startListeners starts the child and reads the addresses it listens on.
func startListeners(p *pki, n int) (*listeners, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the harness binary: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childDirEnv+"="+p.dir, childCountEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the listeners: %w", err)
	}
	l := &listeners{cmd: cmd, stdin: stdin}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		l.addrs = append(l.addrs, sc.Text())
	}
	if len(l.addrs) != n {
		l.stop()
		return nil, fmt.Errorf("the listeners process opened %d of %d listeners: %v", len(l.addrs), n, sc.Err())
	}
	return l, nil
}

func (l *listeners) pid() int { return l.cmd.Process.Pid }

// stop closes the child's stdin, which ends it, and waits.
func (l *listeners) stop() {
	_ = l.stdin.Close() // the child exits on EOF or on the broken pipe alike
	_ = l.cmd.Wait()    // its exit status says nothing about the measurements
}

func isChild() bool { return os.Getenv(childDirEnv) != "" }

// childMain runs the listeners and exits.
func childMain() {
	if err := serveListeners(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest listeners:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serveListeners is the child: n TLS 1.3 listeners on 127.0.0.1 in one
// process, each printed as host:port, until stdin closes.
func serveListeners() error {
	dir := os.Getenv(childDirEnv)
	n, err := strconv.Atoi(os.Getenv(childCountEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", childCountEnv, err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf.key"))
	if err != nil {
		return fmt.Errorf("loading the listeners' certificate: %w", err)
	}
	if _, err := raiseFDLimit(uint64(n) + 4096); err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	out := bufio.NewWriter(os.Stdout)
	for range n {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			return fmt.Errorf("listening: %w", err)
		}
		go accept(ln)
		fmt.Fprintln(out, ln.Addr())
	}
	fmt.Fprintln(out, "ready")
	if err := out.Flush(); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // returns when the harness goes away
	if n := acceptErrors.Load(); n > 0 {
		return fmt.Errorf("%d accept errors, the last: %v", n, lastAcceptError.Load())
	}
	return nil
}

var (
	acceptErrors    atomic.Int64
	lastAcceptError atomic.Value
)

func accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// EMFILE and the like pass, and are reported at the end.
			acceptErrors.Add(1)
			lastAcceptError.Store(err.Error())
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serve(c)
	}
}

// serve completes the handshake and waits for the client to hang up.
func serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.(*tls.Conn).Handshake(); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, c)
}
