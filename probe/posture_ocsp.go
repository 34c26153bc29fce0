package probe

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP statuses, the status label of ssl_ocsp_status_info. good, revoked and
// unknown are what a response whose signature checked out says; the others
// say why a stapled response could not be believed.
const (
	OCSPGood       = "good"
	OCSPRevoked    = "revoked"
	OCSPUnknown    = "unknown"
	OCSPInvalid    = "invalid"    // malformed, not for this certificate, badly signed, or out of date
	OCSPUnverified = "unverified" // the leaf's issuer is not at hand to check the signature
)

// OCSPInfo is what the server stapled. Status is empty when nothing was
// stapled: absent means absent, never good.
type OCSPInfo struct {
	Stapled    bool
	Status     string
	ThisUpdate time.Time // zero unless the signature checked out
	NextUpdate time.Time // zero unless the signature checked out, or when the responder sets none
	RevokedAt  time.Time
	Detail     string // why the response is invalid or unverified
}

// notStapled is every result's OCSPInfo without a staple, most of them:
// results are kept per endpoint and never changed, so they share it.
var notStapled = &OCSPInfo{}

// ocspOf checks a stapled response against the leaf and its issuer at now.
func ocspOf(staple []byte, leaf, issuer *x509.Certificate, now time.Time) *OCSPInfo {
	if len(staple) == 0 {
		return notStapled
	}
	info := &OCSPInfo{Stapled: true}
	if issuer == nil {
		info.Status, info.Detail = OCSPUnverified, "the server did not send the leaf's issuer and the chain does not verify, so the signature cannot be checked"
		return info
	}
	// Without the issuer the library checks only the signature by an
	// embedded certificate; who may sign is decided by signerError.
	resp, err := ocsp.ParseResponseForCert(staple, leaf, nil)
	if err == nil {
		err = signerError(resp, issuer)
	}
	if err != nil {
		info.Status, info.Detail = OCSPInvalid, fmt.Sprintf("stapled OCSP response: %v", err)
		return info
	}
	info.ThisUpdate, info.NextUpdate = resp.ThisUpdate, resp.NextUpdate
	switch {
	case now.Before(resp.ThisUpdate):
		info.Status, info.Detail = OCSPInvalid, "stapled OCSP response: not valid before "+stamp(resp.ThisUpdate)
	case !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate):
		info.Status, info.Detail = OCSPInvalid, "stapled OCSP response: out of date since "+stamp(resp.NextUpdate)
	case resp.Status == ocsp.Good:
		info.Status = OCSPGood
	case resp.Status == ocsp.Revoked:
		info.Status, info.RevokedAt = OCSPRevoked, resp.RevokedAt
	default:
		info.Status = OCSPUnknown
	}
	return info
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// signerError checks who signed the response (RFC 6960 4.2.2.2): the issuer
// itself, whether or not it embedded its own certificate (openssl ocsp
// -rsigner ca.crt does), or a responder certificate the issuer issued with
// the OCSP signing extended key usage. The library checked the response's
// signature by an embedded certificate already.
func signerError(resp *ocsp.Response, issuer *x509.Certificate) error {
	rc := resp.Certificate
	switch {
	case rc == nil || sameKeyAndName(rc, issuer):
		if err := resp.CheckSignatureFrom(issuer); err != nil {
			return fmt.Errorf("not signed by the leaf's issuer: %w", err)
		}
	case issuer.CheckSignature(rc.SignatureAlgorithm, rc.RawTBSCertificate, rc.Signature) != nil:
		return fmt.Errorf("the responder certificate %q was not issued by the leaf's issuer", displayName(rc.Subject))
	case !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning):
		return fmt.Errorf("the responder certificate %q lacks the OCSP signing extended key usage", displayName(rc.Subject))
	}
	return nil
}

// sameKeyAndName: c is the issuer, or the issuer reissued with its key.
func sameKeyAndName(c, issuer *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, issuer.RawSubject) && bytes.Equal(c.RawSubjectPublicKeyInfo, issuer.RawSubjectPublicKeyInfo)
}
