package probe

// Reason is why a probe or a file read failed. The set is fixed and documented
// in the README; alerts and dashboards match on these strings.
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
var FileReasons = []Reason{ReasonGlobEmpty, ReasonUnreadable, ReasonNoCertificate, ReasonParseError, ReasonTooLarge}
