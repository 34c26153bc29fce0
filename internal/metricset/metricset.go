// Package metricset is the one place that knows which metric names exist:
// those the collector renders (read from its source), the names promised by
// the MCP and posture issue contracts, and the few that client_golang and
// Prometheus add. Tests use it to check that alerts and dashboards only
// query metrics the exporter exports.
package metricset

import (
	_ "embed"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed contract_metrics.txt
var contractFile string

// Known maps every metric name that can be queried to where it comes from.
// repoRoot is the directory that holds go.mod.
func Known(repoRoot string) (map[string]string, error) {
	known, err := Rendered(filepath.Join(repoRoot, "collector"))
	if err != nil {
		return nil, err
	}
	for _, n := range Contract() {
		if _, ok := known[n]; !ok {
			known[n] = "contract (issue 3/4), not rendered yet"
		}
	}
	for n, origin := range extra {
		known[n] = origin
	}
	return known, nil
}

// extra are names that do not appear in collector/: main.go registers
// client_golang's version collector as mcp_cert_exporter, and Prometheus adds
// the scrape metrics and ALERTS itself.
var extra = map[string]string{
	"mcp_cert_exporter_build_info": "version collector registered in main.go",
	"up":                           "Prometheus scrape",
	"scrape_duration_seconds":      "Prometheus scrape",
	"scrape_samples_scraped":       "Prometheus scrape",
	"ALERTS":                       "Prometheus rule evaluation",
}

// Contract returns the promised names from contract_metrics.txt.
func Contract() []string {
	var names []string
	for _, line := range strings.Split(contractFile, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			names = append(names, line)
		}
	}
	return names
}

// Rendered reads the metric names the collector package defines: the first
// argument of every prometheus.NewDesc and the Name of every
// prometheus.*Opts literal, with the series a histogram or summary adds. A
// name that is not a string literal is an error, so nothing is missed
// silently.
func Rendered(collectorDir string) (map[string]string, error) {
	paths, err := filepath.Glob(filepath.Join(collectorDir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", collectorDir, err)
	}
	names := map[string]string{}
	fset := token.NewFileSet()
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		f, err := parser.ParseFile(fset, p, src, 0)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", p, err)
		}
		if err := collect(fset, f, names); err != nil {
			return nil, err
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no metric definitions found in %s", collectorDir)
	}
	return names, nil
}

// suffixes are the series each kind of *Opts adds to its name.
var suffixes = map[string][]string{
	"CounterOpts":   {""},
	"GaugeOpts":     {""},
	"HistogramOpts": {"_bucket", "_sum", "_count"},
	"SummaryOpts":   {"", "_sum", "_count"},
}

func collect(fset *token.FileSet, f *ast.File, names map[string]string) error {
	var err error
	ast.Inspect(f, func(n ast.Node) bool {
		if err != nil {
			return false
		}
		switch n := n.(type) {
		case *ast.CallExpr:
			if isPrometheus(n.Fun, "NewDesc") && len(n.Args) > 0 {
				err = add(fset, n.Args[0], []string{""}, names)
			}
		case *ast.CompositeLit:
			for kind, sfx := range suffixes {
				if isPrometheus(n.Type, kind) {
					err = addOpts(fset, n, sfx, names)
				}
			}
		}
		return true
	})
	return err
}

func isPrometheus(e ast.Expr, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "prometheus" && sel.Sel.Name == name
}

func addOpts(fset *token.FileSet, lit *ast.CompositeLit, sfx []string, names map[string]string) error {
	for _, elt := range lit.Elts {
		kv, ok := elt.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		switch key := kv.Key.(*ast.Ident); key.Name {
		case "Namespace", "Subsystem":
			return fmt.Errorf("%s: %s is not supported here; write the full Name", fset.Position(kv.Pos()), key.Name)
		case "Name":
			return add(fset, kv.Value, sfx, names)
		}
	}
	return fmt.Errorf("%s: metric options without a Name", fset.Position(lit.Pos()))
}

func add(fset *token.FileSet, e ast.Expr, sfx []string, names map[string]string) error {
	pos := fset.Position(e.Pos())
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return fmt.Errorf("%s: metric name is not a string literal", pos)
	}
	name, err := strconv.Unquote(lit.Value)
	if err != nil {
		return fmt.Errorf("%s: %w", pos, err)
	}
	where := fmt.Sprintf("%s:%d", filepath.Base(pos.Filename), pos.Line)
	for _, s := range sfx {
		names[name+s] = where
	}
	return nil
}

var (
	stringLit   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	braces      = regexp.MustCompile(`\{[^}]*\}`)
	brackets    = regexp.MustCompile(`\[[^\]]*\]`)
	grouping    = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	tokenRE     = regexp.MustCompile(`[0-9][0-9A-Za-z_.]*|[A-Za-z_:][A-Za-z0-9_:]*`)
	nextIsParen = regexp.MustCompile(`^\s*\(`)
)

// keywords are PromQL words that are not metric names; aggregations are
// listed because `sum by (x) (…)` does not put a parenthesis right after sum.
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true, "start": true, "end": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// Names returns the metric names a PromQL expression selects, sorted and
// without duplicates. It is a lexer, not a parser: it drops strings, label
// matchers, ranges and grouping labels, then keeps identifiers that are not
// keywords, numbers or function calls. Validity is promtool's job.
func Names(expr string) []string {
	s := stringLit.ReplaceAllString(expr, `""`)
	s = braces.ReplaceAllString(s, "{}")
	s = brackets.ReplaceAllString(s, "[]")
	s = grouping.ReplaceAllString(s, "$1 ()")
	seen := map[string]bool{}
	for _, loc := range tokenRE.FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		if word[0] >= '0' && word[0] <= '9' || keywords[strings.ToLower(word)] || nextIsParen.MatchString(s[loc[1]:]) {
			continue
		}
		seen[word] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
