package probe

import (
	"os"
	"path/filepath"
	"testing"

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
