package probe

import (
	"context"
	"fmt"
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

// reasonHTTPError: the TLS handshake worked but HTTP did not.
const reasonHTTPError Reason = "HTTP_ERROR"

// hsts sends one GET to the endpoint's URL over the target's own TLS
// settings, reads the response headers and closes the body unread. GET with
// Accept: text/event-stream is the one GET the MCP specification defines (a
// server either opens an SSE stream or answers 405), so it has no side
// effects; no credentials are sent and redirects are not followed.
func (s *scan) hsts(ctx context.Context) {
	const check = "hsts"
	if s.skip(check) {
		return
	}
	r, err := s.t.fetchHSTS(ctx)
	if err != nil {
		s.res.Unknown = append(s.res.Unknown, UnknownCheck{Check: check, Reason: err.reason, Detail: err.Error()})
		return
	}
	s.res.HSTS = r
}

// hstsError carries the reason of the handshake that failed, when one did.
type hstsError struct {
	reason Reason
	err    error
}

func (e *hstsError) Error() string { return e.err.Error() }

func (t *Target) fetchHSTS(ctx context.Context) (*HSTSResult, *hstsError) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	failed := &hstsError{reason: reasonHTTPError}
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
		return nil, &hstsError{reason: reasonHTTPError, err: fmt.Errorf("HSTS request to %s: %w", t.Endpoint.URL, err)}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", userAgent())
	resp, err := client.Do(req)
	if err != nil {
		if isTimeout(err) && failed.reason == reasonHTTPError {
			failed.reason = ReasonTimeout
		}
		failed.err = fmt.Errorf("HSTS request to %s: %w", t.Endpoint.URL, err)
		return nil, failed
	}
	// Only the headers matter, and an SSE stream would never end.
	_ = resp.Body.Close()
	r := ParseHSTS(resp.Header.Values("Strict-Transport-Security"))
	r.Status = resp.StatusCode
	return r, nil
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
