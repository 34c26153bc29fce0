package probe

import (
	"crypto/x509"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// caBundle is a ca_file loaded once: the pool verification uses, and its
// certificates, which a pool does not list, for telling a leaf that is only
// out of date from one that is not trusted (timeOnly).
type caBundle struct {
	pool  *x509.CertPool
	certs []*x509.Certificate
	gen   uint64 // unique to this bundle: the verification cache's key
}

// bundles numbers bundles from 1; 0 is the system pool.
var bundles atomic.Uint64

// certificates is the bundle's certificates, none for the system pool.
func (b *caBundle) certificates() []*x509.Certificate {
	if b == nil {
		return nil
	}
	return b.certs
}

// sharedRoots hands out one bundle per ca_file to every target that names it,
// as long as the file holds the same certificates: a fleet behind one
// private CA would otherwise keep a parsed copy of the CA per endpoint.
// Bundles are never modified once loaded, so sharing them is safe; entries go
// when no target holds their bundle any more.
var sharedRoots = struct {
	sync.Mutex
	byFile map[string]weak.Pointer[caBundle]
}{byFile: map[string]weak.Pointer[caBundle]{}}

// loadRoots reads ca_file afresh, so that a changed file is seen at once,
// and returns the bundle already loaded from it if that one is equal.
func loadRoots(file string) (*caBundle, error) {
	pool, certs, err := config.LoadCABundle(file)
	if err != nil {
		return nil, err
	}
	sharedRoots.Lock()
	defer sharedRoots.Unlock()
	if prev := sharedRoots.byFile[file].Value(); prev != nil && prev.pool.Equal(pool) {
		return prev, nil
	}
	b := &caBundle{pool: pool, certs: certs, gen: bundles.Add(1)}
	sharedRoots.byFile[file] = weak.Make(b)
	runtime.AddCleanup(b, forgetRoots, file)
	return b, nil
}

// forgetRoots drops the entry of a collected bundle, unless a newer bundle
// took its place.
func forgetRoots(file string) {
	sharedRoots.Lock()
	defer sharedRoots.Unlock()
	if sharedRoots.byFile[file].Value() == nil {
		delete(sharedRoots.byFile, file)
	}
}
