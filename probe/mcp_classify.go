package probe

import (
	"context"
	"fmt"
	"slices"
)

// classify names why an attempt failed from what its HTTP exchanges met;
// the SDK's error only fills in the detail. First match wins:
//  1. a request that would have left the target: PROTOCOL_ERROR
//  2. an answer 401 or 403: AUTH_REQUIRED
//  3. a body past its size limit: PROTOCOL_ERROR
//  4. the deadline passed, or cut a request or a body: TIMEOUT
//  5. the last request got no answer: HTTP_ERROR
//  6. the last answer was 404 to a request carrying the session id the
//     server assigned: SESSION_LOST
//  7. the last answer was 404 or 405: NOT_MCP; 400 with a JSON body (a
//     JSON-RPC error): PROTOCOL_ERROR; any other non-2xx: HTTP_ERROR
//  8. a 2xx that is neither JSON nor an event stream: NOT_MCP
//  9. otherwise (malformed JSON-RPC, an error to initialize, an
//     unsupported version): PROTOCOL_ERROR
func classify(ctx context.Context, err error, ex []exchange) (MCPReason, int, string) {
	for _, e := range ex {
		if e.refused != "" {
			return MCPProtocolError, 0, e.String()
		}
	}
	for _, e := range ex {
		if e.status == 401 || e.status == 403 {
			return MCPAuthRequired, e.status, e.String()
		}
	}
	for _, e := range ex {
		if e.tooLarge {
			return MCPProtocolError, e.status, fmt.Sprintf("%s with a body past the limit (%d bytes for JSON, %d for an event stream)",
				e.String(), maxJSONBody, maxStreamBody)
		}
	}
	last := lastRequest(ex)
	if ctx.Err() != nil || (err != nil && isTimeout(err)) || slices.ContainsFunc(ex, func(e exchange) bool { return e.timedOut }) {
		detail := "the MCP handshake did not finish within the endpoint's timeout"
		if last != nil {
			detail += "; last: " + last.String()
		}
		return MCPTimeout, 0, detail
	}
	if last == nil {
		return MCPProtocolError, 0, errText(err)
	}
	switch {
	case last.err != nil:
		return MCPHTTPError, 0, last.String()
	case last.status == 404 && last.sessionSent:
		return MCPSessionLost, last.status, last.String() + " to a request carrying the session id that initialize assigned"
	case last.status == 404 || last.status == 405:
		return MCPNotMCP, last.status, last.String()
	case last.status == 400 && last.contentType == "application/json":
		return MCPProtocolError, last.status, last.String() + ": " + errText(err)
	case last.status >= 300 && last.status < 400:
		return MCPHTTPError, last.status, last.String() + " (redirects are not followed: configure the final URL)"
	case !last.ok():
		return MCPHTTPError, last.status, last.String()
	case !mcpContent(last):
		return MCPNotMCP, last.status, fmt.Sprintf("%s with Content-Type %q, not MCP", last.String(), last.contentType)
	}
	return MCPProtocolError, 0, errText(err)
}

// lastRequest is the last exchange other than the DELETE that ends a session.
func lastRequest(ex []exchange) *exchange {
	for i := len(ex) - 1; i >= 0; i-- {
		if ex[i].method != "DELETE" {
			return &ex[i]
		}
	}
	return nil
}

// mcpContent is true for what an MCP server sends: JSON or an event stream
// to a POST, an event stream to a GET, nothing with 202 or 204.
func mcpContent(e *exchange) bool {
	switch {
	case e.status == 202 || e.status == 204:
		return true
	case e.contentType == "text/event-stream":
		return true
	}
	return e.method == "POST" && e.contentType == "application/json"
}

func errText(err error) string {
	if err == nil {
		return "no error reported"
	}
	return err.Error()
}
