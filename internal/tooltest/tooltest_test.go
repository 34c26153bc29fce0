package tooltest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder captures Fatalf and Skipf instead of stopping the test, so the
// outcome for a missing tool can be asserted.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skip = fmt.Sprintf(format, args...) }

// The name is unlikely to exist on any machine, so sbin lookups miss it.
const tool = "mcpcert-tooltest-fake-tool"

func writeFile(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, tool)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	return path
}

func TestRequire(t *testing.T) {
	const hint = "run scripts/test.sh to install " + tool
	cases := []struct {
		name        string
		inTools     os.FileMode // 0 means no file
		inPath      os.FileMode
		requireEnv  string
		ci          string
		want        string // "tools", "path" or ""
		fatal, skip bool
	}{
		{name: "tools dir wins over PATH", inTools: 0o755, inPath: 0o755, want: "tools"},
		{name: "found in PATH", inPath: 0o755, want: "path"},
		{name: "non-executable in tools dir is passed over", inTools: 0o644, inPath: 0o755, want: "path"},
		{name: "missing with MCPCERT_REQUIRE_TOOLS=1 fails", requireEnv: "1", fatal: true},
		{name: "missing with CI=true fails", ci: "true", fatal: true},
		{name: "non-executable only, CI=true fails", inPath: 0o644, ci: "true", fatal: true},
		{name: "missing locally skips", skip: true},
		{name: "missing with CI=false skips", ci: "false", requireEnv: "0", skip: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			toolsDir, pathDir := t.TempDir(), t.TempDir()
			wantPath := map[string]string{}
			if tc.inTools != 0 {
				wantPath["tools"] = writeFile(t, toolsDir, tc.inTools)
			}
			if tc.inPath != 0 {
				wantPath["path"] = writeFile(t, pathDir, tc.inPath)
			}
			t.Setenv("PATH", pathDir)
			t.Setenv(RequireEnv, tc.requireEnv)
			t.Setenv("CI", tc.ci)

			rec := &recorder{TB: t}
			got := require(rec, tool, toolsDir)

			if got != wantPath[tc.want] {
				t.Errorf("path = %q, want %q", got, wantPath[tc.want])
			}
			if (rec.fatal != "") != tc.fatal || (rec.skip != "") != tc.skip {
				t.Fatalf("fatal=%q skip=%q, want fatal=%v skip=%v", rec.fatal, rec.skip, tc.fatal, tc.skip)
			}
			if msg := rec.fatal + rec.skip; msg != "" && !strings.Contains(msg, hint) {
				t.Errorf("message %q lacks %q", msg, hint)
			}
		})
	}
}

func TestRequireFindsGo(t *testing.T) {
	got := Require(t, "go")
	if !filepath.IsAbs(got) || filepath.Base(got) != "go" {
		t.Errorf("Require(go) = %q, want an absolute path to go", got)
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("reading go.mod at repo root: %v", err)
	}
	if !strings.HasPrefix(string(mod), "module github.com/mcpcert/mcp_cert_exporter\n") {
		t.Errorf("%s/go.mod is not this module's", root)
	}
}

func TestFindRootWalksUp(t *testing.T) {
	top := t.TempDir()
	if err := os.WriteFile(filepath.Join(top, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatalf("writing go.mod: %v", err)
	}
	deep := filepath.Join(top, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatalf("making %s: %v", deep, err)
	}
	got, err := findRoot(deep)
	if err != nil || got != top {
		t.Errorf("findRoot(%s) = %q, %v; want %q", deep, got, err, top)
	}
}
