// Package probe does one thing to one endpoint: a TLS handshake, the MCP
// exchange after it, or a posture scan. It returns plain result structs
// that the collector caches and renders; certificate files are certfile's.
package probe

import (
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// Certificate roles.
const (
	RoleLeaf         = "leaf"
	RoleIntermediate = "intermediate"
	RoleRoot         = "root"
)

// CertInfo is what we keep of one certificate: plain values only, so that
// thousands of cached results stay small.
type CertInfo struct {
	Role               string
	SubjectCN          string
	IssuerCN           string
	Serial             string
	NotBefore          time.Time
	NotAfter           time.Time
	FingerprintSHA256  string // hex
	SPKISHA256         string // base64, as pins are written
	SANs               []string
	KeyType            string // RSA, ECDSA, Ed25519
	KeyBits            int
	SignatureAlgorithm string

	// Findings are the quality problems of the certificate itself and, on
	// an endpoint's leaf, of the chain it came in; policy.CertFindings adds those
	// that depend on the policy.
	Findings []Finding
}

// Phases is the time spent in each step of an endpoint probe.
type Phases struct {
	DNS       time.Duration
	Connect   time.Duration
	Handshake time.Duration
}

// TLSResult is the outcome of one endpoint probe.
type TLSResult struct {
	Time time.Time // when the probe started

	// Success is true when TCP connect and the TLS handshake completed,
	// whatever the verification result.
	Success bool
	// Verified is true when chain, hostname and validity all pass.
	Verified bool
	// InsecureSkipVerify echoes the endpoint's setting: a verification
	// failure is still reported but does not fail the endpoint.
	InsecureSkipVerify bool

	Reason Reason
	Detail string // the underlying error, for the status page and logs

	// alert is the TLS alert that ended a failed handshake: the peer's, or
	// protocol_version when the server answered with a version we did not
	// offer; 0 for none. Posture scans tell a refused version from a
	// refused set of suites by it.
	alert uint8

	Version     uint16 // tls.VersionTLS13 …; 0 when no handshake
	CipherSuite uint16

	Phases       Phases
	Certificates []CertInfo // leaf first, then intermediates as sent, then the verified root
	OCSP         *OCSPInfo  // the stapled OCSP response; nil when no certificate arrived

	// ClientCertRequested is true when the server sent a CertificateRequest.
	ClientCertRequested bool

	// MCP is the handshake spoken after TLS; nil for address endpoints and
	// for transport none.
	MCP *MCPResult

	// Limits left certificates out of Certificates.
	Limits []LimitReached
}

// Limit names a key of the config's limits: block.
type Limit string

// Limits reported as reached on a target.
const (
	LimitCertificatesPerFile  Limit = "certificates_per_file"
	LimitCertificatesPerChain Limit = "certificates_per_chain"
	LimitSANsPerCertificate   Limit = "sans_per_certificate"
)

// LimitReached says that a limit left something out of a result.
type LimitReached struct {
	Limit  Limit
	Detail string
}

// Trusted is whether the handshake's connection may carry requests: it
// completed and verified, or the endpoint waives verification
// (insecure_skip_verify). MCP is spoken only over trusted connections.
func (r *TLSResult) Trusted() bool { return r.Success && (r.Verified || r.InsecureSkipVerify) }

// Healthy is the one verdict on an endpoint's probe: what check exits on,
// what /status counts as failing and what refreshes_total calls a failure.
// TLS must be trusted, and MCP, when spoken, up, or refused with
// AUTH_REQUIRED by a protected server we hold no token for whose OAuth
// discovery works: reachable and protected, as it should be.
func (r *TLSResult) Healthy(ep *config.Endpoint) bool {
	if !r.Trusted() {
		return false
	}
	m := r.MCP
	if m == nil || m.Up {
		return true
	}
	return m.Reason == MCPAuthRequired && ep.MCP.BearerTokenFile == "" && m.AuthMetadataValid != nil && *m.AuthMetadataValid
}
