package collector

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// peer is a server the collector probes and what it must report for it.
type peer struct {
	name   string
	addr   string
	reason probe.Reason // ReasonNone for a good server
	detail string       // part of the reported detail, if set
	slow   bool         // holds the probe until its timeout
	conns  atomic.Int64 // connections accepted
}

// dripDelay is how long the dripping proxy waits before each byte.
const dripDelay = 50 * time.Millisecond

// startPeers starts good TLS servers and one hostile peer of each kind, all
// on 127.0.0.1, and returns the ca_file that trusts the good ones.
func startPeers(t *testing.T) (string, []*peer) {
	t.Helper()
	ca := testpki.NewCA("Peers Root")
	inter := ca.Intermediate("Peers Intermediate")
	good := inter.Leaf("localhost").TLS(inter)
	caFile := testpki.WriteFile(t, t.TempDir(), "ca.pem", ca.PEM())

	malformed := good
	malformed.Certificate = [][]byte{good.Certificate[0][:len(good.Certificate[0])-10]}
	oversized := good
	oversized.Certificate = [][]byte{good.Certificate[0], make([]byte, 300<<10)}
	upstream := testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{good}})

	peers := []*peer{
		{name: "good-1"}, {name: "good-2"}, {name: "good-3"},
		{name: "silent", reason: probe.ReasonTimeout, slow: true},
		{name: "garbage", reason: probe.ReasonNotTLS, detail: "does not look like a TLS handshake"},
		{name: "reset", reason: probe.ReasonConnectionReset},
		{name: "oversized-chain", reason: probe.ReasonHandshakeFailure, detail: "exceeds maximum"},
		{name: "malformed-cert", reason: probe.ReasonHandshakeFailure, detail: "failed to parse certificate"},
		{name: "drip", reason: probe.ReasonTimeout, slow: true},
	}
	handlers := map[string]func(net.Conn){
		"good-1":          tlsPeer(good),
		"good-2":          tlsPeer(good),
		"good-3":          tlsPeer(good),
		"silent":          discard,
		"garbage":         garbage,
		"reset":           reset,
		"oversized-chain": tlsPeer(oversized),
		"malformed-cert":  tlsPeer(malformed),
		"drip":            drip(upstream),
	}
	for _, p := range peers {
		handle := handlers[p.name]
		p.addr = testpki.ServeRaw(t, func(c net.Conn) { p.conns.Add(1); handle(c) })
	}
	return caFile, peers
}

// peersConfig probes every peer with one interval and timeout.
func peersConfig(caFile string, peers []*peer, interval, timeout string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interval: %s\ntimeout: %s\nendpoints:\n", interval, timeout)
	for _, p := range peers {
		fmt.Fprintf(&b, "  - {name: %s, address: %q, tls_config: {ca_file: %q, server_name: localhost}}\n", p.name, p.addr, caFile)
	}
	return b.String()
}

// tlsPeer completes a handshake with cert, then waits for the client to go.
func tlsPeer(cert tls.Certificate) func(net.Conn) {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.SetDeadline(time.Now().Add(5*time.Second)) != nil || tc.Handshake() != nil {
			return
		}
		_, _ = io.Copy(io.Discard, tc)
	}
}

// discard accepts and never speaks.
func discard(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// garbage answers the ClientHello with an SSH banner and binary junk.
func garbage(c net.Conn) {
	buf := make([]byte, 4096)
	if _, err := c.Read(buf); err != nil {
		return
	}
	if _, err := c.Write(append([]byte("SSH-2.0-OpenSSH_9.6\r\n"), 0xff, 0x00, 0x13, 0x37)); err != nil {
		return
	}
	discard(c)
}

// reset reads the ClientHello and resets the connection.
func reset(c net.Conn) {
	buf := make([]byte, 4096)
	if _, err := c.Read(buf); err != nil {
		return
	}
	_ = c.(*net.TCPConn).SetLinger(0)
}

// drip relays a real server, passing its bytes on one at a time.
func drip(upstream string) func(net.Conn) {
	return func(c net.Conn) {
		up, err := net.Dial("tcp", upstream)
		if err != nil {
			return
		}
		defer up.Close()
		go func() {
			_, _ = io.Copy(up, c)
			up.Close() // the client left: stop dripping
		}()
		var b [1]byte
		for {
			time.Sleep(dripDelay)
			if _, err := up.Read(b[:]); err != nil {
				return
			}
			if _, err := c.Write(b[:]); err != nil {
				return
			}
		}
	}
}

// probeCost is the time the last probe of target spent, by its own phases.
func probeCost(t *testing.T, f metricstest.Families, target string) time.Duration {
	var sum float64
	for _, s := range f.Samples("ssl_probe_duration_seconds", map[string]string{"target": target}) {
		sum += s.Value
	}
	return time.Duration(sum * float64(time.Second))
}

// Good servers and hostile peers are probed together. Each hostile peer is
// reported with its reason and costs at most its own timeout; the good ones
// are verified, and their results were in before the slow peers' deadlines.
func TestHostilePeersCostOnlyTheirOwnTimeout(t *testing.T) {
	const timeout = 3 * time.Second
	caFile, peers := startPeers(t)
	c := startCollector(t, peersConfig(caFile, peers, "1h", timeout.String()))
	var f metricstest.Families
	eventually(t, "every peer reported", func() bool {
		f = scrape(t, c)
		return len(f.Samples("ssl_probe_last_run_timestamp_seconds", nil)) == len(peers)
	})
	details := map[string]string{}
	endpoints, _ := c.Views()
	for _, v := range endpoints {
		if v.Last != nil {
			details[v.Endpoint.Name] = v.Last.Detail
		}
	}
	firstDeadline := time.Duration(1<<63 - 1)
	for _, p := range peers {
		if p.slow {
			start := f.One(t, "ssl_probe_last_run_timestamp_seconds", map[string]string{"target": p.name})
			firstDeadline = min(firstDeadline, time.Duration(start*float64(time.Second))+timeout)
		}
	}
	for _, p := range peers {
		t.Run(p.name, func(t *testing.T) {
			target := map[string]string{"target": p.name}
			cost := probeCost(t, f, p.name)
			if p.reason == probe.ReasonNone {
				f.Absent(t, "ssl_probe_error_info", target)
				if v := f.One(t, "ssl_certificate_verified", target); v != 1 {
					t.Errorf("verified = %v", v)
				}
				start := f.One(t, "ssl_probe_last_run_timestamp_seconds", target)
				if done := time.Duration(start*float64(time.Second)) + cost; done >= firstDeadline {
					t.Errorf("good result at %v, not before the first slow peer's deadline %v", done, firstDeadline)
				}
				return
			}
			f.One(t, "ssl_probe_error_info", map[string]string{"target": p.name, "reason": string(p.reason)})
			if !strings.Contains(details[p.name], p.detail) {
				t.Errorf("detail %q lacks %q", details[p.name], p.detail)
			}
			switch {
			case p.slow && cost > timeout+time.Second:
				t.Errorf("cost %v, more than its %v timeout", cost, timeout)
			case !p.slow && cost >= timeout:
				t.Errorf("cost %v: a peer that fails at once waited for its timeout", cost)
			}
		})
	}
}
