package probe

// Reason is why a probe or a file read failed. The set is fixed and documented
// in docs/reasons.md; alerts and dashboards match on these strings.
type Reason string

// Endpoint failure reasons.
const (
	ReasonNone                   Reason = ""
	ReasonVerifyFailed           Reason = "CERTIFICATE_VERIFY_FAILED"
	ReasonHostnameMismatch       Reason = "HOSTNAME_MISMATCH"
	ReasonCertificateExpired     Reason = "CERTIFICATE_EXPIRED"
	ReasonCertificateNotYetValid Reason = "CERTIFICATE_NOT_YET_VALID"
	ReasonHandshakeFailure       Reason = "HANDSHAKE_FAILURE"
	ReasonNoSharedCipher         Reason = "NO_SHARED_CIPHER"
	ReasonClientCertRequired     Reason = "CLIENT_CERT_REQUIRED"
	ReasonConnectionRefused      Reason = "CONNECTION_REFUSED"
	ReasonConnectionReset        Reason = "CONNECTION_RESET"
	ReasonTimeout                Reason = "TIMEOUT"
	ReasonDNSFailure             Reason = "DNS_FAILURE"
	ReasonNotTLS                 Reason = "NOT_TLS"
)

// File failure reasons.
const (
	ReasonGlobEmpty     Reason = "NO_MATCH"
	ReasonUnreadable    Reason = "UNREADABLE"
	ReasonNoCertificate Reason = "NO_CERTIFICATE"
	ReasonParseError    Reason = "PARSE_ERROR"
	ReasonTooLarge      Reason = "TOO_LARGE"
	ReasonLimitReached  Reason = "LIMIT_REACHED"
	ReasonKeyFile       Reason = "KEY_FILE"
	ReasonCSRFile       Reason = "CSR_FILE"
	ReasonPKCS12File    Reason = "PKCS12_FILE"
)

// Reasons a posture check could not run, for the reason label of
// ssl_posture_check_unknown_info. A check that could not reach the server
// carries the endpoint reason of that handshake instead; a key that could not
// be read, UNREADABLE.
const (
	ReasonKeyEncrypted Reason = "KEY_ENCRYPTED"
	ReasonNotAKey      Reason = "NOT_A_KEY"
	ReasonNoPair       Reason = "NO_CERTIFICATE_TO_PAIR"
	ReasonNotPaired    Reason = "KEY_NOT_PAIRED"
	ReasonHTTPError    Reason = "HTTP_ERROR" // the TLS handshake worked but HTTP did not
)

var remedies = map[Reason]string{
	ReasonVerifyFailed: "The chain does not lead to a trusted root. Serve the full chain (leaf first, then intermediates; " +
		"nginx: ssl_certificate fullchain.pem), or set tls_config.ca_file to the CA that issued it.",
	ReasonHostnameMismatch: "The certificate's SANs do not cover the name we connected to. Reissue it with that DNS name " +
		"or IP in subjectAltName, or set tls_config.server_name to the name clients use.",
	ReasonCertificateExpired: "A certificate in the chain is past its NotAfter. Renew it, install the new one and reload the server; " +
		"check that automatic renewal (certbot, cert-manager) is running.",
	ReasonCertificateNotYetValid: "A certificate's NotBefore is in the future. Check the clocks of the server, the CA and this " +
		"exporter (NTP), or wait until it becomes valid before deploying it.",
	ReasonHandshakeFailure: "The TLS handshake broke off. Check the server's TLS settings and logs; openssl s_client -connect " +
		"host:port -servername name shows what it sends.",
	ReasonNoSharedCipher: "The server refused our TLS versions or cipher suites. Enable TLS 1.2 and 1.3 with ECDHE AEAD suites " +
		"on the server, or relax tls_config.min_version.",
	ReasonClientCertRequired: "The server demands a client certificate (mTLS) that we lack or that it rejected. Set " +
		"tls_config.cert_file and key_file to a certificate its client CA trusts.",
	ReasonConnectionRefused: "Nothing accepts connections on that address and port. Check that the server is running, the " +
		"port is right, and no firewall rejects us.",
	ReasonConnectionReset: "The peer or something in between reset the connection. Check load balancers, firewalls and " +
		"the server's logs.",
	ReasonTimeout:    "No answer within the timeout. Check routing and firewalls that drop packets, or raise timeout for slow links.",
	ReasonDNSFailure: "The name does not resolve. Check the spelling and the DNS records, or the resolver this exporter uses.",
	ReasonNotTLS: "The peer did not speak TLS: plain HTTP or another protocol is on this port. Use the TLS port, or enable TLS " +
		"on the server.",
	ReasonGlobEmpty:     "No file matches this path or glob. Check the path, the mount and the exporter's permissions on the directories.",
	ReasonUnreadable:    "The file exists but cannot be read. Check its permissions and the user the exporter runs as.",
	ReasonNoCertificate: "The file holds no certificate: it may be a key, a CSR or empty. Point paths at the certificate files.",
	ReasonParseError:    "A certificate in the file is corrupt or not X.509. Re-export it in PEM or DER form.",
	ReasonTooLarge:      "The file is larger than a certificate bundle can be; it is not read. Point paths at certificate files.",
	ReasonLimitReached: "A glob walked more directory entries (limits.glob_entries) or matched more files (limits.glob_matches) " +
		"than allowed; the detail names which. Narrow the glob, or raise the limit.",
	ReasonKeyFile: "The file holds a private or public key (PEM or DER, encrypted or not), no certificate. Point paths at " +
		"the certificate; keys are found through key_paths.",
	ReasonCSRFile: "The file is a certificate signing request, not a certificate. Point paths at the certificate the CA issued.",
	ReasonPKCS12File: "The file is a PKCS#12 (PFX) archive, which is password-protected and not read. Export its " +
		"certificates: openssl pkcs12 -in f.p12 -nokeys -out f.pem.",
	ReasonKeyEncrypted: "The private key is encrypted with a passphrase the exporter does not have, so it cannot be " +
		"compared with its certificate. Nothing to fix if that is intended: only the pairing goes unchecked.",
	ReasonNotAKey: "The file found as a private key holds no PKCS#8, PKCS#1 or SEC 1 private key in PEM or DER form. Point " +
		"key_paths or key_pairs at the key, or narrow key_paths so it does not match this file.",
	ReasonNoPair: "There is no certificate to compare the key with: the group read no certificate, or the cert of its " +
		"key_pairs entry was not read (see ssl_file_error_info). Fix the certificate file; the key is checked at the next read.",
	ReasonNotPaired: "The key belongs to none of the group's certificates: it is another certificate's key, found next to " +
		"these. Nothing to fix if so; to check it, add its certificate to the group or name the pair in key_pairs.",
	ReasonHTTPError: "The TLS handshake completed but the HTTP request that reads the header or tells an mTLS refusal " +
		"failed or was refused for another cause (the detail has the status). Check the server's and the proxy's logs.",
}

