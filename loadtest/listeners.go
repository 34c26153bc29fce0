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
	childFirstEnv      = "LOADTEST_FIRST" // the child's first listener, counted over all children
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

// bench is what every mode starts from: the open-file limit raised for
// the clients' connections, a directory with the PKI, and the listeners.
type bench struct {
	p     *pki
	l     *listeners
	limit uint64        // this process's open-file limit
	up    time.Duration // how long the listeners took to start
}

// startBench sets up o.n listeners; close removes them and the directory.
func startBench(o options, extraEnv ...string) (*bench, error) {
	limit, err := raiseFDLimit(uint64(o.concurrency)*4 + 4096)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "loadtest")
	if err != nil {
		return nil, err
	}
	b := &bench{limit: limit}
	if b.p, err = newPKI(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	start := time.Now()
	if b.l, err = startListeners(b.p, o.n, o.perAddress, o.perProcess, extraEnv...); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b.up = time.Since(start)
	return b, nil
}

func (b *bench) close() {
	b.l.stop()
	os.RemoveAll(b.p.dir)
}

// describe names where the listeners are and what they took.
func (b *bench) describe() string {
	return fmt.Sprintf("on %s in %d processes, up in %s; open-file limit %d", b.l.span(), len(b.l.children),
		b.up.Round(time.Millisecond), b.limit)
}

// listeners are the child processes serving them.
type listeners struct {
	children []*child
	addrs    []string
}

// child is one child process (this binary started again) and its pipes:
// a line on its stdin asks, a line on its stdout answers, and the end of
// its stdin ends it.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

// startListeners starts the children, one after the other, each serving at
// most perProcess listeners of the n (fewer if the open-file hard limit is
// lower: it may not be raised, 20,000 here even for root), and reads the
// addresses they listen on.
func startListeners(p *pki, n, perAddress, perProcess int, extraEnv ...string) (*listeners, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the harness binary: %w", err)
	}
	l := &listeners{}
	per, err := perChild(perProcess)
	if err != nil {
		return nil, err
	}
	for first := 0; first < n; first += per {
		count := min(per, n-first)
		env := append(os.Environ(), childDirEnv+"="+p.dir, childCountEnv+"="+strconv.Itoa(count),
			childFirstEnv+"="+strconv.Itoa(first), childPerAddressEnv+"="+strconv.Itoa(perAddress))
		addrs, err := l.startChild(self, append(env, extraEnv...))
		if err == nil && len(addrs) != count {
			err = fmt.Errorf("a listeners process opened %d of its %d listeners", len(addrs), count)
		}
		if err != nil {
			l.stop()
			return nil, err
		}
		l.addrs = append(l.addrs, addrs...)
	}
	return l, nil
}

// perChild is want, or less if the open-file hard limit is lower: every
// listener is a descriptor.
func perChild(want int) (int, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Max < 2048 {
		return 0, fmt.Errorf("open-file hard limit %d: too low for the listeners", lim.Max)
	}
	return int(min(uint64(max(want, 1)), lim.Max-1024)), nil
}

// startChildProcess starts this binary again with env.
func startChildProcess(self string, env []string) (*child, error) {
	cmd := exec.Command(self)
	cmd.Env = env
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
		return nil, err
	}
	return &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}, nil
}

// ask writes a line and reads the answer.
func (c *child) ask(line string) (string, error) {
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		return "", err
	}
	if !c.out.Scan() {
		return "", fmt.Errorf("no answer: %v", c.out.Err())
	}
	return c.out.Text(), nil
}

// runChild is a child's main: run, then exit, with what failed on stderr.
func runChild(what string, run func() error) {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "loadtest %s: %v\n", what, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startChild starts one child and reads its addresses up to "ready".
func (l *listeners) startChild(self string, env []string) ([]string, error) {
	c, err := startChildProcess(self, env)
	if err != nil {
		return nil, fmt.Errorf("starting the listeners: %w", err)
	}
	l.children = append(l.children, c)
	var addrs []string
	for c.out.Scan() && c.out.Text() != "ready" {
		addrs = append(addrs, c.out.Text())
	}
	return addrs, c.out.Err()
}

// pids are the children's process IDs, whose CPU is the listeners'.
func (l *listeners) pids() []int {
	pids := make([]int, len(l.children))
	for i, c := range l.children {
		pids[i] = c.cmd.Process.Pid
	}
	return pids
}

// connCounts is what the listeners saw: connections accepted, handshakes
// completed and handshakes that failed (a refused version or suite).
type connCounts struct{ conns, ok, failed int64 }

func (c connCounts) sub(o connCounts) connCounts {
	return connCounts{c.conns - o.conns, c.ok - o.ok, c.failed - o.failed}
}

// counts asks every child for its counters and adds them up.
func (l *listeners) counts() (connCounts, error) {
	var sum connCounts
	for _, ch := range l.children {
		c, err := ch.counts()
		if err != nil {
			return sum, err
		}
		sum = connCounts{sum.conns + c.conns, sum.ok + c.ok, sum.failed + c.failed}
	}
	return sum, nil
}

// counts asks one child: a line on its stdin, one back.
func (ch *child) counts() (connCounts, error) {
	var c connCounts
	answer, err := ch.ask("count")
	if err != nil {
		return c, fmt.Errorf("asking the listeners for counts: %w", err)
	}
	if _, err := fmt.Sscan(answer, &c.conns, &c.ok, &c.failed); err != nil {
		return c, fmt.Errorf("listener counts %q: %w", answer, err)
	}
	return c, nil
}

// stop closes each child's stdin, which ends it, and waits.
func (l *listeners) stop() {
	for _, c := range l.children {
		_ = c.stdin.Close() // the child exits on EOF or on the broken pipe alike
	}
	for _, c := range l.children {
		c.wait()
	}
}

// stop ends one child and waits for it.
func (c *child) stop() {
	_ = c.stdin.Close()
	c.wait()
}

func (c *child) wait() { _ = c.cmd.Wait() } // its exit status says nothing about the measurements

func isChild() bool { return os.Getenv(childDirEnv) != "" }

// childMain runs the listeners and exits.
func childMain() { runChild("listeners", serveListeners) }

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
	first, err := strconv.Atoi(os.Getenv(childFirstEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", childFirstEnv, err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf.key"))
	if err != nil {
		return fmt.Errorf("loading the listeners' certificate: %w", err)
	}
	if limit, err := raiseFDLimit(uint64(n) + 1024); err != nil {
		return err
	} else if limit < uint64(n)+64 {
		return fmt.Errorf("open-file limit %d is too low for %d listeners", limit, n)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if os.Getenv(childTLS12Env) != "" {
		cfg.MinVersion = tls.VersionTLS12
	}
	out := bufio.NewWriter(os.Stdout)
	err = listenAll(first, n, perAddress, func(addr netip.AddrPort) error {
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

// listenAll calls listen for n addresses, from the first-th on: perAddress
// on each loopback address from 127.0.0.2 on (Linux routes all of
// 127.0.0.0/8 to lo), on ports outside the kernel's ephemeral range, so
// that a port taken by a listener is never one the clients' connections
// need. A port already in use (by this run's other children too) is
// skipped. One address has about 36,000 such ports.
func listenAll(first, n, perAddress int, listen func(netip.AddrPort) error) error {
	ports, err := fixedPorts()
	if err != nil {
		return err
	}
	perAddress = min(max(perAddress, 1), len(ports))
	if first/perAddress > 250 {
		return fmt.Errorf("listener %d is past 127.0.0.252 at %d per address", first, perAddress)
	}
	addr := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + first/perAddress)})
	onAddr, next := first%perAddress, first%perAddress
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
