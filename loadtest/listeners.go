package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// The listeners run in a child process, the harness binary started again
// with these variables set, so that their CPU is not counted as the
// exporter's.
const (
	childDirEnv        = "LOADTEST_LISTENERS_DIR"
	childCountEnv      = "LOADTEST_LISTENERS"
	childPerAddressEnv = "LOADTEST_PER_ADDRESS"
	childTLS12Env      = "LOADTEST_TLS12" // also TLS 1.2 with Go's default suites, for posture scans
)

// pki is the chain every listener serves: an ECDSA P-256 root and a leaf
// for localhost that it signed, verified by that name.
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
	stdin io.WriteCloser
	out   *bufio.Scanner
	addrs []string
}

// startListeners starts the child and reads the addresses it listens on.
func startListeners(p *pki, n, perAddress int, extraEnv ...string) (*listeners, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the harness binary: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childDirEnv+"="+p.dir, childCountEnv+"="+strconv.Itoa(n),
		childPerAddressEnv+"="+strconv.Itoa(perAddress))
	cmd.Env = append(cmd.Env, extraEnv...)
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
	sc := bufio.NewScanner(stdout)
	l := &listeners{cmd: cmd, stdin: stdin, out: sc}
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

// connCounts is what the listeners saw: connections accepted, handshakes
// completed and handshakes that failed (a refused version or suite).
type connCounts struct{ conns, ok, failed int64 }

func (c connCounts) sub(o connCounts) connCounts {
	return connCounts{c.conns - o.conns, c.ok - o.ok, c.failed - o.failed}
}

// counts asks the child for its counters: a line on its stdin, one back.
func (l *listeners) counts() (connCounts, error) {
	var c connCounts
	if _, err := io.WriteString(l.stdin, "count\n"); err != nil {
		return c, fmt.Errorf("asking the listeners for counts: %w", err)
	}
	if !l.out.Scan() {
		return c, fmt.Errorf("the listeners did not answer: %v", l.out.Err())
	}
	if _, err := fmt.Sscan(l.out.Text(), &c.conns, &c.ok, &c.failed); err != nil {
		return c, fmt.Errorf("listener counts %q: %w", l.out.Text(), err)
	}
	return c, nil
}

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

// serveListeners is the child: n TLS 1.3 listeners in one process, each
// printed as host:port, until stdin closes.
func serveListeners() error {
	dir := os.Getenv(childDirEnv)
	n, err := strconv.Atoi(os.Getenv(childCountEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", childCountEnv, err)
	}
	perAddress, err := strconv.Atoi(os.Getenv(childPerAddressEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", childPerAddressEnv, err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf.key"))
	if err != nil {
		return fmt.Errorf("loading the listeners' certificate: %w", err)
	}
	if _, err := raiseFDLimit(uint64(n) + 4096); err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if os.Getenv(childTLS12Env) != "" {
		cfg.MinVersion = tls.VersionTLS12
	}
	out := bufio.NewWriter(os.Stdout)
	err = listenAll(n, perAddress, func(addr netip.AddrPort) error {
		ln, err := tls.Listen("tcp", addr.String(), cfg)
		if err != nil {
			return err
		}
		go accept(ln)
		fmt.Fprintln(out, ln.Addr())
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "ready")
	if err := out.Flush(); err != nil {
		return err
	}
	answerCounts(os.Stdin, os.Stdout) // returns when the harness goes away
	if n := acceptErrors.Load(); n > 0 {
		return fmt.Errorf("%d accept errors, the last: %v", n, lastAcceptError.Load())
	}
	return nil
}

// listenAll calls listen for n addresses: perAddress on each loopback
// address from 127.0.0.2 on (Linux routes all of 127.0.0.0/8 to lo), on
// ports outside the kernel's ephemeral range, so that a port taken by a
// listener is never one the clients' connections need. A port already in
// use is skipped. One address has about 36,000 such ports.
func listenAll(n, perAddress int, listen func(netip.AddrPort) error) error {
	ports, err := fixedPorts()
	if err != nil {
		return err
	}
	perAddress = min(max(perAddress, 1), len(ports))
	addr, onAddr, next := netip.AddrFrom4([4]byte{127, 0, 0, 2}), 0, 0
	for opened := 0; opened < n; {
		if onAddr == perAddress || next == len(ports) {
			addr, onAddr, next = addr.Next(), 0, 0
			if addr.As4()[0] != 127 || addr.As4()[3] == 255 {
				return fmt.Errorf("ran out of loopback addresses after %d listeners", opened)
			}
		}
		err := listen(netip.AddrPortFrom(addr, ports[next]))
		next++
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			return fmt.Errorf("listening: %w", err)
		}
		opened++
		onAddr++
	}
	return nil
}

// fixedPorts are the ports from 1024 up outside ip_local_port_range.
func fixedPorts() ([]uint16, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return nil, fmt.Errorf("reading the ephemeral port range: %w", err)
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return nil, fmt.Errorf("parsing ip_local_port_range %q: %w", b, err)
	}
	var ports []uint16
	for p := 1024; p <= 65535; p++ {
		if p < lo || p > hi {
			ports = append(ports, uint16(p))
		}
	}
	return ports, nil
}

var (
	acceptErrors    atomic.Int64
	lastAcceptError atomic.Value
	accepted        atomic.Int64
	handshakes      atomic.Int64
	failed          atomic.Int64
)

// answerCounts writes the counters for each line read, until EOF.
func answerCounts(in io.Reader, out io.Writer) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fmt.Fprintln(out, accepted.Load(), handshakes.Load(), failed.Load())
	}
}

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
		accepted.Add(1)
		go serve(c)
	}
}

// serve completes the handshake and waits for the client to hang up.
func serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.(*tls.Conn).Handshake(); err != nil {
		failed.Add(1)
		return
	}
	handshakes.Add(1)
	_, _ = io.Copy(io.Discard, c)
}
