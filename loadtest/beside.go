package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The floor beside (-floor-beside): a second child process makes the
// floor's bare verified handshakes, paced as the exporter's refreshes, while
// the exporter's cycles run. Both are then measured over the same minutes
// and under the same outside load, which on a shared machine moves the
// floor measured before and after by a third and more. Both also share the
// listeners and the cores, which sequential floors do not: the ratio is
// shown beside theirs, not instead of it.

const (
	besideDirEnv      = "LOADTEST_BESIDE_DIR" // holds ca.pem and addrs, one host:port a line
	besideIntervalEnv = "LOADTEST_BESIDE_INTERVAL"
	besideConcEnv     = "LOADTEST_BESIDE_CONCURRENCY"
	besideGroupsEnv   = "LOADTEST_BESIDE_GROUPS" // classical, or empty for Go's defaults
	besideSpreadEnv   = "LOADTEST_BESIDE_SPREAD" // -floor-spread
	besideRoundsEnv   = "LOADTEST_BESIDE_ROUNDS" // handshakes per listener, enough for the cycles
)

// besideFloor is the running child: "read" asks for its handshakes so far
// and its CPU time.
type besideFloor struct{ *child }

// besideReading is the child's handshakes and CPU time at one moment.
type besideReading struct {
	ops int
	cpu time.Duration
}

func (b besideReading) sub(o besideReading) cost {
	return cost{ops: b.ops - o.ops, cpu: b.cpu - o.cpu}
}

func startBesideFloor(p *pki, addrs []string, o options) (*besideFloor, error) {
	if err := os.WriteFile(filepath.Join(p.dir, "addrs"), []byte(strings.Join(addrs, "\n")), 0o600); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	groups := ""
	if floorGroups != nil {
		groups = "classical"
	}
	c, err := startChildProcess(self, append(os.Environ(), besideDirEnv+"="+p.dir, besideIntervalEnv+"="+o.interval.String(),
		besideConcEnv+"="+strconv.Itoa(o.concurrency), besideGroupsEnv+"="+groups,
		besideSpreadEnv+"="+strconv.FormatBool(spreadFloor), besideRoundsEnv+"="+strconv.Itoa(o.cycles+3)))
	if err != nil {
		return nil, fmt.Errorf("starting the floor beside: %w", err)
	}
	return &besideFloor{c}, nil
}

func (b *besideFloor) read() (besideReading, error) {
	var r besideReading
	answer, err := b.ask("read")
	if err != nil {
		return r, fmt.Errorf("asking the floor beside: %w", err)
	}
	var ns int64
	if _, err := fmt.Sscan(answer, &r.ops, &ns); err != nil {
		return r, fmt.Errorf("floor beside %q: %w", answer, err)
	}
	r.cpu = time.Duration(ns)
	return r, nil
}

func isBesideChild() bool { return os.Getenv(besideDirEnv) != "" }

// besideMain is the child: paced handshakes to every listener, as the
// exporter's refreshes are from their second round on, until stdin closes.
func besideMain() { runChild("floor beside", runBeside) }

func runBeside() error {
	dir := os.Getenv(besideDirEnv)
	interval, err := time.ParseDuration(os.Getenv(besideIntervalEnv))
	if err != nil {
		return err
	}
	concurrency, err := strconv.Atoi(os.Getenv(besideConcEnv))
	if err != nil {
		return err
	}
	if os.Getenv(besideGroupsEnv) != "" {
		floorGroups = classical
	}
	if spreadFloor, err = strconv.ParseBool(os.Getenv(besideSpreadEnv)); err != nil {
		return err
	}
	rounds, err := strconv.Atoi(os.Getenv(besideRoundsEnv))
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return fmt.Errorf("no certificate in %s", filepath.Join(dir, "ca.pem"))
	}
	list, err := os.ReadFile(filepath.Join(dir, "addrs"))
	if err != nil {
		return err
	}
	addrs := strings.Split(string(list), "\n")
	var done atomic.Int64
	go answerReadings(os.Stdin, os.Stdout, &done)
	handshake := floorHandshake(floorDialer(roots))
	total := len(addrs) * rounds
	_, err = runConcurrently(selfMeter(nil), addrs, concurrency, schedule(len(addrs), total, interval), total, func(addr string) error {
		defer done.Add(1)
		return handshake(addr)
	})
	if err != nil {
		return err
	}
	select {} // answering until stdin closes, which ends the process
}

// answerReadings answers each line with the handshakes done and this
// process's CPU time in nanoseconds, and exits at EOF.
func answerReadings(in io.Reader, out io.Writer, done *atomic.Int64) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		fmt.Fprintf(out, "%d %d\n", done.Load(), selfCPU())
	}
	os.Exit(0)
}

// floorDialer is the floor's client: crypto/tls with the roots and the
// listeners' name, offering floorGroups.
func floorDialer(roots *x509.CertPool) *tls.Dialer {
	return &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config:    &tls.Config{RootCAs: roots, ServerName: "localhost", CurvePreferences: floorGroups},
	}
}
