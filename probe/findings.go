package probe

import (
	"bytes"
	"crypto/dsa" // deprecated, and only here to call DSA keys weak
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"slices"
)

// Finding is a quality problem of one certificate, the finding label of
// ssl_certificate_finding_info. The set is fixed and documented in docs/posture.md.
type Finding string

// Certificate findings.
const (
	FindingWeakKey           Finding = "WEAK_KEY"
	FindingWeakSignature     Finding = "WEAK_SIGNATURE"
	FindingNoSAN             Finding = "NO_SAN"
	FindingValidityTooLong   Finding = "VALIDITY_TOO_LONG"
	FindingSelfSigned        Finding = "SELF_SIGNED"
	FindingChainOrder        Finding = "CHAIN_ORDER"
	FindingIncompleteChain   Finding = "INCOMPLETE_CHAIN"
	FindingMustStapleMissing Finding = "MUST_STAPLE_MISSING"
)

// Findings lists every finding, in documentation order.
var Findings = []Finding{
	FindingWeakKey, FindingWeakSignature, FindingNoSAN, FindingValidityTooLong, FindingSelfSigned,
	FindingChainOrder, FindingIncompleteChain, FindingMustStapleMissing,
}

var findingDocs = map[Finding]struct{ when, remedy string }{
	FindingWeakKey: {"an RSA key under 2048 bits, an EC key under 256 bits, or DSA; any role",
		"The key is too small to resist factoring or discrete-log attacks. Generate a new ECDSA P-256 or RSA 2048+ key " +
			"and reissue the certificate."},
	FindingWeakSignature: {"signed with MD2, MD5 or SHA-1; not checked on roots, whose self-signature nobody verifies",
		"Collisions are practical for these hashes and clients refuse them. Reissue the certificate; every current CA " +
			"signs with SHA-256 or better."},
	FindingNoSAN: {"a leaf without any subjectAltName",
		"Clients ignore the CN and match names only against SANs (RFC 6125), so verification fails. Reissue it with the " +
			"DNS names and IPs clients use."},
	FindingValidityTooLong: {"a leaf valid (NotBefore through NotAfter, inclusive) longer than the CA/Browser Forum allowed " +
		"on its issue date, or than policy.max_validity when set",
		"Clients (Apple, Chrome) reject such certificates. Reissue it for a shorter period and automate renewal (ACME, " +
			"cert-manager)."},
	FindingSelfSigned: {"a leaf issued by its own name and key, unless policy.allow_self_signed",
		"No client can verify it without trusting it one by one. Use a certificate from a public CA or your internal CA " +
			"(ACME, cert-manager, step-ca)."},
	FindingChainOrder: {"on an endpoint's leaf: a certificate the server sent is not issued by the one after it " +
		"(wrong order, a duplicate or an unrelated extra)",
		"Each certificate should be followed by the one that issued it. Rebuild the chain file as leaf, then " +
			"intermediates in order; leave out unrelated certificates."},
	FindingIncompleteChain: {"on an endpoint's leaf: the chain verifies only through a CA certificate the server did not " +
		"send and that is not a root (it came from ca_file), or nothing verifies and the top certificate sent names its " +
		"issuer's URL (AIA) without sending the issuer",
		"Clients that do not have the intermediate cached fail. Serve the full chain (nginx: ssl_certificate " +
			"fullchain.pem; Go: every certificate in tls.Certificate)."},
	FindingMustStapleMissing: {"on an endpoint's leaf: the certificate has the TLS feature extension with status_request " +
		"(OCSP Must-Staple) and the server stapled nothing",
		"Strict clients refuse the connection. Enable stapling (nginx: ssl_stapling on; ssl_stapling_verify on) or " +
			"reissue without Must-Staple."},
}

// When says when the finding is reported.
func (f Finding) When() string { return findingDocs[f].when }

// Remedy is a short, actionable fix for the finding.
func (f Finding) Remedy() string { return findingDocs[f].remedy }

// Key size floors below which a key is weak.
const (
	minRSABits = 2048
	minECBits  = 256
)

// X509Findings are the findings of c alone, given its role in its chain or
// file. VALIDITY_TOO_LONG depends on the policy and is added by CertFindings.
func X509Findings(c *x509.Certificate, role string) []Finding {
	var out []Finding
	if weakKey(c) {
		out = append(out, FindingWeakKey)
	}
	// Nobody checks a root's own signature: it is trusted by being in a store.
	if role != RoleRoot && weakSignature(c.SignatureAlgorithm) {
		out = append(out, FindingWeakSignature)
	}
	if role == RoleLeaf && len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses)+len(c.URIs) == 0 {
		out = append(out, FindingNoSAN)
	}
	if role == RoleLeaf && selfSigned(c) {
		out = append(out, FindingSelfSigned)
	}
	return out
}

func weakKey(c *x509.Certificate) bool {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return k.N.BitLen() < minRSABits
	case *ecdsa.PublicKey:
		return k.Curve.Params().BitSize < minECBits
	case *dsa.PublicKey:
		return true
	}
	return false
}

