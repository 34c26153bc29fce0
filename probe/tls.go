package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// Target is an endpoint prepared for probing: its roots are loaded and its
// address is parsed once, not at every probe.
type Target struct {
	Endpoint *config.Endpoint // not to be changed: it may be the config's own

	roots      *caBundle   // nil: the system pool, which crypto/x509 loads once
	clientCert *certLoader // nil: no client certificate configured
	mcp        *mcpTarget  // nil: no MCP after TLS (address endpoints, transport none)
	serverName string
	host       string
	ip         netip.Addr // the host when it is an IP literal, which skips DNS
	port       uint16
	timeout    time.Duration
	minVersion uint16
	maxVersion uint16
	allowAddr  func(netip.Addr) bool // nil: any address (guard.go)

	// classicalFirst: the scheduled probe's handshake offers classicalGroups
	// (tls_config.key_exchange, classical by default, and nothing of ours on
	// the connection). needsDefaultGroups is set once the server refused
	// them, so only its first probe pays the second handshake.
	classicalFirst     bool
	needsDefaultGroups atomic.Bool

	// certRequests is set once the server asked for a client certificate.
	certRequests atomic.Bool

	facts certFacts // of the certificates the server sent last
}

// classicalGroups is what the scheduled probe's handshake offers when it
// carries nothing of ours: no request, no token, no client certificate.
// Nothing it protects outlives it, so the post-quantum hybrid
// (X25519MLKEM768, a third of a verified handshake's instructions) buys
// nothing there. The hybrid is left out of supported_groups entirely: a
// server preferring it (OpenSSL 3.5) would otherwise answer with a
// HelloRetryRequest, a second round trip. P-521 is offered too, so that a
// server with only that curve costs no retry either.
var classicalGroups = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}

// offeredSuites is every TLS 1.0–1.2 suite Go implements, insecure ones
// included, so a legacy server is reported rather than refused. Go still
// prefers secure suites; TLS 1.3 suites are not configurable.
var offeredSuites = func() []uint16 {
	var ids []uint16
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if slices.ContainsFunc(s.SupportedVersions, func(v uint16) bool { return v < tls.VersionTLS13 }) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}()

// NewTarget parses the endpoint's address and loads its ca_file. The client
// certificate is read at the first handshake that asks for it, and again
// whenever its files change.
func NewTarget(ep config.Endpoint) (*Target, error) { return NewTargetAt(&ep) }

// NewTargetAt is NewTarget with the endpoint where it is, in a config that
// outlives the target and is not changed: 100,000 targets then hold no copy
// of their endpoints for the collector to mark (264 bytes with pointers
// each).
func NewTargetAt(ep *config.Endpoint) (*Target, error) {
	host, portText, err := net.SplitHostPort(ep.HostPort())
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: address: %w", ep.Name, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: port %q: %w", ep.Name, portText, err)
	}
	t := &Target{
		Endpoint:   ep,
		serverName: ep.ServerName(),
		host:       host,
		port:       uint16(port),
		timeout:    ep.Timeout.D(),
		minVersion: tls.VersionTLS10,
		maxVersion: tls.VersionTLS13,
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		t.ip = ip.Unmap()
	}
	if t.timeout <= 0 {
		t.timeout = config.DefaultTimeout
	}
	tc := ep.TLSConfig
	if tc.MinVersion != 0 {
		t.minVersion = uint16(tc.MinVersion)
	}
	if tc.MaxVersion != 0 {
		t.maxVersion = uint16(tc.MaxVersion)
	}
	if tc.CAFile != "" {
		if t.roots, err = loadRoots(tc.CAFile); err != nil {
			return nil, fmt.Errorf("endpoint %s: tls_config.ca_file %s: %w", ep.Name, tc.CAFile, err)
		}
	}
	if tc.CertFile != "" {
		t.clientCert = newCertLoader(tc.CertFile, tc.KeyFile)
	}
	if t.mcp, err = newMCPTarget(ep); err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", ep.Name, err)
	}
	// MCP requests (a bearer token among them) travel over the probe's own
	// connection, and a client certificate names who we are: those keep
	// Go's default key exchange.
	t.classicalFirst = tc.KeyExchange != config.KeyExchangeDefault && t.mcp == nil && t.clientCert == nil
	return t, nil
}

// TLSConfig is a fresh config with the target's server name, versions and
// suites, for callers of Handshake to narrow (posture scans) or extend
// (NextProtos). Do not modify its CipherSuites slice in place.
func (t *Target) TLSConfig() *tls.Config {
	return &tls.Config{
		ServerName:   t.serverName,
		MinVersion:   t.minVersion,
		MaxVersion:   t.maxVersion,
		CipherSuites: offeredSuites,
	}
}

