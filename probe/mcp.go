package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// MCP transports as reported.
const (
	TransportStreamable = config.TransportStreamable
	TransportSSE        = config.TransportSSE
)

// sseProtocolVersion is what we ask of legacy HTTP+SSE servers: the newest
// version still negotiated by initialize, as SDK clients send. It skips
// server/discover, which the 2026-07-28 revision defines for Streamable HTTP
// only; the server answers the version it speaks.
const sseProtocolVersion = "2025-11-25"

// maxTokenBytes bounds the bearer token file; a token is a few kilobytes at most.
const maxTokenBytes = 64 << 10

// MCPResult is the outcome of the MCP handshake after TLS.
type MCPResult struct {
	// Up is true when initialize (or server/discover) completed.
	Up bool
	// Transport is streamable or sse: the one that answered, or the one
	// whose failure is reported.
	Transport       string
	ProtocolVersion string
	ServerName      string
	ServerVersion   string
	// Duration is the MCP exchange after TLS, closing the session included.
	Duration time.Duration

	Reason MCPReason
	// Detail is the failure, or for an Up result a failure to close the session.
	Detail string
	// HTTPStatus is the status that decided a failure; 0 when none did.
	HTTPStatus int

	// Session is true when the server assigned an Mcp-Session-Id, and
	// DeleteStatus is what it answered to the DELETE that ended it.
	Session      bool
	DeleteStatus int
	// Connections is how many TLS connections the exchange used: the
	// probe's own and any further ones, each verified again. 0 means MCP
	// was not spoken.
	Connections int

	// AuthMetadataValid is set only for servers that answered 401: whether
	// their OAuth discovery (RFC 9728 protected-resource metadata) is
	// well-formed. AuthDetail says where it was found or why it is not.
	AuthMetadataValid *bool
	AuthDetail        string
	// AuthLegacy is true when a client can log in only through the
	// discovery of MCP 2025-03-26: no RFC 9728 document, but RFC 8414
	// authorization-server metadata at the root of the endpoint's host.
	// AuthMetadataValid is then true: this works, it is just old.
	AuthLegacy bool
}

// mcpTarget is what a url endpoint needs to speak MCP.
type mcpTarget struct {
	url       *url.URL
	transport string // auto, streamable or sse
	tokenFile string
	client    *mcp.Client
}