func weakSignature(alg x509.SignatureAlgorithm) bool {
	switch alg {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true
	}
	return false
}

// selfSigned: issued by its own name and key. A SHA-1 self-signature still
// counts, although crypto/x509 no longer verifies it.
func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawSubject, c.RawIssuer) {
		return false
	}
	return checkedSignature(c, c, func() bool {
		err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
		return err == nil || errors.As(err, new(x509.InsecureAlgorithmError))
	})
}

// signedBy reports whether parent issued child, by name and signature.
func signedBy(child, parent *x509.Certificate) bool {
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return false
	}
	return checkedSignature(child, parent, func() bool {
		err := child.CheckSignatureFrom(parent)
		return err == nil || errors.As(err, new(x509.InsecureAlgorithmError))
	})
}

// chainFindings are the findings of the chain as the server sent it, which
// are reported on the leaf: sent is what arrived, chain what verified (nil
// when nothing did), staple the stapled OCSP response.
func chainFindings(sent, chain []*x509.Certificate, staple []byte) []Finding {
	var out []Finding
	if outOfOrder(sent) {
		out = append(out, FindingChainOrder)
	}
	if incompleteChain(sent, chain) {
		out = append(out, FindingIncompleteChain)
	}
	if mustStaple(sent[0]) && len(staple) == 0 {
		out = append(out, FindingMustStapleMissing)
	}
	return out
}

// outOfOrder: RFC 5246 requires, and RFC 8446 asks, that each certificate
// after the first certifies the one before it. A duplicate or an unrelated
// extra certificate breaks that too.
func outOfOrder(sent []*x509.Certificate) bool {
	for i := 0; i+1 < len(sent); i++ {
		if !signedBy(sent[i], sent[i+1]) {
			return true
		}
	}
	return false
}

// incompleteChain finds a chain that needs an intermediate the server did not
// send. The network only goes to configured targets, so the missing
// certificate is never fetched (AIA); instead:
//   - a verified chain that runs through a CA certificate that is neither
//     sent nor self-signed got it from our trust store (a ca_file bundling
//     intermediates), which other clients may not have;
//   - an unverified chain whose top sent certificate is not self-signed but
//     names where to fetch its issuer (AIA caIssuers) is missing that
//     issuer: public CAs put that URL in every leaf and intermediate, while
//     a leaf from a private root we merely do not trust usually lacks it.
func incompleteChain(sent, chain []*x509.Certificate) bool {
	if len(chain) > 0 {
		for _, c := range chain[1:] {
			if !seen(sent, c) && !selfSigned(c) {
				return true
			}
		}
		return false
	}
	top := topOf(sent)
	return !selfSigned(top) && len(top.IssuingCertificateURL) > 0
}

// topOf follows the issuers of the leaf through the sent certificates, in
// whatever order they came, and returns the last one reached.
func topOf(sent []*x509.Certificate) *x509.Certificate {
	top := sent[0]
	for range sent { // bounded: a cycle of cross-signatures must not loop
		if selfSigned(top) {
			break
		}
		i := slices.IndexFunc(sent, func(c *x509.Certificate) bool { return !bytes.Equal(c.Raw, top.Raw) && signedBy(top, c) })
		if i < 0 {
			break
		}
		top = sent[i]
	}
	return top
}

// oidTLSFeature is the TLS feature extension (RFC 7633); status_request in it
// is OCSP Must-Staple.
var oidTLSFeature = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}

const tlsFeatureStatusRequest = 5

func mustStaple(c *x509.Certificate) bool {
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidTLSFeature) {
			continue
		}
		var features []int
		if _, err := asn1.Unmarshal(ext.Value, &features); err == nil && slices.Contains(features, tlsFeatureStatusRequest) {
			return true
		}
	}
	return false
}

// assessFindings adds the findings to the facts of the certificates while
// the certificates are at hand, so that only plain values are kept.
func assessFindings(certs []CertInfo, sent, chain []*x509.Certificate, staple []byte) {
	byFingerprint := make(map[string]*x509.Certificate, len(sent)+1)
	for _, c := range slices.Concat(sent, chain) {
		sum := sha256.Sum256(c.Raw)
		byFingerprint[hex.EncodeToString(sum[:])] = c
	}
	for i := range certs {
		ci := &certs[i]
		if c := byFingerprint[ci.FingerprintSHA256]; c != nil {
			ci.Findings = X509Findings(c, ci.Role)
		}
	}
	if len(certs) > 0 {
		leaf := &certs[0]
		leaf.Findings = append(leaf.Findings, chainFindings(sent, chain, staple)...)
	}
}

// issuerOf is the leaf's issuer from the verified chain, else from what the
// server sent; nil when neither has it.
func issuerOf(sent, chain []*x509.Certificate) *x509.Certificate {
	if len(chain) > 1 {
		return chain[1]
	}
	for _, c := range sent[1:] {
		if signedBy(sent[0], c) {
			return c
		}
	}
	return nil
}
