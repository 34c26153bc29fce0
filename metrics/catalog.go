// Package metrics is everything between a result and the exposition text.
// catalog.go lists every metric family the exporter serves (name, HELP,
// type and labels) as data; render*.go turn each kind of result into
// samples of those families; text.go encodes samples as cached text and
// writes it out, headers from the catalog. The docs tables, the metric
// contract and the alert and dashboard tests read the catalog, so a new
// metric is one entry there and one line in a render function.
package metrics

import (
	"cmp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// Type is a family's TYPE, as the text format writes it.
type Type string

// Family types.
const (
	Gauge     Type = "gauge"
	Counter   Type = "counter"
	Histogram Type = "histogram"
)

// Family is one metric family.
type Family struct {
	Name   string
	Help   string
	Type   Type
	Labels []string // in the order render functions give the values
	desc   *prometheus.Desc
	text   text
	index  uint16 // in all
	rank   uint16 // in name order
}

// Desc is the family as client_golang describes it.
func (f *Family) Desc() *prometheus.Desc { return f.desc }

// Series are the names of the series the family adds: a histogram's
// _bucket, _sum and _count.
func (f *Family) Series() []string {
	if f.Type == Histogram {
		return []string{f.Name + "_bucket", f.Name + "_sum", f.Name + "_count"}
	}
	return []string{f.Name}
}

var all []*Family

// All is every family, in the order of this file.
func All() []*Family { return slices.Clone(all) }

func add(typ Type, name, help string, labels []string) *Family {
	f := &Family{Name: name, Help: help, Type: typ, Labels: labels, desc: prometheus.NewDesc(name, help, labels, nil),
		text: textOf(name, help, typ, labels), index: uint16(len(all))}
	all = append(all, f)
	return f
}

func gauge(name, help string, labels []string) *Family { return add(Gauge, name, help, labels) }

// Every family is a package variable, so all is complete here: rank them
// once, and families are ordered by a number at every render and scrape.
func init() {
	byNames := slices.SortedFunc(slices.Values(all), func(a, b *Family) int { return cmp.Compare(a.Name, b.Name) })
	for i, f := range byNames {
		f.rank = uint16(i)
	}
}

const (
	cachedNote  = " Computed from the last cached refresh, not at scrape time."
	postureNote = " From the last cached posture scan (every posture_interval), not at scrape time."
)

var (
	certLabels     = []string{"target", "source", "path", "role", "subject_cn", "issuer_cn", "serial"}
	certInfoLabels = append(append([]string{}, certLabels...), "fingerprint_sha256", "sans", "key_type", "key_bits", "signature_algorithm")
)

// Families of configured targets, rendered from cached results.
var (
	CertExpiry = gauge("ssl_certificate_expiry_seconds",
		"Seconds until the certificate's NotAfter, negative once expired. Counted down at scrape time from the cached NotAfter; "+
			"the certificate itself comes from the last cached refresh.", certLabels)
	CertNotAfter = gauge("ssl_certificate_not_after_timestamp_seconds",
		"NotAfter of the certificate as a Unix timestamp."+cachedNote, certLabels)
	CertNotBefore = gauge("ssl_certificate_not_before_timestamp_seconds",
		"NotBefore of the certificate as a Unix timestamp."+cachedNote, certLabels)
	CertInfo = gauge("ssl_certificate_info",
		"Always 1; labels describe the certificate."+cachedNote, certInfoLabels)
	ProbeSuccess = gauge("ssl_probe_success",
		"1 if the TCP connect and the TLS handshake completed, whatever the verification result."+cachedNote, []string{"target"})
	CertVerified = gauge("ssl_certificate_verified",
		"1 if the chain, the hostname and the validity period all verified."+cachedNote, []string{"target"})
	InsecureSkip = gauge("ssl_insecure_skip_verify",
		"1 if the endpoint sets insecure_skip_verify: verification is still reported but its failure does not count.", []string{"target"})
	ProbeError = gauge("ssl_probe_error_info",
		"1 for the reason the last probe failed; absent when it did not. Reasons and remedies are in docs/reasons.md."+cachedNote,
		[]string{"target", "reason"})
	TLSVersion = gauge("ssl_tls_version_info",
		"1 for the TLS version negotiated by the last probe."+cachedNote, []string{"target", "version"})
	TLSCipher = gauge("ssl_tls_cipher_info",
		"1 for the cipher suite negotiated by the last probe, by Go's name."+cachedNote, []string{"target", "cipher"})
	ProbeDuration = gauge("ssl_probe_duration_seconds",
		"Time the last probe spent in each phase."+cachedNote, []string{"target", "phase"})
	LastRun = gauge("ssl_probe_last_run_timestamp_seconds",
		"When the last refresh of this target (endpoint probe or file read) started, as a Unix timestamp.", []string{"target"})
	RefreshInterval = gauge("ssl_probe_interval_seconds",
		"The configured refresh interval of this target, for staleness alerts.", []string{"target"})
	LimitReached = gauge("ssl_limit_reached_info",
		"1 for each limit (a key of the config's limits: block) that left certificates or SANs out of what this target "+
			"exports; path is empty for an endpoint."+cachedNote, []string{"target", "path", "limit"})
	FileError = gauge("ssl_file_error_info",
		"1 for a certificate file (or glob) that could not be used, with the reason."+cachedNote, []string{"target", "path", "reason"})
	MCPUp = gauge("mcp_up",
		"1 if the MCP handshake after TLS completed (initialize or server/discover answered)."+cachedNote, []string{"target"})
	MCPServerInfo = gauge("mcp_server_info",
		"Always 1; labels describe the MCP server as its handshake answered: transport (streamable or sse), the negotiated "+
			"protocol version and the server's name and version."+cachedNote,
		[]string{"target", "transport", "protocol_version", "server_name", "server_version"})
	MCPDuration = gauge("mcp_handshake_duration_seconds",
		"Time of the MCP exchange after TLS, closing the session included."+cachedNote, []string{"target"})
	MCPError = gauge("mcp_error_info",
		"1 for the reason the last MCP handshake failed; absent when it completed. Reasons and remedies are in docs/reasons.md."+cachedNote,
		[]string{"target", "reason"})
	MCPBearerToken = gauge("mcp_bearer_token_configured",
		"1 if the endpoint sends a bearer token (mcp.bearer_token_file is set), 0 if not; only for endpoints that speak MCP. "+
			"AUTH_REQUIRED with a token configured means the server refused it.", []string{"target"})
	MCPAuthMetadataValid = gauge("mcp_auth_metadata_valid",
		"Only for servers that answered 401: 1 if their OAuth discovery (WWW-Authenticate resource_metadata and RFC 9728 "+
			"protected-resource metadata with authorization_servers) is well-formed, or clients of MCP 2025-03-26 can log in "+
			"(see mcp_auth_metadata_legacy)."+cachedNote, []string{"target"})
	MCPAuthMetadataLegacy = gauge("mcp_auth_metadata_legacy",
		"Only with mcp_auth_metadata_valid: 1 if clients can log in only through MCP 2025-03-26 discovery (no RFC 9728 "+
			"document, RFC 8414 authorization-server metadata at the host's root): working, but pre-2025-06-18."+cachedNote,
		[]string{"target"})
	VersionAccepted = gauge("ssl_tls_version_accepted",
		"1 if the server completed a handshake offering only this TLS version, 0 if it refused it; absent when the version "+
			"could not be tested (SSLv3 never can: Go lacks it)."+postureNote, []string{"target", "version"})
	SuiteAccepted = gauge("ssl_cipher_suite_accepted",
		"1 for each cipher suite the server accepted at this version, by Go's name; secure is false for CBC, RSA key exchange, "+
			"3DES and RC4. TLS 1.3 shows only the suite the server chose."+postureNote,
		[]string{"target", "version", "cipher", "secure"})
	ClientCertRequired = gauge("ssl_client_cert_required",
		"For endpoints with a client certificate configured: 1 if the server refuses a handshake without one, 0 if it "+
			"completes it; absent when unknown."+postureNote, []string{"target"})
	CertFinding = gauge("ssl_certificate_finding_info",
		"1 for each quality finding of a certificate (WEAK_KEY, WEAK_SIGNATURE, NO_SAN, VALIDITY_TOO_LONG, SELF_SIGNED, "+
			"CHAIN_ORDER, INCOMPLETE_CHAIN, MUST_STAPLE_MISSING). Remedies are in docs/posture.md."+cachedNote,
		[]string{"target", "source", "path", "role", "serial", "finding"})
	OCSPStapled = gauge("ssl_ocsp_stapled",
		"1 if the server stapled an OCSP response to its certificate."+cachedNote, []string{"target"})
	OCSPStatus = gauge("ssl_ocsp_status_info",
		"1 for the status of the stapled OCSP response: good, revoked or unknown once its signature checked against the "+
			"issuer, else invalid or unverified; absent when nothing was stapled."+cachedNote, []string{"target", "status"})
	OCSPNextUpdate = gauge("ssl_ocsp_next_update_timestamp_seconds",
		"NextUpdate of the stapled OCSP response as a Unix timestamp, when its signature checked out."+cachedNote,
		[]string{"target"})
	LastChange = gauge("ssl_certificate_last_change_timestamp_seconds",
		"When the endpoint's leaf fingerprint last changed between two probes, as a Unix timestamp; before any change is "+
			"seen, the leaf's NotBefore.", []string{"target"})
	PinMatch = gauge("ssl_certificate_pin_match",
		"1 if a public key of the served chain (or the verified root) matches one of the endpoint's pin_sha256 values; present only when pins are "+
			"configured."+cachedNote, []string{"target"})
	HSTSMaxAge = gauge("ssl_hsts_max_age_seconds",
		"max-age of the Strict-Transport-Security header of a url endpoint; 0 when there is no valid header."+postureNote,
		[]string{"target"})
	PolicyViolation = gauge("ssl_policy_violation_info",
		"1 for each policy rule (a key under policy:) the target breaches. Rules and remedies are in docs/posture.md.",
		[]string{"target", "rule"})
	PostureLastRun = gauge("ssl_posture_last_run_timestamp_seconds",
		"When the last posture scan of this target (an endpoint's scan, a file group's key check) started, as a Unix timestamp.",
		[]string{"target"})
	KeyMatches = gauge("ssl_private_key_matches_certificate",
		"1 if the private key file belongs to the certificate it is paired with (its own file, key_pairs, the same name "+
			"stem, or else a certificate of the group with its public key), 0 if not; absent when the key could not be read or "+
			"belongs to no certificate of the group."+postureNote, []string{"target", "path"})
	KeyInsecure = gauge("ssl_private_key_insecure_permissions",
		"1 if the private key file is readable by its group or by others, or is not a regular file."+postureNote,
		[]string{"target", "path"})
	PostureUnknown = gauge("ssl_posture_check_unknown_info",
		"1 for each posture check the last scan could not run, with the reason; its metric is then absent, never passed."+postureNote,
		[]string{"target", "check", "reason"})
	TargetFileOK = gauge("mcp_cert_exporter_target_file_last_load_successful",
		"1 if the last read of this target_files file parsed; 0 if not, and its previous targets are kept.", []string{"path"})
	TargetFileTargets = gauge("mcp_cert_exporter_target_file_targets",
		"Endpoints taken from this target_files file.", []string{"path"})
	TargetFileRejected = gauge("mcp_cert_exporter_target_file_rejected_targets",
		"Targets of this target_files file that were not probed: malformed, outside the module's allowed_targets, of an "+
			"unknown module, or a name already in use. The log says which and why.", []string{"path"})
)

// The exporter's own families.
var (
	RefreshDuration = add(Histogram, "mcp_cert_exporter_refresh_duration_seconds",
		"Wall time of each refresh: one endpoint probe, one file group read or one posture scan.", []string{"kind"})
	Refreshes = add(Counter, "mcp_cert_exporter_refreshes_total",
		"Refreshes run, by kind and by whether they found a failure.", []string{"kind", "result"})
	ReloadOK = gauge("mcp_cert_exporter_config_last_reload_successful",
		"1 if the last configuration reload succeeded.", nil)
	ReloadTime = gauge("mcp_cert_exporter_config_last_reload_success_timestamp_seconds",
		"Timestamp of the last successful configuration reload.", nil)
	Targets = gauge("mcp_cert_exporter_targets",
		"Targets in the configuration in force, by kind.", []string{"kind"})
	VerifyCacheHits = add(Counter, "mcp_cert_exporter_verify_cache_hits_total",
		"Lookups answered by a verification cache: chains already built (cache=chains), signatures already checked "+
			"(cache=signatures).", []string{"cache"})
	VerifyCacheMisses = add(Counter, "mcp_cert_exporter_verify_cache_misses_total",
		"Lookups a verification cache could not answer: first sight, changed roots, a validity edge crossed, or a "+
			"failed verification.", []string{"cache"})
	VerifyCacheEvictions = add(Counter, "mcp_cert_exporter_verify_cache_evictions_total",
		"Entries dropped from a full verification cache, least recently used first.", []string{"cache"})
	VerifyCacheEntries = gauge("mcp_cert_exporter_verify_cache_entries",
		"Entries in a verification cache; it holds at most 131072 chains and 262144 signatures.", []string{"cache"})
	ProbeRequests = add(Counter, "mcp_cert_exporter_probe_requests_total",
		"Requests to /probe by module (empty for an unknown one) and result: probed, denied (outside the module's "+
			"allowed_targets, 403), bad_request (400), busy (probe_concurrency reached, 503) or error (the module's files "+
			"cannot be used now, 500).", []string{"module", "result"})
	ProbeInFlight = gauge("mcp_cert_exporter_probe_in_flight",
		"/probe requests probing now; at most probe_concurrency.", nil)
	LabelValuesCut = add(Counter, "mcp_cert_exporter_label_values_cut_total",
		"Label values cut at limits.label_length (they end in …(cut)), counted each time a result is rendered: a "+
			"rising count means some target's labels are being cut now.", nil)
)
