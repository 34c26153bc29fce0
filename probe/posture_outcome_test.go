package probe

import (
	"crypto/tls"
	"testing"
)

// TestOutcomes: a version is refused only when the server says so; any
// other end of the handshake is unknown, never refused.
func TestOutcomes(t *testing.T) {
	const v = tls.VersionTLS11
	for _, tc := range []struct {
		name           string
		res            TLSResult
		version, suite outcome
	}{
		{"answered with the version", TLSResult{Version: v}, outcomeAccepted, outcomeAccepted},
		{"protocol_version", TLSResult{alert: alertProtocolVersion, Reason: ReasonNoSharedCipher}, outcomeRefused, outcomeUnknown},
		{"handshake_failure", TLSResult{alert: alertHandshakeFailure, Reason: ReasonNoSharedCipher}, outcomeUnknown, outcomeRefused},
		{"insufficient_security", TLSResult{alert: alertInsufficientSecurity, Reason: ReasonNoSharedCipher}, outcomeUnknown, outcomeRefused},
		{"closed without a word", TLSResult{Reason: ReasonHandshakeFailure}, outcomeUnknown, outcomeUnknown},
		{"reset", TLSResult{Reason: ReasonConnectionReset}, outcomeUnknown, outcomeUnknown},
		{"timeout", TLSResult{Reason: ReasonTimeout}, outcomeUnknown, outcomeUnknown},
	} {
		if got := versionOutcome(&tc.res, v); got != tc.version {
			t.Errorf("%s: version outcome %d, want %d", tc.name, got, tc.version)
		}
		if got := suiteOutcome(&tc.res, v); got != tc.suite {
			t.Errorf("%s: suite outcome %d, want %d", tc.name, got, tc.suite)
		}
	}
}

// TestEnforcedAtHTTP judges the GET without a client certificate against
// the same GET with one.
func TestEnforcedAtHTTP(t *testing.T) {
	nginx := &answer{status: 400, body: []byte("<center>No required SSL certificate was sent</center>")}
	for _, tc := range []struct {
		name            string
		without, with   *answer
		enforced, known bool
	}{
		{"served without", &answer{status: 200}, nil, false, true},
		{"405 without", &answer{status: 405}, nil, false, true},
		{"nginx page, no certificate of ours", nginx, nil, true, true},
		{"nginx page", nginx, &answer{status: 400, body: []byte("GET requires a session")}, true, true},
		{"403 without, 200 with", &answer{status: 403}, &answer{status: 200}, true, true},
		{"401 without, 405 with", &answer{status: 401}, &answer{status: 405}, true, true},
		{"same refusal with and without", &answer{status: 400, body: []byte("no session")},
			&answer{status: 400, body: []byte("no session")}, false, true},
		{"401 without, no certificate of ours", &answer{status: 401}, nil, false, false},
		{"same status, other body", &answer{status: 403, body: []byte("a")}, &answer{status: 403, body: []byte("b")}, false, false},
	} {
		enforced, known := enforcedAtHTTP(tc.without, tc.with)
		if enforced != tc.enforced || known != tc.known {
			t.Errorf("%s: enforced %v known %v, want %v %v", tc.name, enforced, known, tc.enforced, tc.known)
		}
	}
}
