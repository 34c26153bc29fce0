package dashboards_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mcpcert/mcp_cert_exporter/alerts"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricset"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

const dashboardFile = "mcp_cert_exporter.json"

// The subset of Grafana's dashboard model these tests read.
type dashboard struct {
	UID           string          `json:"uid"`
	Title         string          `json:"title"`
	SchemaVersion int             `json:"schemaVersion"`
	Inputs        json.RawMessage `json:"__inputs"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Query      any         `json:"query"`
	Datasource *datasource `json:"datasource"`
	AllValue   *string     `json:"allValue"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	FieldConfig struct {
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options string `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string          `json:"id"`
				Value json.RawMessage `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Panels []panel `json:"panels"` // a row's panels
}

func load(t *testing.T) *dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(raw) {
		t.Fatalf("%s is not valid JSON", dashboardFile)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("decoding %s: %v", dashboardFile, err)
	}
	return &d
}

// all flattens rows into the panel list.
func (d *dashboard) all() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

func TestDashboardModel(t *testing.T) {
	d := load(t)
	if d.UID != "mcp-cert-exporter" {
		t.Errorf("uid %q, want the stable mcp-cert-exporter", d.UID)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d: want a current one (39 or later)", d.SchemaVersion)
	}
	if d.Inputs != nil {
		t.Error("__inputs breaks file provisioning: use the datasource variable")
	}
	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || v.Query != "prometheus" {
		t.Errorf("want a datasource variable of type datasource for prometheus, got %+v", v)
	}
	for _, name := range []string{"job", "instance", "target", "role", "source"} {
		v, ok := vars[name]
		if !ok || v.Type != "query" || !usesVariable(v.Datasource) {
			t.Errorf("want a %s query variable on ${datasource}, got %+v", name, v)
		}
	}
}

func usesVariable(ds *datasource) bool {
	return ds != nil && ds.Type == "prometheus" && ds.UID == "${datasource}"
}

// current are the panel types of today's Grafana; graph, singlestat,
// table-old and the like were removed.
var current = map[string]bool{
	"row": true, "stat": true, "table": true, "timeseries": true, "bargauge": true, "text": true, "state-timeline": true,
}

func TestPanels(t *testing.T) {
	ids := map[int]string{}
	for _, p := range load(t).all() {
		name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if !current[p.Type] {
			t.Errorf("%s: type %q is not a current panel type", name, p.Type)
		}
		if prev, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("%s: id not unique (also %s)", name, prev)
		}
		ids[p.ID] = name
		if p.Title == "" || p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: needs a title and a gridPos within 24 columns, got %+v", name, p.GridPos)
		}
		if p.Type == "row" || p.Type == "text" {
			continue
		}
		if !usesVariable(p.Datasource) || len(p.Targets) == 0 {
			t.Errorf("%s: needs datasource ${datasource} and at least one query", name)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" || refs[q.RefID] || !usesVariable(q.Datasource) {
				t.Errorf("%s: query %q: needs an expr, a unique refId and datasource ${datasource}", name, q.RefID)
			}
			refs[q.RefID] = true
		}
	}
}

// TestRequiredPanels holds the dashboard to the panels issue 5 asks for.
func TestRequiredPanels(t *testing.T) {
	titles := map[string]bool{}
	for _, p := range load(t).all() {
		titles[p.Title] = true
	}
	for _, want := range []string{
		"Endpoints", "File groups", "Expiring in < 7 days", "Expiring in < 30 days", "Expired", "Failing probes",
		"Verification failures", "Certificates by time to expiry", "Failure reasons and remedies",
		"Negotiated TLS versions", "Negotiated cipher suites", "Handshake latency by phase", "MCP servers",
		"MCP handshake latency", "Certificate findings", "Protocol posture by endpoint", "Policy violations",
		"Refresh duration", "Last config reload", "Build", "Exporters up", "Probe success over time",
	} {
		if !titles[want] {
			t.Errorf("no panel titled %q", want)
		}
	}
}

// query is one PromQL expression of the dashboard, after substitution.
type query struct{ where, expr string }

var (
	varRef      = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)
	labelValues = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	regexGroup  = regexp.MustCompile(`^[0-9]+$`)
)

// builtins are Grafana's variables with a value that keeps PromQL valid.
var builtins = map[string]string{
	"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__range_s": "3600", "__interval_ms": "60000",
}

