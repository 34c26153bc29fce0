package probe

import (
	"crypto/x509"
	"runtime"
	"sync"
	"weak"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// sharedRoots hands out one pool per ca_file to every target that names it,
// as long as the file holds the same certificates: a fleet behind one
// private CA would otherwise keep a parsed copy of the CA per endpoint.
// Pools are never modified once loaded, so sharing them is safe; entries go
// when no target holds their pool any more.
var sharedRoots = struct {
	sync.Mutex
	byFile map[string]weak.Pointer[x509.CertPool]
}{byFile: map[string]weak.Pointer[x509.CertPool]{}}

// loadRoots reads ca_file afresh, so that a changed file is seen at once,
// and returns the pool already loaded from it if that one is equal.
func loadRoots(file string) (*x509.CertPool, error) {
	pool, err := config.LoadCAFile(file)
	if err != nil {
		return nil, err
	}
	sharedRoots.Lock()
	defer sharedRoots.Unlock()
	if prev := sharedRoots.byFile[file].Value(); prev != nil && prev.Equal(pool) {
		return prev, nil
	}
	sharedRoots.byFile[file] = weak.Make(pool)
	runtime.AddCleanup(pool, forgetRoots, file)
	return pool, nil
}

// forgetRoots drops the entry of a collected pool, unless a newer pool
// took its place.
func forgetRoots(file string) {
	sharedRoots.Lock()
	defer sharedRoots.Unlock()
	if sharedRoots.byFile[file].Value() == nil {
		delete(sharedRoots.byFile, file)
	}
}
