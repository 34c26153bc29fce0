package probe

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
)

// certLoader holds a client key pair and reads it again when either file
// changes, so certificates rotated on disk (cert-manager, Vault agent,
// Kubernetes secret mounts) are picked up without a reload.
type certLoader struct {
	certFile, keyFile string

	mu       sync.Mutex
	certStat os.FileInfo // as stat'ed before the last read
	keyStat  os.FileInfo
	cert     *tls.Certificate
	err      error
}

func newCertLoader(certFile, keyFile string) *certLoader {
	return &certLoader{certFile: certFile, keyFile: keyFile}
}

// get returns the key pair, reading the files only when one changed since the
// last read. A failed read is kept too, so broken files are not parsed on
// every probe. Errors name the files, never the key.
func (l *certLoader) get() (*tls.Certificate, error) {
	cs, err := os.Stat(l.certFile)
	if err != nil {
		return nil, fmt.Errorf("loading client certificate: %w", err)
	}
	ks, err := os.Stat(l.keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading client key: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if unchanged(l.certStat, cs) && unchanged(l.keyStat, ks) {
		return l.cert, l.err
	}
	// The stats are from before the read: a write racing the read changes
	// them again, so the next probe reads once more.
	l.certStat, l.keyStat = cs, ks
	cert, err := tls.LoadX509KeyPair(l.certFile, l.keyFile)
	if err != nil {
		l.cert, l.err = nil, fmt.Errorf("loading client certificate %s with key %s: %w", l.certFile, l.keyFile, err)
		return nil, l.err
	}
	l.cert, l.err = &cert, nil
	return l.cert, nil
}

// unchanged compares the file identity too, so a file replaced by rename
// (a new inode) counts as changed even with the same mtime and size.
func unchanged(old, cur os.FileInfo) bool {
	return old != nil && os.SameFile(old, cur) && old.ModTime().Equal(cur.ModTime()) && old.Size() == cur.Size()
}
