package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// PostureResult is the outcome of one posture scan of an endpoint. A check
// that could not run is listed in Unknown and is never reported as passed.
type PostureResult struct {
	Time     time.Time
	Duration time.Duration

	Versions []VersionResult // the versions tested, ascending; an untested one is absent
	Suites   []SuiteResult   // accepted suites, by version ascending

	// ClientCertRequired is whether the server refuses a handshake without a
	// client certificate; nil when not checked or unknown.
	ClientCertRequired *bool
	HSTS               *HSTSResult // nil for address endpoints, or when unknown

	Unknown []UnknownCheck
}

// VersionResult is one protocol version offered alone.
type VersionResult struct {
	Version  uint16
	Accepted bool
}

// SuiteResult is one cipher suite the server accepted at one version.
type SuiteResult struct {
	Version uint16
	Suite   uint16
	Secure  bool
}

// UnknownCheck is a check that could not run, with the reason of the
// handshake that stopped it.
type UnknownCheck struct {
	Check  string // version:TLS 1.0, ciphers:TLS 1.2, client_cert, hsts
	Reason Reason
	Detail string
}

// PostureOptions selects the optional checks.
type PostureOptions struct {
	// ClientCert tries a handshake without a client certificate. It is
	// meaningful for endpoints that hold one, or when policy requires mTLS.
	ClientCert bool
}

// PostureOptionsFor is the one place the optional checks of an endpoint are
// chosen, for the collector, /probe and check alike.
func PostureOptionsFor(ep *config.Endpoint, pol config.Policy) PostureOptions {
	return PostureOptions{ClientCert: ep.TLSConfig.CertFile != "" || pol.RequireClientCert}
}

// scanVersions are tried newest first, so that when a server stops
// answering the versions that matter most are already known. Go has no
// SSLv3 or SSLv2: those are never tested.
var scanVersions = []uint16{tls.VersionTLS13, tls.VersionTLS12, tls.VersionTLS11, tls.VersionTLS10}

// Posture scans the endpoint: each TLS version alone, the cipher suites of
// each accepted TLS 1.0–1.2 version, optionally a handshake without a client
// certificate, and the HSTS header of url endpoints. Handshakes run one after
// the other, each within the endpoint's timeout; once the server stops
// answering (refused connection, timeout) the rest is reported unknown
// rather than waited for.
func (t *Target) Posture(ctx context.Context, opts PostureOptions) *PostureResult {
	s := &scan{t: t, res: &PostureResult{Time: time.Now()}}
	accepted := s.protocols(ctx)
	for _, v := range scanVersions {
		if first, ok := accepted[v]; ok && v != tls.VersionTLS13 {
			s.ciphers(ctx, v, first)
		}
	}
	if opts.ClientCert {
		s.clientCert(ctx)
	}
	if t.Endpoint.URL != "" {
		s.hsts(ctx)
	}
	slices.SortFunc(s.res.Versions, func(a, b VersionResult) int { return int(a.Version) - int(b.Version) })
	slices.SortStableFunc(s.res.Suites, func(a, b SuiteResult) int { return int(a.Version) - int(b.Version) })
	s.res.Duration = time.Since(s.res.Time)
	return s.res
}

type scan struct {
	t   *Target
	res *PostureResult
	// stopped is the check after which the server stopped answering.
	stopped *UnknownCheck
}

// protocols offers each version alone, with every suite Go has, and returns
// the suite chosen at each accepted version.
func (s *scan) protocols(ctx context.Context) map[uint16]uint16 {
	accepted := map[uint16]uint16{}
	for _, v := range scanVersions {
		check := "version:" + tls.VersionName(v)
		if s.skip(check) {
			continue
		}
		res, out := s.try(ctx, v, nil)
		switch out {
		case outcomeAccepted:
			accepted[v] = res.CipherSuite
			s.res.Versions = append(s.res.Versions, VersionResult{Version: v, Accepted: true})
			if v == tls.VersionTLS13 {
				// TLS 1.3 suites cannot be offered one by one: report the one chosen.
				s.res.Suites = append(s.res.Suites, SuiteResult{Version: v, Suite: res.CipherSuite, Secure: true})
			}
		case outcomeRefused:
			s.res.Versions = append(s.res.Versions, VersionResult{Version: v})
		default:
			if res.alert == alertHandshakeFailure {
				res.Detail = "the server answered handshake_failure, not protocol_version: it may accept " + tls.VersionName(v) +
					" with suites Go lacks (DHE, Camellia, ARIA, CCM); check with openssl s_client. " + res.Detail
			}
			s.unknown(check, res)
		}
	}
	return accepted
}