// Remedy is a short, actionable fix for the reason.
func (r Reason) Remedy() string { return remedies[r] }

// EndpointReasons lists every endpoint reason, in documentation order.
var EndpointReasons = []Reason{
	ReasonVerifyFailed, ReasonHostnameMismatch, ReasonCertificateExpired, ReasonCertificateNotYetValid,
	ReasonHandshakeFailure, ReasonNoSharedCipher, ReasonClientCertRequired, ReasonConnectionRefused,
	ReasonConnectionReset, ReasonTimeout, ReasonDNSFailure, ReasonNotTLS,
}

// FileReasons lists every file reason, in documentation order.
var FileReasons = []Reason{ReasonGlobEmpty, ReasonUnreadable, ReasonNoCertificate, ReasonParseError, ReasonTooLarge,
	ReasonLimitReached, ReasonKeyFile, ReasonCSRFile, ReasonPKCS12File}

// PostureReasons lists every reason only a posture check reports, in
// documentation order.
var PostureReasons = []Reason{ReasonKeyEncrypted, ReasonNotAKey, ReasonNoPair, ReasonNotPaired, ReasonHTTPError}

// MCPReason is why the MCP handshake after TLS did not complete. It is a type
// of its own because TIMEOUT means something else here than for TLS, and has
// its own remedy.
type MCPReason string

// MCP failure reasons.
const (
	MCPReasonNone        MCPReason = ""
	MCPAuthRequired      MCPReason = "AUTH_REQUIRED"
	MCPNotMCP            MCPReason = "NOT_MCP"
	MCPHTTPError         MCPReason = "HTTP_ERROR"
	MCPProtocolError     MCPReason = "PROTOCOL_ERROR"
	MCPTimeout           MCPReason = "TIMEOUT"
	MCPTLSFailed         MCPReason = "TLS_FAILED"
	MCPSessionLost       MCPReason = "SESSION_LOST"
	MCPTransportMismatch MCPReason = "TRANSPORT_MISMATCH"
)

var mcpRemedies = map[MCPReason]string{
	MCPAuthRequired: "The server answered 401 or 403: it is up but wants a token. Without mcp.bearer_token_file this is expected " +
		"for a protected server; with it, check that the file holds a valid, unexpired token. When mcp_auth_metadata_valid is 0, " +
		"fix the server's OAuth discovery (WWW-Authenticate resource_metadata and /.well-known/oauth-protected-resource), or no client can log in.",
	MCPNotMCP: "HTTP answered, but not MCP: 404 or 405 on every transport tried, or a page that is not JSON-RPC. Check the URL's " +
		"path (/mcp, /sse), that the proxy routes it to the MCP server, and mcp.transport.",
	MCPHTTPError: "The server or a proxy answered an HTTP error (5xx, 429, 400, a redirect) or broke the connection. Check the MCP " +
		"server's and the proxy's logs; redirects are not followed, so configure the final URL.",
	MCPProtocolError: "The server spoke JSON-RPC badly: a malformed or oversized message, an error to initialize, or a protocol " +
		"version this exporter does not speak. Check the server's MCP SDK version and its logs.",
	MCPTimeout: "The MCP handshake did not finish within the endpoint's timeout, which covers TLS and MCP together. Check that " +
		"the proxy does not buffer event streams (nginx: proxy_buffering off) and the server's load, or raise timeout.",
	MCPSessionLost: "The server answered 404 to a request that carried the session it had just assigned: it lost the session " +
		"between initialize and the next request. Replicas behind a load balancer without affinity, or a restart, do this. Make " +
		"the balancer sticky on Mcp-Session-Id (or the client), share sessions between replicas, or run the server stateless.",
	MCPTransportMismatch: "mcp.transport names a transport this server does not speak at this URL: the configured one failed and " +
		"the other completed the handshake (the detail says which). Set mcp.transport to the one named, or to auto.",
	MCPTLSFailed: "MCP was not spoken because TLS failed or did not verify (see ssl_probe_error_info), or a further connection " +
		"the MCP traffic opened met a certificate that does not verify (the detail names it). Fix TLS first.",
}

// Remedy is a short, actionable fix for the reason.
func (r MCPReason) Remedy() string { return mcpRemedies[r] }

// MCPReasons lists every MCP reason, in documentation order.
var MCPReasons = []MCPReason{MCPAuthRequired, MCPNotMCP, MCPHTTPError, MCPProtocolError, MCPTimeout, MCPSessionLost,
	MCPTransportMismatch, MCPTLSFailed}
