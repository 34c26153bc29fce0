package certfile

import (
	"bytes"
	"crypto/x509"
	"fmt"

	"github.com/smallstep/pkcs7"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// Formats the file reader reads certificates from: PEM (CERTIFICATE and
// PKCS7 blocks), DER certificates (one or several concatenated) and PKCS#7
// bundles (.p7b/.p7c, DER or BER, certificates only). Other formats get a
// reason of their own, so the remedy fits.

// formatError is a file that holds something other than certificates.
type formatError struct {
	reason probe.Reason
	what   string
}

func (e *formatError) Error() string { return "no certificate: the file is " + e.what }

// Unwrap makes a formatError an ErrNoCertificate for callers that only ask
// whether there is a certificate.
func (e *formatError) Unwrap() error { return ErrNoCertificate }

func keyFile(what string) error { return &formatError{probe.ReasonKeyFile, what} }

var (
	errCSR    = &formatError{probe.ReasonCSRFile, "a certificate signing request"}
	errPKCS12 = &formatError{probe.ReasonPKCS12File, "a PKCS#12 (PFX) archive"}
)

// pkcs7Certificates reads the certificates of a PKCS#7 SignedData bundle;
// signatures and content are ignored.
func pkcs7Certificates(der []byte) ([]*x509.Certificate, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, redacted{"PKCS#7", err}
	}
	if len(p7.Certificates) == 0 {
		return nil, fmt.Errorf("%w: the PKCS#7 bundle holds none", ErrNoCertificate)
	}
	return p7.Certificates, nil
}

// oidSignedData is PKCS#7 signedData, 1.2.840.113549.1.7.2.
var oidSignedData = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}

// classifyDER names DER data that is not a certificate by its ASN.1 shape
// alone: keys are never parsed, so their bytes go nowhere.
func classifyDER(der []byte) error {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	// BER indefinite lengths (0x80) are not DER; PKCS#7 from Windows may use them.
	if len(der) > 1 && der[0] == 0x30 && der[1] == 0x80 || !s.ReadASN1(&seq, asn1.SEQUENCE) {
		if isPKCS7(der) || opensLikeCertificate(der) {
			return nil // truncated or BER: the parsers say what is wrong
		}
		return fmt.Errorf("%w: neither PEM nor a DER certificate", ErrNoCertificate)
	}
	switch {
	case seq.PeekASN1Tag(asn1.OBJECT_IDENTIFIER):
		if isPKCS7(der) {
			return nil
		}
	case seq.PeekASN1Tag(asn1.INTEGER):
		var version int
		if seq.ReadASN1Integer(&version) && version == 3 && seq.PeekASN1Tag(asn1.SEQUENCE) {
			return errPKCS12
		}
		return keyFile("a DER private key")
	case seq.PeekASN1Tag(asn1.SEQUENCE):
		return classifySeqSeq(der, seq)
	}
	return fmt.Errorf("%w: neither PEM nor a DER certificate", ErrNoCertificate)
}

// classifySeqSeq tells apart the structures that open like a certificate:
// SEQUENCE { SEQUENCE ... }.
func classifySeqSeq(der []byte, seq cryptobyte.String) error {
	var first cryptobyte.String
	if !seq.ReadASN1(&first, asn1.SEQUENCE) {
		return nil // let the certificate parser say what is wrong
	}
	switch {
	case first.PeekASN1Tag(asn1.OBJECT_IDENTIFIER) && seq.PeekASN1Tag(asn1.OCTET_STRING):
		return keyFile("an encrypted private key (PKCS#8)")
	case first.PeekASN1Tag(asn1.OBJECT_IDENTIFIER) && seq.PeekASN1Tag(asn1.BIT_STRING):
		return keyFile("a DER public key")
	}
	if _, err := x509.ParseCertificateRequest(der); err == nil {
		return errCSR
	}
	return nil
}

// opensLikeCertificate checks the header of a certificate: a SEQUENCE that
// starts with a SEQUENCE, whatever its length says.
func opensLikeCertificate(der []byte) bool {
	if len(der) < 2 || der[0] != 0x30 {
		return false
	}
	hdr := 2
	if der[1]&0x80 != 0 {
		hdr += int(der[1] & 0x7f)
	}
	return len(der) > hdr && der[hdr] == 0x30
}

// isPKCS7 reports whether der opens as ContentInfo { signedData, ... },
// with a DER or a BER (indefinite) length.
func isPKCS7(der []byte) bool {
	if len(der) < 2 || der[0] != 0x30 {
		return false
	}
	i := 2
	if der[1] > 0x80 {
		i += int(der[1] & 0x7f)
	}
	return len(der) >= i+2+len(oidSignedData) && der[i] == 0x06 && int(der[i+1]) == len(oidSignedData) &&
		bytes.Equal(der[i+2:i+2+len(oidSignedData)], oidSignedData)
}

// pemBlockError is the error for a PEM file whose blocks hold no
// certificate, named after the first block that explains why.
func pemBlockError(kinds []string) error {
	for _, k := range kinds {
		switch k {
		case "private key", "public key":
			return keyFile("a PEM " + k)
		case "certificate request":
			return errCSR
		}
	}
	return nil
}
