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

// VerifyCacheSize bounds the cache of verified chains: the chains of this
// many distinct (certificates sent, roots) pairs are remembered, the least
// recently used going first. An entry holds a key, indexes and pointers to
// root certificates already in memory, a few hundred bytes, so a full
// cache stays under 40 MB. The cache of signature facts (this certificate
// signed that one) holds twice as many, about 150 bytes each.
const VerifyCacheSize = 1 << 17

// The chain cache remembers the chains crypto/x509 built and whose
// signatures it checked, so that a server sending the same certificates at
// every refresh costs one chain build, not one per refresh. Only successful
// builds are kept: a failure is rebuilt every time, so that its reason and
// detail come from a fresh verification.
//
// An entry is only used while every certificate that verification could
// have looked at (those sent, those of the chain, and every certificate of
// ca_file) is inside or outside its validity window exactly as it was when
// the chain was built. Time is the only input of x509.Certificate.Verify
// besides the certificates, the roots and the options, which are the key or
// fixed, so within that span a fresh verification would build the very same
// chain. The system pool cannot be listed: without ca_file, a system root
// outside the chain entering its window could change which chain is
// preferred, never whether one verifies. The hostname is checked at every
// probe, and the handshake's own signature is checked by crypto/tls even
// with InsecureSkipVerify (CertificateVerify in TLS 1.3, ServerKeyExchange
// in TLS 1.2).
type verifyCache struct{ lru[*verifiedChain] }

// lru is a bounded map from a SHA-256 key, least recently used out first.
// Hand-written: none of the allowed modules has one.
type lru[V any] struct {
	mu      sync.Mutex
	max     int
	order   list.List // of *lruEntry[V], most recently used first
	entries map[chainKey]*list.Element
	stats   VerifyCacheStats
}

type lruEntry[V any] struct {
	key   chainKey
	value V
}

func newLRU[V any](size int) *lru[V] {
	return &lru[V]{max: size, entries: map[chainKey]*list.Element{}}
}

func newVerifyCache(size int) *verifyCache { return &verifyCache{*newLRU[*verifiedChain](size)} }

// lookup returns the value under key if usable says it may be used. A nil
// cache has nothing.
func (c *lru[V]) lookup(key chainKey, usable func(V) bool) (v V, ok bool) {
	if c == nil {
		return v, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.entries[key]
	if !found || !usable(e.Value.(*lruEntry[V]).value) {
		c.stats.Misses++
		return v, false
	}
	c.stats.Hits++
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry[V]).value, true
}

// store puts v under key, dropping the least recently used entry when full.
func (c *lru[V]) store(key chainKey, v V) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		e.Value.(*lruEntry[V]).value = v
		c.order.MoveToFront(e)
		return
	}
	c.entries[key] = c.order.PushFront(&lruEntry[V]{key, v})
	if c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.entries, old.Value.(*lruEntry[V]).key)
		c.stats.Evictions++
	}
}

func (c *lru[V]) read() VerifyCacheStats {
	if c == nil {
		return VerifyCacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = c.order.Len()
	return s
}

// VerifyCacheStats are a cache's counters since it was made.
type VerifyCacheStats struct {
	Hits, Misses, Evictions uint64
	Entries                 int
}

// chainKey is SHA-256 over the roots' generation and the DER of every
// certificate sent, in order; or over the two certificates of a signature.
type chainKey [sha256.Size]byte

// verifiedChain is a chain built once: each link is a certificate the
// server sent, by its index, or one from the roots. Within [from, until)
// every certificate verification considered is as valid as at the build.
type verifiedChain struct {
	links       []chainLink
	from, until time.Time
}

type chainLink struct {
	sent int               // index into the certificates sent, or -1
	cert *x509.Certificate // a root or other certificate not sent
}

// The process's caches; nil verifies every chain and signature afresh.
var (
	verified   atomic.Pointer[verifyCache]
	signatures atomic.Pointer[lru[bool]]
)

func init() { SetVerifyCacheSize(VerifyCacheSize) }

// SetVerifyCacheSize replaces both caches with empty ones, the signature
// cache holding twice as many entries; 0 turns them off. The load harness uses it to
// measure the probe with and without them in one build; the counters start
// again from zero.
func SetVerifyCacheSize(size int) {
	if size <= 0 {
		verified.Store(nil)
		signatures.Store(nil)
		return
	}
	verified.Store(newVerifyCache(size))
	signatures.Store(newLRU[bool](2 * size))
}

// ReadVerifyCacheStats reads the counters of the chain cache and of the
// signature cache.
func ReadVerifyCacheStats() (chains, sigs VerifyCacheStats) {
	if vc := verified.Load(); vc != nil {
		chains = vc.read()
	}
	return chains, signatures.Load().read()
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
// handshake, and its entry, or nil when there is none valid at now.
func (vc *verifyCache) get(key chainKey, sent []*x509.Certificate, now time.Time) ([]*x509.Certificate, *verifiedChain) {
	if vc == nil {
		return nil, nil
	}
	v, ok := vc.lookup(key, func(v *verifiedChain) bool { return !now.Before(v.from) && now.Before(v.until) })
	if !ok {
		return nil, nil
	}
	chain := make([]*x509.Certificate, len(v.links))
	for i, l := range v.links {
		chain[i] = l.cert
		if l.sent >= 0 {
			chain[i] = sent[l.sent]
		}
	}
	return chain, v
}

// put remembers chains[0], built at now from sent and roots, and returns
// its entry (nil without a cache).
func (vc *verifyCache) put(key chainKey, sent []*x509.Certificate, chains [][]*x509.Certificate, roots *caBundle, now time.Time) *verifiedChain {
	if vc == nil {
		return nil
	}
	v := &verifiedChain{links: make([]chainLink, len(chains[0]))}
	for i, c := range chains[0] {
		v.links[i] = chainLink{sent: slices.Index(sent, c), cert: c}
		if v.links[i].sent >= 0 {
			v.links[i].cert = nil // the next handshake's own copy is used
		}
	}
	v.from, v.until = sameValidity(now, sent, slices.Concat(chains...), roots.certificates())
	vc.store(key, v)
	return v
}

// checkedSignature is check's verdict on whether parent signed child, from
// the signature cache when these two certificates were checked before: it
// depends on their bytes alone.
func checkedSignature(child, parent *x509.Certificate, check func() bool) bool {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(child.Raw)))
	h.Write(n[:])
	h.Write(child.Raw)
	h.Write(parent.Raw)
	var key chainKey
	h.Sum(key[:0])
	sc := signatures.Load()
	if ok, found := sc.lookup(key, func(bool) bool { return true }); found {
		return ok
	}
	ok := check()
	sc.store(key, ok)
	return ok
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
