// Package tooltest finds the external programs (promtool, prometheus,
// alertmanager, nginx, testssl, openssl) that some tests drive, and decides
// whether a missing one skips the test or fails it.
package tooltest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// RequireEnv set to 1 turns a missing tool into a failure; scripts/test.sh
// sets it so that the documented test command never skips silently.
const RequireEnv = "MCPCERT_REQUIRE_TOOLS"

// sbinDirs hold Debian's nginx, which a non-root PATH usually lacks.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// Require returns the absolute path of the named tool. The pinned builds in
// <repo root>/.tools/bin win over PATH, so an older promtool installed on
// the system does not shadow the version the tests were written for. When
// the tool is missing the test fails under CI=true or MCPCERT_REQUIRE_TOOLS=1
// and is skipped otherwise.
func Require(t testing.TB, name string) string {
	t.Helper()
	return require(t, name, filepath.Join(RepoRoot(t), ".tools", "bin"))
}

func require(t testing.TB, name, toolsDir string) string {
	t.Helper()
	path, err := find(name, toolsDir)
	if err == nil {
		return path
	}
	if mustHave() {
		t.Fatalf("%s is required: %v; run scripts/test.sh to install %s", name, err, name)
	} else {
		t.Skipf("%s not found: %v; run scripts/test.sh to install %s", name, err, name)
	}
	return ""
}

// find looks in toolsDir, then PATH, then the sbin directories.
func find(name, toolsDir string) (string, error) {
	if p, err := lookIn(toolsDir, name); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range sbinDirs {
		if p, err := lookIn(dir, name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not in %s, PATH or %v", toolsDir, sbinDirs)
}

func lookIn(dir, name string) (string, error) {
	p, err := exec.LookPath(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return filepath.Abs(p)
}

func mustHave() bool {
	if os.Getenv(RequireEnv) == "1" {
		return true
	}
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// RepoRoot returns the directory holding go.mod, walking up from the test's
// working directory (its package directory under go test).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getting working directory: %v", err)
	}
	root, err := findRoot(dir)
	if err != nil {
		t.Fatalf("finding repo root: %v", err)
	}
	return root
}

func findRoot(dir string) (string, error) {
	for {
		_, err := os.Stat(filepath.Join(dir, "go.mod"))
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("checking %s: %w", dir, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in any parent directory")
		}
		dir = parent
	}
}

// NPMDirEnv names the directory scripts/install-tools.sh installs the npm
// packages the interop tests use into; it defaults to NPMDir's answer.
const NPMDirEnv = "MCPCERT_NPM_DIR"

// NPMPackage returns the node_modules directory that holds the named npm
// package, as installed by scripts/install-tools.sh, and the package's
// version. A missing package fails or skips the test like a missing tool.
func NPMPackage(t testing.TB, name string) (nodeModules, version string) {
	t.Helper()
	dir := os.Getenv(NPMDirEnv)
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("finding the npm cache: %v", err)
		}
		dir = filepath.Join(home, ".cache", "mcp_cert_exporter", "npm")
	}
	nodeModules = filepath.Join(dir, "node_modules")
	data, err := os.ReadFile(filepath.Join(nodeModules, name, "package.json"))
	var pkg struct{ Version string }
	if err == nil {
		err = json.Unmarshal(data, &pkg)
	}
	if err != nil {
		msg := fmt.Sprintf("npm package %s is required: %v; run scripts/install-tools.sh (or set %s)", name, err, NPMDirEnv)
		if mustHave() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return nodeModules, pkg.Version
}

// Unavailable is Require's verdict for something other than a program, such
// as a Docker engine that does not answer: the test fails where tools are
// required and is skipped otherwise.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if mustHave() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
