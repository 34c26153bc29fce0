package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/probe"
)

var update = flag.Bool("update", false, "rewrite generated README sections")

// reasonsTable renders the failure reasons with their remedies from the code,
// so the README cannot drift from what /status and check print.
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
	checkReadmeSection(t, "reasons", reasonsTable(), "failure reasons differ from probe/reason.go", "TestReadmeReasonsInSync")
}

// checkReadmeSection compares the README between <!-- name:begin … --> and
// <!-- name:end --> with want, or rewrites it under -update.
func checkReadmeSection(t *testing.T, name, want, differ, test string) {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)(<!-- ` + name + `:begin[^>]*-->)(.*?)(<!-- ` + name + `:end -->)`)
	m := re.FindSubmatch(data)
	if m == nil {
		t.Fatalf("README.md lacks the %s:begin/end markers", name)
	}
	if *update {
		out := re.ReplaceAll(data, []byte("${1}"+strings.ReplaceAll(want, "$", "$$")+"${3}"))
		if err := os.WriteFile("README.md", out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(m[2]) != want {
		t.Fatalf("README.md's %s; run: go test -run %s -update .", differ, test)
	}
}

func TestDockerfileBuildsLikeTheReadme(t *testing.T) {
	docker, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^RUN (.*go build.*)$`).FindSubmatch(docker)
	if m == nil {
		t.Fatal("Dockerfile has no RUN … go build line")
	}
	if !strings.Contains(string(readme), "\n"+string(m[1])+"\n") {
		t.Fatalf("README.md does not document the Dockerfile's build command %q", m[1])
	}
}
