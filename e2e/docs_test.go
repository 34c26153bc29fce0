package e2e

// Tests of the documentation against the code and itself: generated
// tables, the metric catalog, the Dockerfile's build line, and links.

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/metrics"
	"github.com/mcpcert/mcp_cert_exporter/policy"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

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
		t.Fatalf("%s: %s; run: go test -run %s -update ./e2e", doc, differ, test)
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

// metricRow is a row of a metric table in the documentation: | `name` | labels | meaning |.
var metricRow = regexp.MustCompile("(?m)^\\| `((?:ssl|mcp)_[a-z0-9_]+)` \\|([^|]*)\\|")

// TestDocsListTheCatalog reads the metric tables of docs/*.md against the
// metric catalog: every family documented once with its labels, and no
// documented metric that the catalog lacks. The README's short table of the
// metrics people alert on must name catalog families with their labels.
func TestDocsListTheCatalog(t *testing.T) {
	docs, _ := filepath.Glob("docs/*.md")
	rows := map[string][]string{}
	for _, m := range metricRows(t, docs...) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("%s is documented twice", m[1])
		}
		rows[m[1]] = docLabels(m[2])
	}
	catalog := map[string][]string{}
	for _, f := range metrics.All() {
		catalog[f.Name] = sorted(f.Labels)
		labels, ok := rows[f.Name]
		switch {
		case !ok:
			t.Errorf("%s is in the catalog (metrics/catalog.go) but in no metric table of the docs", f.Name)
		case !slices.Equal(labels, sorted(f.Labels)):
			t.Errorf("%s: the docs name the labels %q, the catalog %q", f.Name, labels, sorted(f.Labels))
		}
		delete(rows, f.Name)
	}
	delete(rows, "mcp_cert_exporter_build_info") // client_golang's version collector, registered in main.go
	for name := range rows {
		t.Errorf("the docs document %s, which the catalog lacks", name)
	}
	for _, m := range metricRows(t, "README.md") {
		if labels, ok := catalog[m[1]]; !ok || !slices.Equal(docLabels(m[2]), labels) {
			t.Errorf("README.md lists %s with labels %q; the catalog has %q", m[1], docLabels(m[2]), labels)
		}
	}
}

// metricRows are the rows of the metric tables in files.
func metricRows(t *testing.T, files ...string) [][]string {
	t.Helper()
	var text strings.Builder
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(b)
	}
	return metricRow.FindAllStringSubmatch(text.String(), -1)
}

// docLabels reads a labels cell: "target, version (`TLS 1.0` …)", or
// "certificate labels + `fingerprint_sha256`, …".
func docLabels(cell string) []string {
	cell = regexp.MustCompile(`\([^)]*\)`).ReplaceAllString(cell, "")
	cell = strings.ReplaceAll(cell, "certificate labels", strings.Join(metrics.CertExpiry.Labels, ","))
	var out []string
	for _, l := range strings.FieldsFunc(cell, func(r rune) bool { return r == ',' || r == '+' }) {
		if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
			out = append(out, l)
		}
	}
	return sorted(out)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// docFiles are the README and the reference it links to.
func docFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	return append([]string{"README.md"}, docs...)
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile("(?m)^#+ (.+)$")
	fence     = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchor is GitHub's id for a heading: lower case, punctuation dropped,
// spaces as hyphens.
func anchor(heading string) string {
	h := strings.ToLower(strings.TrimSpace(heading))
	h = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`).ReplaceAllString(h, "")
	return strings.ReplaceAll(h, " ", "-")
}

func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range mdHeading.FindAllStringSubmatch(fence.ReplaceAllString(string(src), ""), -1) {
		ids[anchor(m[1])] = true
	}
	return ids
}

// TestDocLinksResolve keeps the README's and docs/'s relative links and
// #anchors pointing at files and headings that exist, so moving a section
// cannot leave a dead link behind.
func TestDocLinksResolve(t *testing.T) {
	for _, file := range docFiles(t) {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := fence.ReplaceAllString(string(src), "")
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			link := m[1]
			if strings.Contains(link, "://") {
				continue
			}
			path, frag, _ := strings.Cut(link, "#")
			target := file
			if path != "" {
				target = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: link %q: %v", file, link, err)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(target, ".md") && !anchors(t, target)[frag] {
				t.Errorf("%s: link %q: no heading with that anchor in %s", file, link, target)
			}
		}
	}
}
