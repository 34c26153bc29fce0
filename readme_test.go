package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/probe"
)

var update = flag.Bool("update", false, "rewrite generated documentation sections")

// The documentation files that tests check against the code.
const (
	reasonsDoc    = "docs/reasons.md"    // reasons:begin/end
	postureDoc    = "docs/posture.md"    // findings:begin/end, policy:begin/end
	deploymentDoc = "docs/deployment.md" // the Dockerfile's go build line
)

// reasonsTable renders the failure reasons with their remedies from the code,
// so the documentation cannot drift from what /status and check print.
func reasonsTable() string {
	var b strings.Builder
	b.WriteString("\n| reason | kind | remedy |\n|---|---|---|\n")
	row := func(reason, kind, remedy string) {
		b.WriteString("| `" + reason + "` | " + kind + " | " + remedy + " |\n")
	}
	for _, group := range []struct {
		kind    string
		reasons []probe.Reason
	}{{"endpoint", probe.EndpointReasons}, {"file", probe.FileReasons}, {"posture", probe.PostureReasons}} {
		for _, r := range group.reasons {
			row(string(r), group.kind, r.Remedy())
		}
	}
	for _, r := range probe.MCPReasons {
		row(string(r), "mcp", r.Remedy())
	}
	return b.String()
}

func TestReadmeReasonsInSync(t *testing.T) {
	checkDocSection(t, reasonsDoc, "reasons", reasonsTable(), "failure reasons differ from probe/reason.go", "TestReadmeReasonsInSync")
}

// checkDocSection compares the file doc between <!-- name:begin … --> and
// <!-- name:end --> with want, or rewrites it under -update.
func checkDocSection(t *testing.T, doc, name, want, differ, test string) {
	t.Helper()
	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)(<!-- ` + name + `:begin[^>]*-->)(.*?)(<!-- ` + name + `:end -->)`)
	m := re.FindSubmatch(data)
	if m == nil {
		t.Fatalf("%s lacks the %s:begin/end markers", doc, name)
	}
	if *update {
		out := re.ReplaceAll(data, []byte("${1}"+strings.ReplaceAll(want, "$", "$$")+"${3}"))
		if err := os.WriteFile(doc, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(m[2]) != want {
		t.Fatalf("%s: %s; run: go test -run %s -update .", doc, differ, test)
	}
}

func TestDockerfileBuildsLikeTheReadme(t *testing.T) {
	docker, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(deploymentDoc)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^RUN (.*go build.*)$`).FindSubmatch(docker)
	if m == nil {
		t.Fatal("Dockerfile has no RUN … go build line")
	}
	if !strings.Contains(string(readme), "\n"+string(m[1])+"\n") {
		t.Fatalf("%s does not document the Dockerfile's build command %q", deploymentDoc, m[1])
	}
}
