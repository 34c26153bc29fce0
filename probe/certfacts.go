package probe

import "sync"

// certFacts are the facts of the certificates a target's server sent last
// (what chainInfo and assessFindings make), with the verify cache entry of the
// chain they were worked out from. A server sends the same chain at almost
// every probe, and the same entry means the same certificates in the same
// order, verified to the same chain against the same roots: the facts are
// the same, so the last result's are shared instead of worked out again,
// which saves the hashing and the allocations of every certificate's facts
// at each refresh. A stapled OCSP response feeds the findings and is not
// part of the entry, so a probe with a staple always works them out.
type certFacts struct {
	mu     sync.Mutex
	cached *verifiedChain
	certs  []CertInfo // read-only once kept: results share it
}

// get is the facts kept for the chain of entry cached, nil when none are.
func (f *certFacts) get(cached *verifiedChain, staple []byte) []CertInfo {
	if cached == nil || len(staple) > 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cached != cached {
		return nil
	}
	return f.certs
}

// keep keeps certs as the facts of the chain of entry cached; facts that
// cannot be reused are not kept, so the last result's are not held twice.
func (f *certFacts) keep(cached *verifiedChain, staple []byte, certs []CertInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cached == nil || len(staple) > 0 || len(certs) == 0 {
		f.cached, f.certs = nil, nil
		return
	}
	f.cached, f.certs = cached, certs[:len(certs):len(certs)]
}
