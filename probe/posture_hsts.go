package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// HSTSResult is the Strict-Transport-Security header of a url endpoint.
type HSTSResult struct {
	Status  int  // HTTP status of the response the header was read from
	Present bool // the header was sent
	// Valid is false for a header that clients ignore (RFC 6797 6.1:
	// no max-age, a repeated directive, a malformed value).
	Valid             bool
	MaxAge            int64 // seconds; 0 when absent or invalid
	IncludeSubDomains bool
	Preload           bool
}

// hsts sends one GET to the endpoint's URL (see get), reads the response
// headers and closes the body unread.
func (s *scan) hsts(ctx context.Context) {
	const check = "hsts"
	if s.skip(check) {
		return
	}
	a, err := s.t.get(ctx, "HSTS", false)
	if err != nil {
		s.res.Unknown = append(s.res.Unknown, UnknownCheck{Check: check, Reason: err.reason, Detail: err.Error()})
		return
	}
	r := ParseHSTS(a.header.Values("Strict-Transport-Security"))
	r.Status = a.status
	s.res.HSTS = r
}

// getError carries the reason of the handshake that failed, when one did.
type getError struct {
	reason Reason
	err    error
}

func (e *getError) Error() string { return e.err.Error() }

// answer is the start of the answer to get.
type answer struct {
	status int
	header http.Header
	body   []byte // at most maxAnswerBody bytes, and nothing of an event stream
}

// maxAnswerBody is enough for an error page's message (nginx's 400 page is
// under 300 bytes).
const maxAnswerBody = 1 << 10

// get sends one GET to the endpoint's URL over the target's own TLS
// settings, for the checks that need HTTP (HSTS, mTLS enforced by a proxy).
// GET with Accept: text/event-stream is the one GET the MCP specification
// defines (a server either opens an SSE stream or answers 405), so it has no
// side effects; no credentials are sent and redirects are not followed. Only
// the headers are read, and with body the start of a body that is not an
// event stream.
func (t *Target) get(ctx context.Context, what string, body bool) (*answer, *getError) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	failed := &getError{reason: ReasonHTTPError}
	client := &http.Client{
		Transport: &http.Transport{
			Proxy: nil, // only the configured target, never a proxy from the environment
			DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				conn, res := t.Handshake(ctx, t.mcpTLSConfig())
				if conn == nil {
					failed.reason = res.Reason
					return nil, fmt.Errorf("%s: %s", res.Reason, res.Detail)
				}
				return conn, nil
			},
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: maxHeaderBytes,
		},
		CheckRedirect: noRedirects,
	}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.Endpoint.URL, nil)
	if err != nil {
		return nil, &getError{reason: ReasonHTTPError, err: fmt.Errorf("%s request to %s: %w", what, t.Endpoint.URL, err)}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", userAgent())
	resp, err := client.Do(req)
	if err != nil {
		if isTimeout(err) && failed.reason == ReasonHTTPError {
			failed.reason = ReasonTimeout
		}
		failed.err = fmt.Errorf("%s request to %s: %w", what, t.Endpoint.URL, err)
		return nil, failed
	}
	defer resp.Body.Close() // an SSE stream would never end, so it is never read to its end
	a := &answer{status: resp.StatusCode, header: resp.Header}
	if body && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// A short or cut body still names the refusal; the read error adds nothing.
		a.body, _ = io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
	}
	return a, nil
}

// ParseHSTS reads the first Strict-Transport-Security header, the only one a
// client heeds (RFC 6797 8.1).
func ParseHSTS(values []string) *HSTSResult {
	r := &HSTSResult{Present: len(values) > 0}
	if !r.Present {
		return r
	}
	seen := map[string]bool{}
	for _, d := range strings.Split(values[0], ";") {
		name, value, hasValue := strings.Cut(strings.TrimSpace(d), "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		if seen[name] {
			return &HSTSResult{Present: true} // a repeated directive voids the header
		}
		seen[name] = true
		switch name {
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(value), `"`), 10, 64)
			if !hasValue || err != nil || n < 0 {
				return &HSTSResult{Present: true}
			}
			r.MaxAge = n
		case "includesubdomains":
			r.IncludeSubDomains = true
		case "preload":
			r.Preload = true
		}
	}
	r.Valid = seen["max-age"]
	if !r.Valid {
		r.MaxAge, r.IncludeSubDomains, r.Preload = 0, false, false
	}
	return r
}
