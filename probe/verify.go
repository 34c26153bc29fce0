package probe

import (
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// verification is the verdict on what the server sent.
type verification struct {
	chain  []*x509.Certificate // verified, or verifiable at a moment when every certificate is valid
	reason Reason              // ReasonNone when chain, validity and hostname pass
	detail string
	cached *verifiedChain // the cache entry chain was built from; nil when not cached
}

// verify checks the chain against the target's roots, the validity periods
// and the hostname, as crypto/tls would, and names exactly one reason.
//
// Precedence, first match wins:
//  1. CERTIFICATE_VERIFY_FAILED: the chain does not verify even at a moment
//     inside every sent certificate's validity window, so renewing would
//     not help (unknown CA, self-signed, missing intermediate, bad
//     signature, wrong key usage).
//  2. CERTIFICATE_EXPIRED: a certificate of the chain is past NotAfter.
//  3. CERTIFICATE_NOT_YET_VALID: a certificate of the chain is before NotBefore.
//  4. HOSTNAME_MISMATCH.
func (t *Target) verify(sent []*x509.Certificate, now time.Time) verification {
	return t.verifyWith(verified.Load(), sent, now)
}

// verifyWith is verify through the cache vc; nil verifies afresh.
func (t *Target) verifyWith(vc *verifyCache, sent []*x509.Certificate, now time.Time) verification {
	if len(sent) == 0 {
		return verification{reason: ReasonVerifyFailed, detail: "server sent no certificate"}
	}
	key := chainKeyOf(t.roots, sent)
	chain, cached := vc.get(key, sent, now)
	if chain == nil {
		chains, v := t.buildChains(sent, now)
		if chains == nil {
			return v
		}
		cached = vc.put(key, sent, chains, t.roots, now)
		chain = chains[0]
	}
	if err := sent[0].VerifyHostname(t.serverName); err != nil {
		return verification{chain: chain, reason: ReasonHostnameMismatch, detail: err.Error(), cached: cached}
	}
	return verification{chain: chain, cached: cached}
}

// buildChains verifies sent against the roots at now, without the
// hostname. When no chain verifies, the verdict says why.
func (t *Target) buildChains(sent []*x509.Certificate, now time.Time) ([][]*x509.Certificate, verification) {
	opts := x509.VerifyOptions{Roots: t.rootPool(), CurrentTime: now, Intermediates: x509.NewCertPool()}
	for _, c := range sent[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := sent[0].Verify(opts)
	if err == nil {
		return chains, verification{}
	}
	at, ok := validMoment(sent, now)
	if !ok {
		return nil, outOfDate(sent, now, err)
	}
	return nil, t.verifyAgain(sent, opts, now, err, at)
}

// verifyAgain tells a chain that is only out of date from one that is not
// trusted at all, by verifying at a moment when the sent certificates are
// all valid.
func (t *Target) verifyAgain(sent []*x509.Certificate, opts x509.VerifyOptions, now time.Time, err error, at time.Time) verification {
	opts.CurrentTime = at
	chains, err2 := sent[0].Verify(opts)
	if err2 != nil {
		if chain := t.timeOnly(sent); chain != nil {
			v := outOfDate(chain, now, err)
			v.chain = chain
			return v
		}
		return verification{reason: ReasonVerifyFailed, detail: err2.Error()}
	}
	// The root from the pool may be the one out of date, so look at the whole chain.
	v := outOfDate(chains[0], now, err)
	v.chain = chains[0]
	return v
}

// outOfDate names the first certificate out of its validity window at now.
// It is also the verdict when no moment exists at which every sent
// certificate is valid (a leaf that expired before its reissued
// intermediate began): trust cannot be checked then, and the dates alone
// already need fixing.
func outOfDate(chain []*x509.Certificate, now time.Time, err error) verification {
	if c := firstOutOfDate(chain, now, true); c != nil {
		return verification{reason: ReasonCertificateExpired,
			detail: fmt.Sprintf("certificate %q expired at %s", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))}
	}
	if c := firstOutOfDate(chain, now, false); c != nil {
		return verification{reason: ReasonCertificateNotYetValid,
			detail: fmt.Sprintf("certificate %q is not valid before %s", c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339))}
	}
	return verification{reason: ReasonVerifyFailed, detail: err.Error()}
}

// validMoment is now moved into the window where every certificate is
// valid; ok is false when the windows do not overlap.
func validMoment(certs []*x509.Certificate, now time.Time) (at time.Time, ok bool) {
	at = now
	for _, c := range certs {
		if at.After(c.NotAfter) {
			at = c.NotAfter
		}
	}
	for _, c := range certs {
		if at.Before(c.NotBefore) {
			at = c.NotBefore
		}
	}
	for _, c := range certs {
		if at.Before(c.NotBefore) || at.After(c.NotAfter) {
			return at, false
		}
	}
	return at, true
}

// firstOutOfDate finds the first certificate expired at now (expired) or not
// yet valid at now (!expired).
func firstOutOfDate(chain []*x509.Certificate, now time.Time, expired bool) *x509.Certificate {
	for _, c := range chain {
		if (expired && now.After(c.NotAfter)) || (!expired && now.Before(c.NotBefore)) {
			return c
		}
	}
	return nil
}

// timeOnly builds a chain from the leaf to a certificate of ca_file as
// OpenSSL does, by name and signature without regard to dates, so that
// the dates can be judged afterwards: crypto/x509 wants one moment at which
// every certificate is valid, so a leaf that expired before its CA was
// reissued (same name and key, later NotBefore), or a chain under a root
// that expired, never verifies, where OpenSSL says "certificate has
// expired". The system pool cannot be listed, so only ca_file anchors a
// chain here; nil when none is found.
func (t *Target) timeOnly(sent []*x509.Certificate) []*x509.Certificate {
	if t.roots == nil {
		return nil
	}
	return buildChain(sent[0], slices.Concat(sent[1:], t.roots.certs), t.roots.certs, maxChainDepth)
}

// maxChainDepth bounds the search, as cross-signed CAs can form cycles.
const maxChainDepth = 8

func buildChain(c *x509.Certificate, cas, anchors []*x509.Certificate, depth int) []*x509.Certificate {
	if slices.ContainsFunc(anchors, func(a *x509.Certificate) bool { return a.Equal(c) }) {
		return []*x509.Certificate{c}
	}
	if depth == 0 {
		return nil
	}
	for _, ca := range cas {
		if ca.IsCA && !ca.Equal(c) && signedBy(c, ca) {
			if up := buildChain(ca, cas, anchors, depth-1); up != nil {
				return append([]*x509.Certificate{c}, up...)
			}
		}
	}
	return nil
}

// rootPool is the ca_file's pool, or nil for the system pool.
func (t *Target) rootPool() *x509.CertPool {
	if t.roots == nil {
		return nil
	}
	return t.roots.pool
}
