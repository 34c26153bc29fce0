package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/common/version"
)

// Limits on what one MCP exchange reads, so that a hostile server costs at
// most its timeout and bounded memory. Handshake messages are small.
const (
	maxJSONBody    = 1 << 20 // one JSON response: a JSON-RPC message or a metadata document
	maxStreamBody  = 4 << 20 // everything one event stream sends
	maxEventBytes  = 1 << 20 // one server-sent event
	maxHeaderBytes = 64 << 10
	// maxDrainBytes is how much of an unread JSON or empty body is read
	// before it is closed, so that its connection can carry the next
	// request instead of a new TLS handshake. Event streams are never drained.
	maxDrainBytes = 64 << 10
)

// closeBudget is the time the DELETE that ends a session gets of its own,
// even when the probe's timeout has run out: a probe that opened a session
// on the server tries to close it, and so takes at most timeout+closeBudget.
const closeBudget = 2 * time.Second

// cleanupKey carries the deadline of the request that ends a session as a
// value: Go's transport dials with the request's values, not its deadline.
type cleanupKey struct{}

func cleanupDeadline(ctx context.Context) (time.Time, bool) {
	d, ok := ctx.Value(cleanupKey{}).(time.Time)
	return d, ok
}

var errClosed = errors.New("the probe is over")

// sessionHeader carries the session of the Streamable HTTP transport.
const sessionHeader = "Mcp-Session-Id"

// exchange is what one HTTP request of the MCP traffic met, so that failures
// are named from what was observed rather than from the SDK's error texts.
type exchange struct {
	method      string
	path        string // without the query, which may hold a session id
	status      int    // 0: no response
	contentType string
	wwwAuth     []string
	err         error // no response at all
	tooLarge    bool  // the body went past its limit
	timedOut    bool  // no response, or its body cut, by the deadline
	refused     string
	sessionSent bool  // the request carried an Mcp-Session-Id
	sessionSet  bool  // the answer assigned an Mcp-Session-Id
	read        int64 // body bytes read so far
}

func (e *exchange) String() string {
	switch {
	case e.refused != "":
		return fmt.Sprintf("%s to %s refused: the exporter only connects to the configured target", e.method, e.refused)
	case e.err != nil:
		return fmt.Sprintf("%s %s: %v", e.method, e.path, e.err)
	}
	return fmt.Sprintf("%s %s answered %d %s", e.method, e.path, e.status, http.StatusText(e.status))
}

func (e *exchange) ok() bool { return e.status >= 200 && e.status < 300 }

// mcpHTTP is the HTTP side of one probe's MCP exchange. Every connection
// goes to the target through the probe's own TLS code path: the first reuses
// the probe's connection, further ones handshake and verify again, and the
// certificates each met are kept.
type mcpHTTP struct {
	target    *Target
	origin    *url.URL
	deadline  time.Time
	verified  bool
	transport *http.Transport
	client    *http.Client // sends the bearer token
	anon      *http.Client // sends none: OAuth discovery is public

	mu        sync.Mutex
	first     *tls.Conn
	conns     []net.Conn
	closed    bool
	certs     []CertInfo // met by further handshakes
	dials     int        // further handshakes
	tlsErr    error      // a further connection failed TLS or verification
	exchanges []*exchange
}

func newMCPHTTP(t *Target, conn *tls.Conn, deadline time.Time, verified bool, token string) *mcpHTTP {
	h := &mcpHTTP{target: t, origin: t.mcp.url, deadline: deadline, verified: verified, first: conn, conns: []net.Conn{conn}}
	h.transport = &http.Transport{
		Proxy:                  nil, // only the configured target, never a proxy from the environment
		DialTLSContext:         h.dialTLS,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxHeaderBytes,
		MaxIdleConnsPerHost:    4,
		TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
	}
	h.client = &http.Client{Transport: &mcpRoundTripper{h: h, token: token}, CheckRedirect: noRedirects}
	h.anon = &http.Client{Transport: &mcpRoundTripper{h: h}, CheckRedirect: noRedirects}
	return h
}

// noRedirects hands a redirect back as the answer: following it could lead
// anywhere, and the exporter only connects to the configured URL's host.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// mcpTLSConfig offers HTTP/1.1 by ALPN, as HTTP clients do; the MCP traffic
// does not need HTTP/2.
func (t *Target) mcpTLSConfig() *tls.Config {
	cfg := t.TLSConfig()
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}

// dialTLS hands out the probe's connection first, then handshakes anew.
// The address is ignored: the round tripper let only the target's through.
func (h *mcpHTTP) dialTLS(ctx context.Context, _, _ string) (net.Conn, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errClosed
	}
	if c := h.first; c != nil {
		h.first = nil
		h.mu.Unlock()
		return c, nil
	}
	h.mu.Unlock()
	deadline := h.deadline
	d, cleanup := cleanupDeadline(ctx)
	if cleanup {
		deadline = d // the DELETE's own budget, which may outlast the probe's
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, _, res := h.target.handshake(ctx, h.target.mcpTLSConfig(), false)
	return h.keep(conn, res, cleanup)
}

// keep records a further handshake and decides whether its connection may
// carry MCP: it must verify, unless insecure_skip_verify is set. A failure
// on the DELETE's connection (cleanup) is the DELETE's, not the handshake's.
func (h *mcpHTTP) keep(conn *tls.Conn, res *TLSResult, cleanup bool) (net.Conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dials++
	h.certs = mergeCerts(h.certs, res.Certificates)
	var err error
	switch {
	case conn == nil && res.Reason == ReasonTimeout:
		return nil, fmt.Errorf("further TLS connection: %s: %w", res.Detail, context.DeadlineExceeded)
	case conn == nil:
		err = fmt.Errorf("a further TLS connection failed: %s: %s", res.Reason, res.Detail)
	case !res.Trusted():
		err = fmt.Errorf("a further TLS connection did not verify: %s: %s", res.Reason, res.Detail)
	case h.closed:
		err = errClosed
	}
	if err != nil {
		if conn != nil {
			_ = conn.Close() // refused; its verdict is the error
		}
		if h.tlsErr == nil && err != errClosed && !cleanup {
			h.tlsErr = err
		}
		return nil, err
	}
	h.conns = append(h.conns, conn)
	return conn, nil
}