func newMCPTarget(ep *config.Endpoint) (*mcpTarget, error) {
	tr := ep.MCPTransport()
	if tr == config.TransportNone {
		return nil, nil
	}
	u, err := url.Parse(ep.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	impl := &mcp.Implementation{Name: "mcp_cert_exporter", Version: exporterVersion()}
	// No capabilities: the server has no reason to call us back.
	client := mcp.NewClient(impl, &mcp.ClientOptions{Capabilities: &mcp.ClientCapabilities{}})
	return &mcpTarget{url: u, transport: tr, tokenFile: ep.MCP.BearerTokenFile, client: client}, nil
}

// readToken reads the bearer token at every probe, so a rotated file is
// used at once. Errors name the file, never its content.
func (m *mcpTarget) readToken() (string, error) {
	if m.tokenFile == "" {
		return "", nil
	}
	f, err := os.Open(m.tokenFile)
	if err != nil {
		return "", fmt.Errorf("reading bearer_token_file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading bearer_token_file %s: %w", m.tokenFile, err)
	}
	if len(data) > maxTokenBytes {
		return "", fmt.Errorf("bearer_token_file %s is larger than %d bytes", m.tokenFile, maxTokenBytes)
	}
	token := string(bytes.TrimSpace(data))
	if token == "" {
		return "", fmt.Errorf("bearer_token_file %s is empty", m.tokenFile)
	}
	return token, nil
}

// speakMCP runs the MCP handshake after a TLS probe. It owns conn (nil when
// the handshake failed) and closes it, and every connection it opens, before
// it returns. ctx carries the probe's one deadline.
func (t *Target) speakMCP(ctx context.Context, conn *tls.Conn, res *TLSResult) *MCPResult {
	if conn == nil || !res.Trusted() {
		if conn != nil {
			_ = conn.Close() // TLS already decided the outcome
		}
		return &MCPResult{Reason: MCPTLSFailed, Detail: fmt.Sprintf("MCP not attempted: TLS failed with %s", res.Reason)}
	}
	start := time.Now()
	token, err := t.mcp.readToken()
	if err != nil {
		_ = conn.Close() // nothing was sent on it
		return &MCPResult{Reason: MCPAuthRequired, Detail: "MCP not attempted: " + err.Error()}
	}
	deadline, _ := ctx.Deadline() // Probe always sets one
	if err := conn.SetDeadline(deadline); err != nil {
		_ = conn.Close()
		return &MCPResult{Reason: MCPHTTPError, Detail: fmt.Sprintf("setting the deadline: %v", err)}
	}
	h := newMCPHTTP(t, conn, deadline, res.Verified, token)
	out := t.mcp.handshake(ctx, h)
	// A further connection that failed TLS explains whatever failed after it.
	if _, _, tlsErr := h.furtherTLS(); tlsErr != nil && !out.Up {
		out.Reason, out.HTTPStatus, out.Detail = MCPTLSFailed, 0, tlsErr.Error()
	}
	if out.Reason == MCPAuthRequired && out.HTTPStatus == 401 {
		checkAuthMetadata(ctx, h, out)
	}
	h.close()
	certs, dials, _ := h.furtherTLS()
	res.Certificates = mergeCerts(res.Certificates, certs)
	out.Connections = 1 + dials
	out.Duration = time.Since(start)
	out.Detail = clean(redact(out.Detail, token), 1024)
	out.AuthDetail = clean(redact(out.AuthDetail, token), 1024)
	return out
}

// handshake tries the configured transport; auto tries Streamable HTTP and
// falls back to SSE when the POST answered 400, 404 or 405. The SSE attempt
// is reported if an SSE stream answered or the attempt ran out of time (a
// buffering proxy holds the stream back); otherwise the Streamable failure
// is, with the SSE attempt in its detail.
func (m *mcpTarget) handshake(ctx context.Context, h *mcpHTTP) *MCPResult {
	if m.transport == config.TransportSSE {
		return m.sseOnly(ctx, h)
	}
	first := m.attempt(ctx, h, TransportStreamable)
	if m.transport == config.TransportStreamable || first.Up || !postRejected(first) {
		return first
	}
	mark := h.mark()
	second := m.attempt(ctx, h, TransportSSE)
	if second.Up || second.Reason == MCPTimeout || sseAnswered(h.since(mark)) {
		return second
	}
	first.Detail += "; SSE fallback: " + second.Detail
	return first
}

// sseOnly speaks legacy SSE, as configured. A legacy server sends its
// endpoint event as soon as the stream opens, so a stream that has not sent
// a byte by half the time left is given up. When the SSE attempt failed so
// (or at once, short of 401/403 or TLS), one Streamable HTTP attempt with the
// rest of the time tells a server that speaks the other transport
// (TRANSPORT_MISMATCH) from a slow one or a buffering proxy (the SSE failure).
func (m *mcpTarget) sseOnly(ctx context.Context, h *mcpHTTP) *MCPResult {
	deadline, _ := ctx.Deadline()
	wait := time.Until(deadline) / 2
	sseCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	mark := h.mark()
	silent := time.AfterFunc(wait, func() {
		if !streamStarted(h.since(mark)) {
			cancel()
		}
	})
	r := m.attempt(sseCtx, h, TransportSSE)
	cutShort := !silent.Stop() && sseCtx.Err() != nil && ctx.Err() == nil
	if cutShort {
		r.Detail = fmt.Sprintf("the SSE stream sent nothing within %s (half the time left); %s", wait.Round(time.Millisecond), r.Detail)
	}
	if r.Up || r.Reason == MCPAuthRequired || r.Reason == MCPTLSFailed || ctx.Err() != nil ||
		(!cutShort && sseAnswered(h.since(mark))) {
		return r
	}
	other := m.attempt(ctx, h, TransportStreamable)
	if !other.Up {
		r.Detail += "; Streamable HTTP did not answer either: " + other.Detail
		return r
	}
	other.Detail = fmt.Sprintf("transport sse failed (%s), but the server completed the handshake over Streamable HTTP "+
		"(protocol %s, server %q): set mcp.transport to streamable or auto%s", r.Detail, other.ProtocolVersion, other.ServerName,
		prefixed("; ", other.Detail))
	// Not up: what answered is not what is configured. The server's
	// name and version are in the detail, not in mcp_server_info.
	other.Up, other.Reason, other.Transport = false, MCPTransportMismatch, TransportSSE
	other.ProtocolVersion, other.ServerName, other.ServerVersion = "", "", ""
	return other
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// streamStarted is true when an SSE GET's body has delivered a byte.
func streamStarted(ex []exchange) bool {
	return slices.ContainsFunc(ex, func(e exchange) bool { return e.method == "GET" && e.read > 0 })
}

// postRejected is a Streamable HTTP POST that the server refused as a
// method or path it does not serve.
func postRejected(r *MCPResult) bool {
	switch r.HTTPStatus {
	case 400, 404, 405:
		return r.Reason != MCPAuthRequired && r.Reason != MCPSessionLost
	}
	return false
}

// sseAnswered is true when the SSE GET opened an event stream.
func sseAnswered(ex []exchange) bool {
	return len(ex) > 0 && ex[0].method == "GET" && ex[0].ok() && ex[0].contentType == "text/event-stream"
}

// attempt connects over one transport: server/discover or initialize, then
// notifications/initialized, then closing the session. Nothing else.
func (m *mcpTarget) attempt(ctx context.Context, h *mcpHTTP, transport string) *MCPResult {
	mark := h.mark()
	var tr mcp.Transport
	opts := &mcp.ClientSessionOptions{}
	switch transport {
	case TransportSSE:
		tr = &mcp.SSEClientTransport{Endpoint: m.url.String(), HTTPClient: h.client, MaxEventSize: maxEventBytes}
		opts.ProtocolVersion = sseProtocolVersion
	default:
		tr = &mcp.StreamableClientTransport{
			Endpoint: m.url.String(), HTTPClient: h.client, MaxEventSize: maxEventBytes,
			MaxRetries: -1, DisableStandaloneSSE: true, // no retries, no stream we would not read
		}
	}
	r := &MCPResult{Transport: transport}
	cs, err := m.client.Connect(ctx, tr, opts)
	if err == nil {
		r.Up = true
		fillServer(r, cs.InitializeResult())
		r.Session = cs.ID() != ""
		if err := cs.Close(); err != nil {
			// The handshake completed; the detail says the session may linger.
			r.Detail = "closing the session: " + err.Error()
		}
	}
	ex := h.since(mark)
	r.DeleteStatus = deleteStatus(ex)
	if !r.Up {
		r.Reason, r.HTTPStatus, r.Detail = classify(ctx, err, ex)
		r.Session = slices.ContainsFunc(ex, func(e exchange) bool { return e.sessionSet })
		if r.Session && r.Reason != MCPSessionLost && (r.DeleteStatus < 200 || r.DeleteStatus > 299) {
			r.Detail += "; the session the server assigned could not be closed: " + deleteText(ex)
		}
	}
	return r
}

// deleteText says what became of the DELETE that should have ended a session.
func deleteText(ex []exchange) string {
	for _, e := range ex {
		if e.method == "DELETE" {
			return e.String()
		}
	}
	return "no DELETE was sent"
}

func fillServer(r *MCPResult, init *mcp.InitializeResult) {
	if init == nil {
		return
	}
	r.ProtocolVersion = clean(init.ProtocolVersion, 32)
	if si := init.ServerInfo; si != nil {
		r.ServerName, r.ServerVersion = clean(si.Name, 128), clean(si.Version, 64)
	}
}

func deleteStatus(ex []exchange) int {
	for _, e := range ex {
		if e.method == "DELETE" {
			return e.status
		}
	}
	return 0
}

// mergeCerts appends the certificates of more that list does not hold yet,
// by fingerprint.
func mergeCerts(list, more []CertInfo) []CertInfo {
	for _, c := range more {
		seen := false
		for _, have := range list {
			seen = seen || have.FingerprintSHA256 == c.FingerprintSHA256
		}
		if !seen {
			list = append(list, c)
		}
	}
	return list
}

// redact removes the token from text that may reach logs or the status
// page, should any error ever quote it.
func redact(text, token string) string {
	if token == "" {
		return text
	}
	return strings.ReplaceAll(text, token, "<redacted>")
}

// clean makes a server-supplied string safe for labels and pages: valid
// UTF-8, bounded.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
