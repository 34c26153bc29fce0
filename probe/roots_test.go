package probe

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// Targets naming one ca_file share its pool while the file holds the same
// certificates, and see a new pool as soon as it changes.
func TestTargetsShareRootsOfOneFile(t *testing.T) {
	dir := t.TempDir()
	first, second := testpki.NewCA("First Root"), testpki.NewCA("Second Root")
	caFile := testpki.WriteFile(t, dir, "ca.pem", first.PEM())
	target := func() *Target {
		t.Helper()
		tg, err := NewTarget(endpoint("127.0.0.1:443", config.TLSConfig{CAFile: caFile}))
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	a, b := target(), target()
	if a.roots != b.roots {
		t.Fatal("two targets of one unchanged ca_file hold two pools")
	}
	if err := os.WriteFile(filepath.Clean(caFile), second.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := target()
	if c.roots == a.roots {
		t.Fatal("a target made after ca_file changed got the old pool")
	}
	if !c.roots.pool.Equal(testpki.Pool(second)) || !a.roots.pool.Equal(testpki.Pool(first)) {
		t.Fatal("pools do not hold the certificates of their file")
	}
}

// A ca_file unchanged since a settled read is not read again, however many
// targets (or /probe requests) name it; a rewrite and a Kubernetes-style
// symlink swap are each seen at the next target.
func TestSettledRootsAreNotReadAgain(t *testing.T) {
	dir := t.TempDir()
	first, second, third := testpki.NewCA("First Root"), testpki.NewCA("Second Root"), testpki.NewCA("Third Root")
	data := testpki.WriteFile(t, dir, "..2026_11_29/ca.pem", first.PEM())
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.Symlink(data, caFile); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	settle := func(path string) {
		t.Helper()
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
	}
	settle(data)
	load := func(want *testpki.Cert) *caBundle {
		t.Helper()
		tg, err := NewTarget(endpoint("127.0.0.1:443", config.TLSConfig{CAFile: caFile}))
		if err != nil {
			t.Fatal(err)
		}
		if !tg.roots.pool.Equal(testpki.Pool(want)) {
			t.Fatal("the pool does not hold the file's certificates")
		}
		return tg.roots
	}
	before := rootsReads.Load()
	a := load(first)
	for range 5 {
		if load(first) != a {
			t.Fatal("an unchanged ca_file gave another bundle")
		}
	}
	if n := rootsReads.Load() - before; n != 1 {
		t.Errorf("%d reads of an unchanged, settled ca_file for 6 targets, want 1", n)
	}

	if err := os.WriteFile(data, second.PEM(), 0o600); err != nil { // rewritten in place, time now
		t.Fatal(err)
	}
	load(second)
	settle(data)
	load(second) // read again, settled now
	swapped := testpki.WriteFile(t, dir, "..2026_11_30/ca.pem", third.PEM())
	settle(swapped) // the same old time: the inode tells
	if err := os.Rename(swapped, data); err != nil {
		t.Fatal(err)
	}
	load(third)
}