// close ends every connection of the exchange, in use or idle, so that
// nothing the server does can outlive the probe.
func (h *mcpHTTP) close() {
	h.mu.Lock()
	h.closed = true
	conns := h.conns
	h.conns, h.first = nil, nil
	h.mu.Unlock()
	for _, c := range conns {
		_ = c.Close() // the exchange is over; a failed close changes nothing
	}
	h.transport.CloseIdleConnections()
}

// cleanupContext gives the DELETE that ends a session its own closeBudget,
// on a fresh deadline for the connections it may reuse, so that a probe that
// ran out of time still closes what it opened.
func (h *mcpHTTP) cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(closeBudget)
	h.mu.Lock()
	for _, c := range h.conns {
		_ = c.SetDeadline(deadline) // a closed connection is simply not reused
	}
	h.mu.Unlock()
	ctx, cancel := context.WithDeadline(context.WithValue(ctx, cleanupKey{}, deadline), deadline)
	return ctx, cancel
}

func (h *mcpHTTP) record(e *exchange) {
	h.mu.Lock()
	h.exchanges = append(h.exchanges, e)
	h.mu.Unlock()
}

// since returns the exchanges from index mark on.
func (h *mcpHTTP) since(mark int) []exchange {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]exchange, 0, len(h.exchanges)-mark)
	for _, e := range h.exchanges[mark:] {
		out = append(out, *e)
	}
	return out
}

func (h *mcpHTTP) mark() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.exchanges)
}

func (h *mcpHTTP) furtherTLS() (certs []CertInfo, dials int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.certs, h.dials, h.tlsErr
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return "443"
}

// exporterVersion is the version main was built with, or "devel" in a
// build without one: MCP's clientInfo requires a version.
func exporterVersion() string {
	if version.Version == "" {
		return "devel"
	}
	return version.Version
}

// userAgent names the exporter and its version, so that a server's logs
// say who asked.
func userAgent() string { return "mcp_cert_exporter/" + exporterVersion() }

// mcpRoundTripper adds the token, keeps requests on the target, records
// what each exchange met and caps response bodies.
type mcpRoundTripper struct {
	h     *mcpHTTP
	token string
}

func (rt *mcpRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	e := &exchange{method: req.Method, path: req.URL.EscapedPath()}
	if !sameHost(req.URL, rt.h.origin) {
		e.refused = req.URL.Host
		rt.h.record(e)
		if req.Body != nil {
			_ = req.Body.Close() // RoundTrip must close it, even on error
		}
		return nil, errors.New(e.String())
	}
	ctx, cancel := req.Context(), context.CancelFunc(func() {})
	if req.Method == http.MethodDelete {
		ctx, cancel = rt.h.cleanupContext(ctx)
	}
	req = req.Clone(ctx)
	e.sessionSent = req.Header.Get(sessionHeader) != ""
	req.Header.Set("User-Agent", userAgent())
	if rt.token != "" {
		req.Header.Set("Authorization", "Bearer "+rt.token)
	}
	resp, err := rt.h.transport.RoundTrip(req)
	if err != nil {
		cancel()
		e.err, e.timedOut = err, isTimeout(err)
		rt.h.record(e)
		return nil, err
	}
	e.status, e.wwwAuth = resp.StatusCode, resp.Header.Values("WWW-Authenticate")
	e.sessionSet = resp.Header.Get(sessionHeader) != ""
	e.contentType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	limit := int64(maxJSONBody)
	if e.contentType == "text/event-stream" {
		limit = maxStreamBody
	}
	resp.Body = &cappedBody{rc: resp.Body, limit: limit, h: rt.h, e: e, done: cancel}
	rt.h.record(e)
	return resp, nil
}

// cappedBody fails a read past limit bytes and marks its exchange.
type cappedBody struct {
	rc    io.ReadCloser
	limit int64
	n     int64
	h     *mcpHTTP
	e     *exchange
	done  context.CancelFunc // ends the request's own context, if it has one
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.n >= b.limit {
		// One byte more tells a body of exactly limit bytes from a longer one.
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n == 0 {
			return 0, err
		}
		b.mark(func(e *exchange) { e.tooLarge = true })
		return 0, fmt.Errorf("response body larger than %d bytes", b.limit)
	}
	if rest := b.limit - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if n > 0 {
		b.mark(func(e *exchange) { e.read += int64(n) })
	}
	if err != nil && isTimeout(err) {
		b.mark(func(e *exchange) { e.timedOut = true })
	}
	return n, err
}

func (b *cappedBody) mark(f func(*exchange)) {
	b.h.mu.Lock()
	f(b.e)
	b.h.mu.Unlock()
}

// Close drains what is left of a small body that is not an event stream, so
// that Go's transport keeps the connection for the next request: Node, for
// one, answers a notification with a chunked 202 whose end would otherwise
// stay unread and cost the next request a new TLS handshake.
func (b *cappedBody) Close() error {
	if b.e.contentType != "text/event-stream" && b.n < b.limit {
		_, _ = io.CopyN(io.Discard, b.rc, maxDrainBytes) // best effort; what is left is closed below
	}
	defer b.done()
	return b.rc.Close()
}
