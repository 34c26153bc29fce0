// Package tooltest finds the external programs (promtool, amtool, …) that
// some tests drive, and decides whether a missing one skips or fails a test.
package tooltest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// RequireEnv set to 1 turns a missing tool into a failure.
const RequireEnv = "MCPCERT_REQUIRE_TOOLS"

// Require returns the absolute path of the named tool, looked up in PATH and
// then in <repo root>/.tools/bin, where scripts/test.sh installs it. A missing
// tool fails the test under CI=true or MCPCERT_REQUIRE_TOOLS=1 and skips it
// otherwise.
func Require(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatalf("resolving %s: %v", p, err)
		}
		return abs
	}
	p := filepath.Join(RepoRoot(t), ".tools", "bin", name)
	if _, err := exec.LookPath(p); err == nil {
		return p
	}
	if mustHave() {
		t.Fatalf("%s is required but not in PATH or %s; run scripts/test.sh to install %s", name, filepath.Dir(p), name)
	}
	t.Skipf("%s not found; run scripts/test.sh to install %s", name, name)
	return ""
}

func mustHave() bool {
	if os.Getenv(RequireEnv) == "1" {
		return true
	}
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// RepoRoot returns the directory holding go.mod, walking up from the working
// directory (the package directory under go test).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getting working directory: %v", err)
	}
	for {
		_, err := os.Stat(filepath.Join(dir, "go.mod"))
		if err == nil {
			return dir
		}
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("finding repo root: %v", fmt.Errorf("checking %s: %w", dir, err))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("finding repo root: no go.mod above the working directory")
		}
		dir = parent
	}
}
