package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/metrics"
)

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
