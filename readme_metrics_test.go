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

// TestDocsListTheCatalog reads the metric tables of README.md and docs/*.md
// against the metric catalog: every family documented once with its
// labels, and no documented metric that the catalog lacks.
func TestDocsListTheCatalog(t *testing.T) {
	docs := []string{"README.md"}
	more, _ := filepath.Glob("docs/*.md")
	var text strings.Builder
	for _, p := range append(docs, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		text.Write(b)
	}
	rows := map[string][]string{}
	for _, m := range metricRow.FindAllStringSubmatch(text.String(), -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("%s is documented twice", m[1])
		}
		rows[m[1]] = docLabels(m[2])
	}
	for _, f := range metrics.All() {
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
