// Package metricset is the one place that knows which metric names can be
// queried: the families of the metric catalog (package metrics), the names
// promised by the MCP and posture issue contracts, and the few that
// client_golang and Prometheus add. Tests use it to check that alerts and
// dashboards only query metrics the exporter exports.
package metricset

import (
	_ "embed"
	"regexp"
	"sort"
	"strings"

	"github.com/mcpcert/mcp_cert_exporter/metrics"
)

//go:embed contract_metrics.txt
var contractFile string

// Known maps every metric name that can be queried to where it comes from.
func Known() map[string]string {
	known := map[string]string{}
	for _, f := range metrics.All() {
		for _, n := range f.Series() {
			known[n] = "metric catalog"
		}
	}
	for _, n := range Contract() {
		if _, ok := known[n]; !ok {
			known[n] = "contract (issue 3/4), not rendered yet"
		}
	}
	for n, origin := range extra {
		known[n] = origin
	}
	return known
}

// extra are names outside the catalog: main.go registers
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
