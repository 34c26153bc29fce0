package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

// checkMetricsLint runs promtool's linter over real exporter output.
func checkMetricsLint(t *testing.T, text string) {
	t.Helper()
	cmd := exec.Command(tooltest.Require(t, "promtool"), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