// Probe resolves, connects, handshakes and verifies once, then speaks MCP
// over the same connection for url endpoints, all within ctx's deadline and
// the endpoint's timeout, and closes every connection it opened.
func (t *Target) Probe(ctx context.Context) *TLSResult {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	var cfg *tls.Config
	if t.mcp != nil {
		cfg = t.mcpTLSConfig()
	} else if t.classicalFirst && !t.needsDefaultGroups.Load() {
		cfg = t.TLSConfig()
		cfg.CurvePreferences = classicalGroups
	}
	conn, res := t.handshakeVerdict(ctx, cfg)
	if cfg != nil && cfg.CurvePreferences != nil && groupsRefused(res) {
		// A server that only takes the hybrid (or groups Go has beyond
		// these) refuses with handshake_failure or insufficient_security:
		// once more with Go's defaults, which this endpoint keeps.
		t.needsDefaultGroups.Store(true)
		conn, res = t.handshakeVerdict(ctx, nil)
	}
	if t.mcp != nil {
		res.MCP = t.speakMCP(ctx, conn, res)
	} else if conn != nil {
		// The result is decided; a failed close_notify says nothing about the target.
		_ = conn.Close()
	}
	return res
}

// groupsRefused is whether a handshake offering classicalGroups failed the
// way a server with no group in common answers: an alert before it asked
// for anything of ours.
func groupsRefused(res *TLSResult) bool {
	return !res.Success && !res.ClientCertRequested && res.Version == 0 &&
		(res.alert == alertHandshakeFailure || res.alert == alertInsufficientSecurity)
}

// handshakeVerdict handshakes and, when a TLS 1.3 server asked for a client
// certificate, waits for its verdict on ours (or on our lack of one).
func (t *Target) handshakeVerdict(ctx context.Context, cfg *tls.Config) (*tls.Conn, *TLSResult) {
	if cfg == nil {
		cfg = t.TLSConfig()
	}
	// Without MCP the connection ends at the verdict: hold our writes, so
	// that the Finished and the close_notify leave in one segment.
	conn, hs, res := t.handshake(ctx, cfg, t.mcp == nil)
	if conn != nil && res.ClientCertRequested && res.Version == tls.VersionTLS13 {
		if err := hs.clientCertVerdict(ctx); err != nil {
			res.Success, res.Reason, res.Detail = false, ReasonClientCertRequired, "after the TLS 1.3 handshake: "+err.Error()
		}
	}
	return conn, res
}

// Handshake is Probe for callers that go on to use the connection (MCP over
// HTTP, posture scans). cfg, when not nil, is cloned; start it from
// TLSConfig. The hooks that capture and verify the server's certificates are
// always installed. The connection is returned only when the handshake
// completed, with its deadline set from ctx or the endpoint timeout; the
// caller closes it. Unlike Probe, it does not wait for a TLS 1.3 server's
// verdict on our client certificate: the caller's first read sees it.
func (t *Target) Handshake(ctx context.Context, cfg *tls.Config) (*tls.Conn, *TLSResult) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if cfg == nil {
		cfg = t.TLSConfig()
	} else {
		cfg = cfg.Clone()
	}
	conn, _, res := t.handshake(ctx, cfg, false)
	return conn, res
}

// handshake dials and handshakes with cfg, which becomes the connection's
// (the capturing hooks are installed in it): callers pass one of their own.
// hold makes the connection heldConn.
func (t *Target) handshake(ctx context.Context, cfg *tls.Config, hold bool) (*tls.Conn, *handshakeState, *TLSResult) {
	res := &TLSResult{Time: time.Now(), InsecureSkipVerify: t.Endpoint.TLSConfig.InsecureSkipVerify}
	raw, err := t.dial(ctx, &res.Phases)
	if err != nil {
		res.Reason, res.Detail = dialReason(err), err.Error()
		return nil, nil, res
	}
	if hold {
		raw = &heldConn{Conn: raw}
	}
	hs := &handshakeState{target: t}
	conn := tls.Client(raw, hs.install(cfg))
	hs.conn = conn
	start := time.Now()
	err = handshakeWithin(ctx, conn)
	res.Phases.Handshake = time.Since(start)
	hs.report(res)
	if err != nil {
		// A connection or handshake failure outranks any verification reason.
		res.Reason, res.Detail = handshakeReason(err, hs.certRequested), "TLS handshake: "+err.Error()
		res.alert = refusalAlert(err)
		_ = conn.Close() // already broken; the handshake error is the one to report
		return nil, hs, res
	}
	res.Success = true
	return conn, hs, res
}

