package probe

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// CertInfoOf keeps the plain values of c that the metrics need.
//
// Serial is the serial number in uppercase hex with an even number of
// digits and no colons, as `openssl x509 -noout -serial` prints it.
// FingerprintSHA256 is lowercase hex of the DER; SPKISHA256 is standard
// base64 of the SubjectPublicKeyInfo digest, as pins are written.
func CertInfoOf(c *x509.Certificate, role string) CertInfo {
	fp := sha256.Sum256(c.Raw)
	spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	keyType, keyBits := keyOf(c)
	s := packed(append([]string{displayName(c.Subject), displayName(c.Issuer), serialOf(c),
		hex.EncodeToString(fp[:]), base64.StdEncoding.EncodeToString(spki[:])}, sansOf(c)...))
	info := CertInfo{
		Role:               role,
		SubjectCN:          s[0],
		IssuerCN:           s[1],
		Serial:             s[2],
		NotBefore:          c.NotBefore,
		NotAfter:           c.NotAfter,
		FingerprintSHA256:  s[3],
		SPKISHA256:         s[4],
		KeyType:            keyType,
		KeyBits:            keyBits,
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
	}
	if len(s) > 5 {
		info.SANs = s[5:len(s):len(s)]
	}
	return info
}

// packed makes ss substrings of one string, in place: a result keeps its
// certificates' facts for a whole interval, and each string apart would be
// one more object for every GC cycle to mark (a dozen per endpoint).
func packed(ss []string) []string {
	all := strings.Join(ss, "")
	at := 0
	for i, s := range ss {
		ss[i] = all[at : at+len(s)]
		at += len(s)
	}
	return ss
}

// displayName is the CN, or the whole DN when there is none: several trust
// store roots have only O and OU, and would all read as "" otherwise.
func displayName(n pkix.Name) string {
	if n.CommonName != "" {
		return n.CommonName
	}
	return n.String()
}

// RoleOf names the role of the certificate at index in a chain: the first
// is the leaf, a self-issued one (its own name and a self-signature that
// checks, SHA-1 included) is a root, and any other is an intermediate, also
// at the top of a chain that verified through an intermediate in ca_file.
// A sub-CA that merely repeats its issuer's name stays an intermediate.
func RoleOf(c *x509.Certificate, index int) string {
	switch {
	case index == 0:
		return RoleLeaf
	case selfSigned(c):
		return RoleRoot
	default:
		return RoleIntermediate
	}
}

func serialOf(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	s := strings.ToUpper(c.SerialNumber.Text(16))
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s)%2 == 1 {
		s = "0" + s
	}
	if neg {
		s = "-" + s
	}
	return s
}

func sansOf(c *x509.Certificate) []string {
	n := len(c.DNSNames) + len(c.IPAddresses) + len(c.EmailAddresses) + len(c.URIs)
	if n == 0 {
		return nil
	}
	sans := make([]string, 0, n)
	sans = append(sans, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		sans = append(sans, ip.String())
	}
	sans = append(sans, c.EmailAddresses...)
	for _, u := range c.URIs {
		sans = append(sans, u.String())
	}
	return sans
}

// keyOf reports the key type and size: RSA modulus bits, EC curve bits,
// and 256 for Ed25519.
func keyOf(c *x509.Certificate) (string, int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	default:
		return c.PublicKeyAlgorithm.String(), 0
	}
}

// chainInfo lists what the server sent, leaf first and in its order, then the
// top of chain when the server did not send it. Identical certificates are
// listed once. The slice is exactly as long as the list: thousands of
// cached results each keep one.
func chainInfo(sent, chain []*x509.Certificate) []CertInfo {
	top := len(chain) > 1 && !seen(sent, chain[len(chain)-1])
	n := len(sent)
	if top {
		n++
	}
	out := make([]CertInfo, 0, n)
	for i, c := range sent {
		if !seen(sent[:i], c) {
			out = append(out, sharedCertInfo(c, i))
		}
	}
	if top {
		out = append(out, sharedCertInfo(chain[len(chain)-1], len(chain)-1))
	}
	return out
}

// caInfoCacheSize bounds the CertInfo kept of issuing certificates: a fleet
// has few CAs, each entry is a few hundred bytes.
const caInfoCacheSize = 4096

// caInfos holds the CertInfo of roots and intermediates met in chains, by
// the digest of their DER (their role depends on nothing else): every
// endpoint whose chain passes through the same CA shares its strings
// instead of keeping a copy per endpoint, and a refresh skips working
// them out again. Leaves are not kept: most endpoints have their own.
var caInfos = newLRU[CertInfo](caInfoCacheSize)

// sharedCertInfo is CertInfoOf the certificate at index of a chain, from
// caInfos for an issuing certificate seen before. Findings are left nil,
// so that appending to them never touches the shared entry.
func sharedCertInfo(c *x509.Certificate, index int) CertInfo {
	if index == 0 {
		return CertInfoOf(c, RoleLeaf)
	}
	key := chainKey(sha256.Sum256(c.Raw))
	if info, ok := caInfos.lookup(key, func(CertInfo) bool { return true }); ok {
		return info
	}
	info := CertInfoOf(c, RoleOf(c, index))
	caInfos.store(key, info)
	return info
}

func seen(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, o := range certs {
		if o == c || bytes.Equal(o.Raw, c.Raw) {
			return true
		}
	}
	return false
}
