package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
)

// TLS alert codes (RFC 8446 section 6, RFC 5246 section 7.2).
const (
	alertHandshakeFailure       = 40
	alertBadCertificate         = 42
	alertUnsupportedCertificate = 43
	alertCertificateRevoked     = 44
	alertCertificateExpired     = 45
	alertCertificateUnknown     = 46
	alertUnknownCA              = 48
	alertAccessDenied           = 49
	alertProtocolVersion        = 70
	alertInsufficientSecurity   = 71
	alertCertificateRequired    = 116
)

// dialReason names a failure to resolve or connect. Every DNS error is a
// DNS_FAILURE, a timed-out lookup too: the remedy is at the resolver.
func dialReason(err error) Reason {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return ReasonDNSFailure
	case isTimeout(err):
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNRESET):
		return ReasonConnectionReset
	default:
		// Refused, and also unreachable networks and hosts: nothing
		// accepted the connection. Detail holds the exact error.
		return ReasonConnectionRefused
	}
}

// handshakeReason names a failed TLS handshake. certRequested tells a
// handshake_failure alert caused by a missing client certificate (OpenSSL
// sends that under TLS 1.2) from one caused by versions or ciphers.
func handshakeReason(err error, certRequested bool) Reason {
	var recordErr tls.RecordHeaderError
	var certErr *clientCertError
	switch {
	case isTimeout(err):
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNRESET):
		return ReasonConnectionReset
	case errors.As(err, &recordErr):
		return ReasonNotTLS
	case errors.As(err, &certErr):
		return ReasonClientCertRequired
	}
	if a, ok := alertOf(err); ok {
		return alertReason(a, certRequested)
	}
	// Errors our side raised with an alert of its own.
	msg := err.Error()
	if strings.Contains(msg, "unsupported protocol version") || strings.Contains(msg, "unconfigured cipher suite") {
		return ReasonNoSharedCipher
	}
	// A peer that hangs up without a word (EOF) lands here too: that is
	// how many servers end a handshake they dislike.
	return ReasonHandshakeFailure
}

// refusalAlert is the alert that ended the handshake: the peer's, or
// protocol_version when the server picked a version we did not offer (our
// side sends that alert then); 0 when the handshake ended otherwise.
func refusalAlert(err error) uint8 {
	if a, ok := alertOf(err); ok {
		return a
	}
	if strings.Contains(err.Error(), "server selected unsupported protocol version") {
		return alertProtocolVersion
	}
	return 0
}

func alertReason(a uint8, certRequested bool) Reason {
	switch a {
	case alertProtocolVersion, alertInsufficientSecurity:
		return ReasonNoSharedCipher
	case alertHandshakeFailure:
		if certRequested {
			return ReasonClientCertRequired
		}
		return ReasonNoSharedCipher
	case alertBadCertificate, alertUnsupportedCertificate, alertCertificateRevoked, alertCertificateExpired,
		alertCertificateUnknown, alertUnknownCA, alertAccessDenied, alertCertificateRequired:
		return ReasonClientCertRequired
	default:
		return ReasonHandshakeFailure
	}
}

// alertOf finds an alert the peer sent. crypto/tls reports a received alert
// as a *net.OpError with Op "remote error" around its unexported alert type
// (a uint8); tls.AlertError only wraps alerts on QUIC connections, so both
// are looked for.
func alertOf(err error) (uint8, bool) {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return uint8(ae), true
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	if v := reflect.ValueOf(op.Err); v.Kind() == reflect.Uint8 {
		return uint8(v.Uint()), true
	}
	return 0, false
}

// isTimeout also counts a cancelled probe: it was cut short like a timed-out
// one, and only happens when the exporter stops.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// clientCertError is a failure to load our own client certificate when the
// server asked for one: the server demanded a certificate we cannot offer.
type clientCertError struct{ err error }

func (e *clientCertError) Error() string { return e.err.Error() }
func (e *clientCertError) Unwrap() error { return e.err }