// ciphers finds every suite accepted at version v by elimination: offer all
// suites not yet found, record the one the server picks, and repeat until it
// refuses. This finds the same set as offering each suite alone in one
// handshake per accepted suite plus one, instead of one per suite Go has.
func (s *scan) ciphers(ctx context.Context, v, first uint16) {
	check := "ciphers:" + tls.VersionName(v)
	left := suitesFor(v)
	for suite := first; ; {
		if !slices.Contains(left, suite) {
			// crypto/tls refuses a suite it did not offer, so this cannot loop.
			s.res.Unknown = append(s.res.Unknown, UnknownCheck{Check: check, Reason: ReasonHandshakeFailure,
				Detail: fmt.Sprintf("the server chose %s twice", tls.CipherSuiteName(suite))})
			return
		}
		s.res.Suites = append(s.res.Suites, SuiteResult{Version: v, Suite: suite, Secure: SuiteSecure(suite)})
		left = slices.DeleteFunc(slices.Clone(left), func(id uint16) bool { return id == suite })
		if len(left) == 0 || s.skip(check) {
			return
		}
		res, out := s.try(ctx, v, left)
		switch out {
		case outcomeAccepted:
			suite = res.CipherSuite
		case outcomeRefused:
			return
		default:
			s.unknown(check, res)
			return
		}
	}
}