// handshakeWithin handshakes until ctx's deadline, or until ctx is
// canceled (a reload or the stop), which moves the connection's deadline to
// now. HandshakeContext would do the same with a goroutine of its own per
// handshake, parked and woken again at its end: scheduling that a paced
// probe pays for in CPU, where a callback registered with ctx costs none.
func handshakeWithin(ctx context.Context, conn *tls.Conn) error {
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	err := conn.Handshake()
	if !stop() && err != nil {
		return ctx.Err() // as HandshakeContext reports it
	}
	return err
}

// dial resolves the host itself, so that DNS time is measured apart from the
// connect, and connects to the addresses in the resolver's order.
func (t *Target) dial(ctx context.Context, ph *Phases) (net.Conn, error) {
	one := [1]netip.Addr{t.ip}
	ips := one[:]
	if !t.ip.IsValid() {
		start := time.Now()
		var err error
		ips, err = Resolver.LookupNetIP(ctx, "ip", t.host)
		ph.DNS = time.Since(start)
		if err == nil && len(ips) == 0 {
			err = &net.DNSError{Err: "no addresses", Name: t.host, IsNotFound: true}
		}
		if err != nil {
			return nil, err
		}
	}
	ips, err := t.allowed(ips)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	conn, err := dialFirst(ctx, ips, t.port)
	ph.Connect = time.Since(start)
	return conn, err
}

// dialer connects without TCP keepalive: a probe's connection lives for
// one probe, seconds, and keepalive's first probe would come after 15 s, so
// its four setsockopt calls per connection would buy nothing.
var dialer = net.Dialer{KeepAlive: -1}

