package probe

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// CertInfoOf keeps the plain values of a certificate that the metrics need.
func CertInfoOf(c *x509.Certificate, role string) CertInfo {
	fp := sha256.Sum256(c.Raw)
	spki := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	keyType, keyBits := publicKeyInfo(c)
	return CertInfo{
		Role:               role,
		SubjectCN:          c.Subject.CommonName,
		IssuerCN:           c.Issuer.CommonName,
		Serial:             serialHex(c),
		NotBefore:          c.NotBefore,
		NotAfter:           c.NotAfter,
		FingerprintSHA256:  hex.EncodeToString(fp[:]),
		SPKISHA256:         base64.StdEncoding.EncodeToString(spki[:]),
		SANs:               sans(c),
		KeyType:            keyType,
		KeyBits:            keyBits,
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
	}
}

// serialHex prints the serial as `openssl x509 -serial` does, so operators
// can grep for it: uppercase, two digits per byte, no colons.
func serialHex(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	b := c.SerialNumber.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	s := strings.ToUpper(hex.EncodeToString(b))
	if c.SerialNumber.Sign() < 0 {
		s = "-" + s
	}
	return s
}

func sans(c *x509.Certificate) []string {
	out := make([]string, 0, len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses)+len(c.URIs))
	out = append(out, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	out = append(out, c.EmailAddresses...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}

func publicKeyInfo(c *x509.Certificate) (string, int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	}
	return c.PublicKeyAlgorithm.String(), 0
}