// suitesFor lists the suites Go can offer at version v.
func suitesFor(v uint16) []uint16 {
	var ids []uint16
	for _, s := range slices.Concat(tls.CipherSuites(), tls.InsecureCipherSuites()) {
		if slices.Contains(offeredSuites, s.ID) && slices.Contains(s.SupportedVersions, v) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// SuiteSecure is false for a suite that is CBC-only, uses RSA key exchange
// (no forward secrecy), 3DES or RC4, or that Go itself lists as insecure.
func SuiteSecure(id uint16) bool {
	if slices.ContainsFunc(tls.InsecureCipherSuites(), func(s *tls.CipherSuite) bool { return s.ID == id }) {
		return false
	}
	name := tls.CipherSuiteName(id)
	for _, weak := range []string{"_CBC_", "3DES", "RC4"} {
		if strings.Contains(name, weak) {
			return false
		}
	}
	return !strings.HasPrefix(name, "TLS_RSA_")
}

// clientCert handshakes without a client certificate and waits for a TLS
// 1.3 server's verdict, as Probe does.
func (s *scan) clientCert(ctx context.Context) {
	const check = "client_cert"
	if s.skip(check) {
		return
	}
	bare, err := s.t.withoutClientCert()
	if err != nil {
		s.res.Unknown = append(s.res.Unknown, UnknownCheck{Check: check, Reason: ReasonHandshakeFailure, Detail: err.Error()})
		return
	}
	res := bare.bareVerdict(ctx)
	switch {
	case res.Reason == ReasonClientCertRequired:
		s.res.ClientCertRequired = ptr(true)
	case res.Success && s.t.Endpoint.URL != "":
		s.httpClientCert(ctx, bare)
	case res.Success:
		s.res.ClientCertRequired = ptr(false)
	default:
		s.unknown(check, res)
	}
}

// httpClientCert asks again at HTTP: nginx with ssl_verify_client on
// completes TLS without a client certificate and refuses the request with
// 400 "No required SSL certificate was sent", and other proxies answer 401
// or 403. The same GET with our certificate, when we have one, tells that
// refusal from one that has nothing to do with certificates.
func (s *scan) httpClientCert(ctx context.Context, bare *Target) {
	const check = "client_cert"
	without, err := bare.get(ctx, "mTLS", true)
	if err != nil {
		s.res.Unknown = append(s.res.Unknown, UnknownCheck{Check: check, Reason: err.reason, Detail: err.Error()})
		return
	}
	var with *answer
	if bare != s.t && refusedAtHTTP(without.status) && !certRefusalPage(without.body) {
		if with, err = s.t.get(ctx, "mTLS", true); err != nil {
			s.res.Unknown = append(s.res.Unknown, UnknownCheck{Check: check, Reason: err.reason, Detail: err.Error()})
			return
		}
	}
	enforced, known := enforcedAtHTTP(without, with)
	if !known {
		s.res.Unknown = append(s.res.Unknown, UnknownCheck{Check: check, Reason: ReasonHTTPError, Detail: fmt.Sprintf(
			"TLS completed without a client certificate and HTTP answered %d; that refusal may not be about the certificate", without.status)})
		return
	}
	s.res.ClientCertRequired = ptr(enforced)
}

// enforcedAtHTTP judges the GET without a client certificate and, when it
// was refused and we have a certificate, the same GET with it (nil
// otherwise). Enforced: refused without (400, 401, 403) and answered
// otherwise with, or refused with the proxy's page that names the missing
// certificate. Not enforced: answered without, or refused alike with and
// without. known is false when the refusal may have another cause.
func enforcedAtHTTP(without, with *answer) (enforced, known bool) {
	switch {
	case !refusedAtHTTP(without.status):
		return false, true
	case certRefusalPage(without.body):
		return true, true
	case with == nil:
		return false, false
	case with.status != without.status:
		return true, true
	case bytes.Equal(with.body, without.body):
		return false, true // the same refusal with or without: not about the certificate
	}
	return false, false
}

func refusedAtHTTP(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden
}

// certRefusalPage finds nginx's messages for a missing or rejected client
// certificate ("No required SSL certificate was sent", "The SSL certificate
// error") in an error page.
func certRefusalPage(body []byte) bool {
	b := bytes.ToLower(body)
	return bytes.Contains(b, []byte("no required ssl certificate")) || bytes.Contains(b, []byte("ssl certificate error"))
}

// withoutClientCert is the target with the same roots and name but no
// client certificate. It expects to be asked for one, so that a TLS 1.3
// server's session ticket ends the wait for its verdict early.
func (t *Target) withoutClientCert() (*Target, error) {
	if t.clientCert == nil {
		return t, nil
	}
	ep := *t.Endpoint // a copy: the target's may be the config's
	ep.TLSConfig.CertFile, ep.TLSConfig.KeyFile = "", ""
	bare, err := NewTarget(ep)
	if err != nil {
		return nil, fmt.Errorf("preparing a handshake without client certificate: %w", err)
	}
	bare.certRequests.Store(true)
	bare.allowAddr = t.allowAddr // the same guard for the same host
	return bare, nil
}

// bareVerdict is Probe's handshake and wait for the verdict, without the
// MCP exchange that Probe adds for url endpoints: only the TLS answer counts.
func (t *Target) bareVerdict(ctx context.Context) *TLSResult {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	conn, res := t.handshakeVerdict(ctx, nil)
	if conn != nil {
		_ = conn.Close() // the verdict is in res; a failed close_notify adds nothing
	}
	return res
}

func ptr[T any](v T) *T { return &v }

type outcome int

const (
	outcomeUnknown outcome = iota
	outcomeAccepted
	outcomeRefused
)

// try handshakes at version v alone, offering suites (nil: all Go has, and
// the outcome is the version's; else the suites').
func (s *scan) try(ctx context.Context, v uint16, suites []uint16) (*TLSResult, outcome) {
	cfg := s.t.TLSConfig()
	cfg.MinVersion, cfg.MaxVersion = v, v
	if suites != nil {
		cfg.CipherSuites = suites
	}
	conn, res := s.t.Handshake(ctx, cfg)
	if conn != nil {
		_ = conn.Close() // the verdict is in res; a failed close_notify adds nothing
	}
	if suites != nil {
		return res, suiteOutcome(res, v)
	}
	return res, versionOutcome(res, v)
}

// versionOutcome: the server accepted v when it answered with v, even if the
// handshake broke later (a refused client certificate). It refused v only
// when it said so: a protocol_version alert, or an answer with another
// version. Any other end (handshake_failure because it accepts v only with
// suites Go lacks, a close, a reset, a timeout) leaves v unknown: a version
// that looks refused would pass policy.min_version unseen.
func versionOutcome(res *TLSResult, v uint16) outcome {
	switch {
	case res.Version == v:
		return outcomeAccepted
	case res.alert == alertProtocolVersion:
		return outcomeRefused
	}
	return outcomeUnknown
}

// suiteOutcome: during the cipher scan at an accepted version, the server
// refuses the suites still offered with handshake_failure (no shared
// cipher) or insufficient_security; anything else is unknown.
func suiteOutcome(res *TLSResult, v uint16) outcome {
	switch {
	case res.Version == v:
		return outcomeAccepted
	case res.alert == alertHandshakeFailure || res.alert == alertInsufficientSecurity:
		return outcomeRefused
	}
	return outcomeUnknown
}

// unknown records a check that could not run; a server that does not answer
// at all stops the scan.
func (s *scan) unknown(check string, res *TLSResult) {
	u := UnknownCheck{Check: check, Reason: res.Reason, Detail: res.Detail}
	s.res.Unknown = append(s.res.Unknown, u)
	switch res.Reason {
	case ReasonTimeout, ReasonConnectionRefused, ReasonDNSFailure:
		s.stopped = &u
	}
}

// skip reports, and records as unknown, a check not run because the scan stopped.
func (s *scan) skip(check string) bool {
	if s.stopped == nil {
		return false
	}
	s.res.Unknown = append(s.res.Unknown, UnknownCheck{Check: check, Reason: s.stopped.Reason,
		Detail: "not run: the scan stopped after " + s.stopped.Check + " failed"})
	return true
}
