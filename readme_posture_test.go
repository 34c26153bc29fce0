package main

import (
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/policy"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// docTable renders rows of name, condition and remedy under a header.
func docTable(header string, rows [][3]string) string {
	var b strings.Builder
	b.WriteString("\n| " + header + " |\n|---|---|---|\n")
	for _, r := range rows {
		b.WriteString("| `" + r[0] + "` | " + r[1] + " | " + r[2] + " |\n")
	}
	return b.String()
}

// TestReadmePostureInSync keeps the findings and policy rules, with
// their conditions and remedies in docs/posture.md, equal to what check prints.
func TestReadmePostureInSync(t *testing.T) {
	var findings, rules [][3]string
	for _, f := range probe.Findings {
		findings = append(findings, [3]string{string(f), f.When(), f.Remedy()})
	}
	for _, r := range policy.Rules {
		rules = append(rules, [3]string{string(r), r.Breach(), r.Remedy()})
	}
	checkDocSection(t, postureDoc, "findings", docTable("finding | reported when | remedy", findings),
		"findings differ from probe/findings.go", "TestReadmePostureInSync")
	checkDocSection(t, postureDoc, "policy", docTable("rule | breached when | remedy", rules),
		"policy rules differ from policy/policy.go", "TestReadmePostureInSync")
}