// queries returns every panel query and every variable's selector with the
// variables substituted as Grafana would; an unknown variable is an error.
func queries(t *testing.T, d *dashboard) []query {
	t.Helper()
	defined := map[string]bool{}
	for _, v := range d.Templating.List {
		defined[v.Name] = true
	}
	subst := func(where, expr string) query {
		out := varRef.ReplaceAllStringFunc(expr, func(ref string) string {
			m := varRef.FindStringSubmatch(ref)
			name := m[1] + m[2]
			if v, ok := builtins[name]; ok {
				return v
			}
			if regexGroup.MatchString(name) {
				return ref // label_replace's $1: Grafana leaves names it does not know
			}
			if !defined[name] {
				t.Errorf("%s: %s is not a dashboard or Grafana variable", where, ref)
			}
			return "value"
		})
		return query{where, out}
	}
	var qs []query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		text, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(text)
		if m == nil {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, text)
			continue
		}
		qs = append(qs, subst("variable "+v.Name, m[1]))
	}
	for _, p := range d.all() {
		for _, q := range p.Targets {
			qs = append(qs, subst(fmt.Sprintf("panel %d %q query %s", p.ID, p.Title, q.RefID), q.Expr))
		}
	}
	return qs
}

func TestQueriesUseKnownMetrics(t *testing.T) {
	known := metricset.Known()
	used := map[string]bool{}
	for _, q := range queries(t, load(t)) {
		names := metricset.Names(q.expr)
		if len(names) == 0 && !strings.Contains(q.expr, "ALERTS") {
			t.Errorf("%s: %q names no metric", q.where, q.expr)
		}
		for _, name := range names {
			used[name] = true
			if _, ok := known[name]; !ok {
				t.Errorf("%s: queries %s, which the exporter does not export", q.where, name)
			}
		}
	}
	if !used["ssl_certificate_expiry_seconds"] || !used["mcp_up"] {
		t.Errorf("metric extraction found only %v", used)
	}
}