// dialFirst tries each address in turn and returns the first connection, or
// the first error as net.Dialer does. Each attempt but the last gets a share
// of the time left, so one black-holed address does not eat it all.
func dialFirst(ctx context.Context, ips []netip.Addr, port uint16) (net.Conn, error) {
	var first error
	for i, ip := range ips {
		actx, cancel := shareOf(ctx, len(ips)-i)
		conn, err := dialer.DialContext(actx, "tcp", netip.AddrPortFrom(ip.Unmap(), port).String())
		cancel()
		if err == nil {
			return conn, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// shareOf splits the time left among the addresses left to try, at least
// two seconds each, like net.Dialer.
func shareOf(ctx context.Context, left int) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if left <= 1 || !ok {
		return ctx, func() {}
	}
	remain := time.Until(dl)
	share := remain / time.Duration(left)
	if share < 2*time.Second {
		share = min(2*time.Second, remain)
	}
	return context.WithTimeout(ctx, share)
}

// handshakeState is what the tls.Config hooks learn during one handshake.
type handshakeState struct {
	target        *Target
	conn          *tls.Conn
	peer          []*x509.Certificate
	version       uint16
	suite         uint16
	staple        []byte // the OCSP response stapled to the server's certificate
	certRequested bool
	awaitTicket   bool // reading for the server's verdict on our certificate
}

// install sets the hooks on cfg. Go's verification is off: we verify after
// the handshake ourselves, so that certificates that fail are still reported.
func (hs *handshakeState) install(cfg *tls.Config) *tls.Config {
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = hs.verifyConnection
	cfg.GetClientCertificate = hs.getClientCertificate
	// Tickets only serve to learn a TLS 1.3 server's verdict on our client
	// certificate early; other servers are spared issuing them.
	if cfg.ClientSessionCache == nil && (hs.target.clientCert != nil || hs.target.certRequests.Load()) {
		cfg.ClientSessionCache = hs
	}
	if cfg.ServerName == "" {
		cfg.ServerName = hs.target.serverName
	}
	return cfg
}

// verifyConnection captures the server's certificates as soon as they
// arrive, so they are reported even when the handshake fails later (a TLS 1.2
// server refusing our client certificate).
func (hs *handshakeState) verifyConnection(cs tls.ConnectionState) error {
	hs.peer, hs.version, hs.suite, hs.staple = cs.PeerCertificates, cs.Version, cs.CipherSuite, cs.OCSPResponse
	return nil
}

// getClientCertificate offers the configured certificate, or none so that
// the server decides.
func (hs *handshakeState) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	hs.certRequested = true
	hs.target.certRequests.Store(true)
	if hs.target.clientCert == nil {
		return new(tls.Certificate), nil
	}
	cert, err := hs.target.clientCert.get()
	if err != nil {
		return nil, &clientCertError{err}
	}
	return cert, nil
}

// Get never resumes: every probe is a full handshake.
func (hs *handshakeState) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

// Put is called when a session ticket arrives. A TLS 1.3 server sends its
// tickets only after it accepted our client certificate, so the wait for its
// verdict can end at once.
func (hs *handshakeState) Put(string, *tls.ClientSessionState) {
	if hs.awaitTicket {
		// If this fails, the read just waits for its own deadline.
		_ = hs.conn.SetReadDeadline(time.Now())
	}
}

// clientCertVerdict waits for a TLS 1.3 server's answer to our client
// certificate: the client finishes its handshake first, and a rejection
// comes as an alert after. A session ticket or silence until the wait ends
// means accepted; any error means rejected.
func (hs *handshakeState) clientCertVerdict(ctx context.Context) error {
	wait := time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	if err := hs.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	hs.awaitTicket = true
	var b [1]byte
	_, err := hs.conn.Read(b[:])
	hs.awaitTicket = false
	if err == nil || isTimeout(err) {
		return nil
	}
	return err
}

// report copies what the handshake learned into res and verifies the
// certificates the server sent.
func (hs *handshakeState) report(res *TLSResult) {
	res.Version, res.CipherSuite, res.ClientCertRequested = hs.version, hs.suite, hs.certRequested
	if hs.peer == nil {
		return
	}
	v := hs.target.verify(hs.peer, res.Time)
	res.Verified = v.reason == ReasonNone
	res.Reason, res.Detail = v.reason, v.detail
	res.Certificates = hs.target.facts.get(v.cached, hs.staple)
	if res.Certificates == nil {
		res.Certificates = chainInfo(hs.peer, v.chain)
		assessFindings(res.Certificates, hs.peer, v.chain, hs.staple)
		hs.target.facts.keep(v.cached, hs.staple, res.Certificates)
	}
	res.OCSP = ocspOf(hs.staple, hs.peer[0], issuerOf(hs.peer, v.chain), res.Time)
	if n := hs.target.Endpoint.Limits.CertificatesPerChain; n > 0 && len(res.Certificates) > n {
		// A peer may send hundreds of certificates; each would be series.
		res.Limits = append(res.Limits, LimitReached{Limit: LimitCertificatesPerChain,
			Detail: fmt.Sprintf("the chain holds %d certificates; the first %d are exported", len(res.Certificates), n)})
		res.Certificates = res.Certificates[:n:n]
	}
}

// heldConn holds back what is written until the next read or the close. A
// client writes its flight and then reads the answer, so nothing waits that
// the server needs; what it saves is the segment (and the system call) of
// the last flight, which leaves with the close_notify. Held bytes are sent
// under the write deadline set when they were written: crypto/tls sets one
// in the past once its close_notify is written, to fail later writes. The
// connection's own write deadline is changed only when held bytes go out
// under another one: crypto/tls's close sets two around its close_notify,
// each a change of the runtime's timers. Only for connections that end at
// the handshake: one goroutine reads, writes and closes; deadlines may also
// be set from another (a canceled probe's), and reach the reads at once.
type heldConn struct {
	net.Conn
	held     []byte
	buf      [512]byte // held's first array: a ClientHello, or a Finished and a close_notify, fit
	deadline time.Time // the write deadline when held was last written to
	applied  time.Time // the connection's write deadline

	mu      sync.Mutex
	current time.Time // the write deadline set last
}

func (c *heldConn) Write(p []byte) (int, error) {
	if c.held == nil {
		c.held = c.buf[:0]
	}
	c.held = append(c.held, p...)
	c.deadline = c.writeDeadline()
	return len(p), nil
}

func (c *heldConn) writeDeadline() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current
}

func (c *heldConn) SetDeadline(t time.Time) error {
	_ = c.SetWriteDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

func (c *heldConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.current = t
	return nil
}

func (c *heldConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *heldConn) Close() error {
	err := c.flush()
	return errors.Join(err, c.Conn.Close())
}

func (c *heldConn) flush() error {
	if len(c.held) == 0 {
		return nil
	}
	if !c.deadline.Equal(c.applied) {
		if err := c.Conn.SetWriteDeadline(c.deadline); err != nil {
			return err
		}
		c.applied = c.deadline
	}
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	return err
}
