package main

import (
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

// checkMetricsLint runs promtool's linter over real exporter output.
func checkMetricsLint(t *testing.T, text string) {
	t.Helper()
	tooltest.CheckMetrics(t, text)
}