// TestQueriesAreValidPromQL has promtool's parser read every query, as the
// expression of a recording rule. Substitution first: Grafana variables are
// not PromQL.
func TestQueriesAreValidPromQL(t *testing.T) {
	qs := queries(t, load(t))
	for _, q := range qs {
		if err := balanced(q.expr); err != nil {
			t.Errorf("%s: %v in %q", q.where, err, q.expr)
		}
	}
	promtool := tooltest.Require(t, "promtool")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	rules := make([]rule, len(qs))
	for i, q := range qs {
		rules[i] = rule{Record: fmt.Sprintf("dashboard_query_%d", i), Expr: q.expr}
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	raw, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		for i, q := range qs {
			if strings.Contains(string(out), fmt.Sprintf("%q", rules[i].Record)) {
				t.Errorf("dashboard_query_%d is %s", i, q.where)
			}
		}
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// balanced catches the typos a parser would, without one: unclosed
// brackets and quotes.
func balanced(expr string) error {
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	var stack []rune
	var quote rune
	for _, r := range expr {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return fmt.Errorf("unbalanced %q", r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if quote != 0 || len(stack) > 0 {
		return fmt.Errorf("unclosed %q", append(stack, quote))
	}
	return nil
}

// TestRemediesMatchTheExporter keeps the remedy column in step with the
// remedies the exporter prints on /status and in `check`.
func TestRemediesMatchTheExporter(t *testing.T) {
	mapping := remedyMapping(t, "Failure reasons and remedies")
	want := append(append([]probe.Reason{}, probe.EndpointReasons...), probe.FileReasons...)
	for _, r := range want {
		if got := mapping[string(r)]; got != r.Remedy() {
			t.Errorf("remedy for %s is %q, want the exporter's %q", r, got, r.Remedy())
		}
	}
	if len(mapping) != len(want) {
		t.Errorf("the remedy column maps %d reasons, the exporter has %d", len(mapping), len(want))
	}
}

// remedyMapping returns reason → remedy from the value mapping of the
// panel's Remedy column.
func remedyMapping(t *testing.T, title string) map[string]string {
	t.Helper()
	for _, p := range load(t).all() {
		if p.Title != title {
			continue
		}
		for _, o := range p.FieldConfig.Overrides {
			if o.Matcher.Options != "Remedy" {
				continue
			}
			for _, prop := range o.Properties {
				if prop.ID == "mappings" {
					return decodeMapping(t, prop.Value)
				}
			}
		}
	}
	t.Fatalf("panel %q has no value mapping on its Remedy column", title)
	return nil
}

func decodeMapping(t *testing.T, raw json.RawMessage) map[string]string {
	t.Helper()
	var mappings []struct {
		Type    string `json:"type"`
		Options map[string]struct {
			Text string `json:"text"`
		} `json:"options"`
	}
	if err := json.Unmarshal(raw, &mappings); err != nil {
		t.Fatalf("decoding value mappings: %v", err)
	}
	out := map[string]string{}
	for _, m := range mappings {
		for k, v := range m.Options {
			out[k] = v.Text
		}
	}
	return out
}

// TestDashboardFollowsThresholds keeps the dashboard in sync with
// alerts/thresholds.yml, as the mixins render theirs: the job variable lists
// only the jobs of job_selector, every query is bound to $job, and the
// expiry counts and colours use the expiry thresholds.
func TestDashboardFollowsThresholds(t *testing.T) {
	th, err := alerts.LoadThresholds(filepath.Join("..", "alerts", alerts.ThresholdsFile))
	if err != nil {
		t.Fatal(err)
	}
	d := load(t)
	for _, v := range d.Templating.List {
		q, _ := v.Query.(map[string]any)
		text, _ := q["query"].(string)
		if v.Name == "job" {
			if want := fmt.Sprintf("label_values(mcp_cert_exporter_build_info{%s}, job)", th.Selector()); text != want {
				t.Errorf("job variable: query %q, want %q", text, want)
			}
			if v.AllValue != nil {
				t.Errorf("job variable: allValue %q would select every job's series; leave it unset", *v.AllValue)
			}
			continue
		}
		if v.Type == "query" && !strings.Contains(text, `job=~"$job"`) {
			t.Errorf("variable %s: query %q is not bound to $job", v.Name, text)
		}
	}
	bound := regexp.MustCompile(`\{job=~"\$job"[,}]`)
	for _, p := range d.all() {
		for _, q := range p.Targets {
			for _, name := range metricset.Names(q.Expr) {
				use := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b(\{[^}]*\})?`)
				for _, m := range use.FindAllStringSubmatch(q.Expr, -1) {
					if !bound.MatchString(m[1]) {
						t.Errorf("panel %d %q: %s%s is not bound to $job", p.ID, p.Title, name, m[1])
					}
				}
			}
		}
	}
	checkExpiryColours(t, d, th)
}

// checkExpiryColours holds the expiry stats and the days-left colours to the
// alert thresholds.
func checkExpiryColours(t *testing.T, d *dashboard, th *alerts.Thresholds) {
	t.Helper()
	for _, days := range []int{th.ExpiryWarningDays, th.ExpiryCriticalDays} {
		title := fmt.Sprintf("Expiring in < %d days", days)
		found := false
		for _, p := range d.all() {
			if p.Title == title && len(p.Targets) == 1 && strings.Contains(p.Targets[0].Expr, fmt.Sprintf("< %d * 86400", days)) {
				found = true
			}
		}
		if !found {
			t.Errorf("no stat %q counting under %d * 86400", title, days)
		}
	}
	for _, p := range d.all() {
		for _, o := range p.FieldConfig.Overrides {
			if o.Matcher.Options != "Days left" {
				continue
			}
			for _, prop := range o.Properties {
				if prop.ID != "thresholds" {
					continue
				}
				var th2 struct {
					Steps []struct {
						Color string   `json:"color"`
						Value *float64 `json:"value"`
					} `json:"steps"`
				}
				if err := json.Unmarshal(prop.Value, &th2); err != nil {
					t.Fatal(err)
				}
				var got []float64
				for _, s := range th2.Steps {
					if s.Value != nil {
						got = append(got, *s.Value)
					}
				}
				want := []float64{float64(th.ExpiryCriticalDays), float64(th.ExpiryWarningDays)}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("panel %q: days-left colours change at %v, want the alert thresholds %v", p.Title, got, want)
				}
				return
			}
		}
	}
	t.Error("no table colours a Days left column by thresholds")
}
