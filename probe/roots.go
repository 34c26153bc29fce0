package probe

import (
	"crypto/x509"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
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
	byFile map[string]rootsEntry
}{byFile: map[string]rootsEntry{}}

type rootsEntry struct {
	bundle weak.Pointer[caBundle]
	stamp  fileStamp // the file's when bundle was read
	// settled: the file was older than settleAfter when read, so any later
	// write shows in its stamp.
	settled bool
}

// fileStamp tells a file's versions apart without reading it: a rewrite
// changes its modification time, a Kubernetes secret update (a symlink
// swapped to a new file) its inode.
type fileStamp struct {
	size, mod int64
	ino       uint64
}

// settleAfter is more than the coarsest modification-time granularity of
// the file systems a ca_file lives on: a file written within it may be
// written again without its time changing.
const settleAfter = 2 * time.Second

// rootsReads counts the ca_file reads, for tests.
var rootsReads atomic.Int64

func stampOf(file string) (fileStamp, bool) {
	fi, err := os.Stat(file)
	if err != nil {
		return fileStamp{}, false
	}
	st := fileStamp{size: fi.Size(), mod: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st, true
}

// loadRoots returns the bundle of ca_file. A file unchanged since a settled
// read (same size, time and inode) is not read again: /probe makes a target
// per request, and a system bundle takes milliseconds to parse. Otherwise
// it is read afresh, so that a changed file is seen at once, and the bundle
// already loaded from it is returned if that one is equal.
func loadRoots(file string) (*caBundle, error) {
	stamp, stamped := stampOf(file)
	sharedRoots.Lock()
	e := sharedRoots.byFile[file]
	if b := e.bundle.Value(); b != nil && stamped && e.settled && e.stamp == stamp {
		sharedRoots.Unlock()
		return b, nil
	}
	sharedRoots.Unlock()
	rootsReads.Add(1)
	pool, certs, err := config.LoadCABundle(file)
	if err != nil {
		return nil, err
	}
	settled := stamped && time.Since(time.Unix(0, stamp.mod)) >= settleAfter
	sharedRoots.Lock()
	defer sharedRoots.Unlock()
	if prev := sharedRoots.byFile[file].bundle.Value(); prev != nil && prev.pool.Equal(pool) {
		sharedRoots.byFile[file] = rootsEntry{bundle: weak.Make(prev), stamp: stamp, settled: settled}
		return prev, nil
	}
	b := &caBundle{pool: pool, certs: certs, gen: bundles.Add(1)}
	sharedRoots.byFile[file] = rootsEntry{bundle: weak.Make(b), stamp: stamp, settled: settled}
	runtime.AddCleanup(b, forgetRoots, file)
	return b, nil
}

// forgetRoots drops the entry of a collected bundle, unless a newer bundle
// took its place.
func forgetRoots(file string) {
	sharedRoots.Lock()
	defer sharedRoots.Unlock()
	if sharedRoots.byFile[file].bundle.Value() == nil {
		delete(sharedRoots.byFile, file)
	}
}
