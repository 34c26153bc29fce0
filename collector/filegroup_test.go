package collector

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
)

// A rescan that finds the files unchanged keeps their rendered text and
// only renders the group's own samples; a changed file is rendered again.
func TestFileRescanKeepsTextOfUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA("Root")
	mtime := time.Now().Add(-time.Hour) // past the reader's racy window, so it caches
	write := func(name, cn string) {
		p := testpki.WriteFile(t, dir, name, ca.Leaf(cn).PEM())
		mtime = mtime.Add(time.Minute)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	write("a.pem", "first-a")
	write("b.pem", "first-b")
	cfg, err := config.Parse([]byte("files:\n  - {name: f, paths: [\""+dir+"/*.pem\"]}\n"), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	c := New(slog.New(slog.DiscardHandler))
	if err := c.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	j := c.targets[0]
	g := j.kind.(*fileGroup)
	refresh := func() (*metrics.Exposition, metricstest.Families) {
		j.refresh(context.Background())
		return g.files.text, scrape(t, c)
	}
	first, _ := refresh()
	again, f := refresh()
	if again != first {
		t.Error("a rescan of unchanged files rendered them again")
	}
	if got, want := f.One(t, "ssl_probe_last_run_timestamp_seconds", nil), metrics.Unix(g.res.last.Load().Time); got != want {
		t.Errorf("last run %v, want the rescan's %v", got, want)
	}
	write("b.pem", "second-b")
	changed, f := refresh()
	if changed == first {
		t.Fatal("a changed file was not rendered again")
	}
	if got := f.LabelValues("ssl_certificate_info", "subject_cn", nil); len(got) != 2 || got[0] != "first-a" || got[1] != "second-b" {
		t.Errorf("certificates after the change: %v", got)
	}
	f.One(t, "ssl_certificate_expiry_seconds", map[string]string{"path": filepath.Join(dir, "b.pem"), "subject_cn": "second-b"})
}
