package tooltest

import (
	"os/exec"
	"strings"
	"testing"
)

// CheckMetrics runs promtool's linter over exposition text.
func CheckMetrics(t testing.TB, text string) {
	t.Helper()
	cmd := exec.Command(Require(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
