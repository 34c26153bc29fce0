package probe

import (
	"container/list"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// VerifyCacheSize bounds the verification cache: the chains of this many
// distinct (certificates sent, roots) pairs are remembered, the least
// recently used going first. An entry holds a key, indexes and pointers to
// root certificates already in memory, a few hundred bytes, so a full cache
// stays under 30 MB.
const VerifyCacheSize = 1 << 16

// verifyCache remembers the chains crypto/x509 built and whose signatures
// it checked, so that a server sending the same certificates at every
// refresh costs one chain build, not one per refresh. Only successful
// builds are kept: a failure is rebuilt every time, so that its reason and
// detail come from a fresh verification.
//
// An entry is only used while every certificate that verification could
// have looked at (those sent, those of the chain, and every certificate of
// ca_file) is inside or outside its validity window exactly as it was when
// the chain was built. Time is the only input of x509.Certificate.Verify
// besides the certificates, the roots and the options, which are the key or
// fixed, so within that span a fresh verification would build the very same
// chain. The hostname is checked at every probe, and the handshake's own
// signature is checked by crypto/tls even with InsecureSkipVerify
// (CertificateVerify in TLS 1.3, ServerKeyExchange in TLS 1.2).
type verifyCache struct {
	mu      sync.Mutex
	max     int
	lru     list.List // of *verifiedChain, most recently used first
	entries map[chainKey]*list.Element
	stats   VerifyCacheStats
}

// VerifyCacheStats are the cache's counters since the process started.
type VerifyCacheStats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
}

// chainKey is SHA-256 over the roots' generation and the DER of every
// certificate sent, in order.
type chainKey [sha256.Size]byte

// verifiedChain is a chain built once: each link is a certificate the
// server sent, by its index, or one from the roots. Within [from, until)
// every certificate verification considered is as valid as at the build.
type verifiedChain struct {
	key         chainKey
	links       []chainLink
	from, until time.Time
}

type chainLink struct {
	sent int               // index into the certificates sent, or -1
	cert *x509.Certificate // a root or other certificate not sent
}

// verified is the process's cache; nil verifies every chain afresh.
var verified atomic.Pointer[verifyCache]

func init() { verified.Store(newVerifyCache(VerifyCacheSize)) }

// SetVerifyCacheSize replaces the cache with an empty one of size chains;
// 0 turns it off. The load harness uses it to measure the probe with and
// without the cache in one build; the counters start again from zero.
func SetVerifyCacheSize(size int) {
	if size <= 0 {
		verified.Store(nil)
		return
	}
	verified.Store(newVerifyCache(size))
}

func newVerifyCache(size int) *verifyCache {
	return &verifyCache{max: size, entries: map[chainKey]*list.Element{}}
}

// ReadVerifyCacheStats reads the counters of the process's verification cache.
func ReadVerifyCacheStats() VerifyCacheStats {
	vc := verified.Load()
	if vc == nil {
		return VerifyCacheStats{}
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	s := vc.stats
	s.Entries = vc.lru.Len()
	return s
}

// chainKeyOf names the certificates sent and the roots they are verified
// against. A caBundle's generation changes whenever ca_file's certificates
// do, so a changed file or a reload that reads a changed file misses.
func chainKeyOf(roots *caBundle, sent []*x509.Certificate) chainKey {
	h := sha256.New()
	var n [8]byte
	if roots != nil {
		binary.BigEndian.PutUint64(n[:], roots.gen)
	}
	h.Write(n[:])
	for _, c := range sent {
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k chainKey
	h.Sum(k[:0])
	return k
}

// get returns the chain built for key, made of the certificates of this
// handshake, or nil when there is none valid at now. A nil cache has none.
func (vc *verifyCache) get(key chainKey, sent []*x509.Certificate, now time.Time) []*x509.Certificate {
	if vc == nil {
		return nil
	}
	vc.mu.Lock()
	defer vc.mu.Unlock()
	e, ok := vc.entries[key]
	if !ok {
		vc.stats.Misses++
		return nil
	}
	v := e.Value.(*verifiedChain)
	if now.Before(v.from) || !now.Before(v.until) {
		vc.stats.Misses++
		return nil
	}
	vc.stats.Hits++
	vc.lru.MoveToFront(e)
	chain := make([]*x509.Certificate, len(v.links))
	for i, l := range v.links {
		chain[i] = l.cert
		if l.sent >= 0 {
			chain[i] = sent[l.sent]
		}
	}
	return chain
}

// put remembers chains[0], built at now from sent and roots.
func (vc *verifyCache) put(key chainKey, sent []*x509.Certificate, chains [][]*x509.Certificate, roots *caBundle, now time.Time) {
	if vc == nil {
		return
	}
	v := &verifiedChain{key: key, links: make([]chainLink, len(chains[0]))}
	for i, c := range chains[0] {
		v.links[i] = chainLink{sent: slices.Index(sent, c), cert: c}
		if v.links[i].sent >= 0 {
			v.links[i].cert = nil // the next handshake's own copy is used
		}
	}
	v.from, v.until = sameValidity(now, sent, slices.Concat(chains...), roots.certificates())
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if e, ok := vc.entries[key]; ok {
		e.Value = v
		vc.lru.MoveToFront(e)
		return
	}
	vc.entries[key] = vc.lru.PushFront(v)
	if vc.lru.Len() > vc.max {
		old := vc.lru.Back()
		vc.lru.Remove(old)
		delete(vc.entries, old.Value.(*verifiedChain).key)
		vc.stats.Evictions++
	}
}

// sameValidity is the span around now in which no certificate of the sets
// enters or leaves its validity window. crypto/x509 takes a certificate as
// valid from NotBefore to NotAfter, both included.
func sameValidity(now time.Time, sets ...[]*x509.Certificate) (from, until time.Time) {
	until = time.Unix(1<<62, 0)
	for _, set := range sets {
		for _, c := range set {
			for _, edge := range [2]time.Time{c.NotBefore, c.NotAfter.Add(time.Nanosecond)} {
				if edge.After(now) {
					until = minTime(until, edge)
				} else if edge.After(from) {
					from = edge
				}
			}
		}
	}
	return from, until
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
