package alerts_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/mcpcert/mcp_cert_exporter/alerts"
	"github.com/mcpcert/mcp_cert_exporter/internal/golden"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricset"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

var update = flag.Bool("update", false, "rewrite mcp_cert_exporter.rules.yml from the template and thresholds.yml")

const rulesFile = alerts.RulesFile

// testFiles are the promtool unit tests, one file per behaviour.
func testFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("tests/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool tests in tests/ (%v)", err)
	}
	return files
}

// exporterAlerts have no target: they are about the exporter itself, so
// their description names its instance or job instead.
var exporterAlerts = map[string]bool{
	"McpCertExporterAbsent": true, "McpCertExporterDown": true, "McpCertConfigReloadFailed": true,
}

func loadThresholds(t *testing.T) *alerts.Thresholds {
	t.Helper()
	th, err := alerts.LoadThresholds(alerts.ThresholdsFile)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func render(t *testing.T, scale int) []byte {
	t.Helper()
	out, err := alerts.RenderDir(".", scale)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// regenerate rewrites every generated file that derives from the rules.
const regenerate = "go test ./alerts ./examples -update"

func TestRulesMatchTemplateAndThresholds(t *testing.T) {
	golden.Check(t, rulesFile, render(t, 1), *update, regenerate)
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := tooltest.Require(t, "promtool")
	runTool(t, promtool, "check", "rules", "--lint=all", "--lint-fatal", rulesFile)
}

func TestPromtoolTestRules(t *testing.T) {
	promtool := tooltest.Require(t, "promtool")
	runTool(t, promtool, append([]string{"test", "rules"}, testFiles(t)...)...)
}

func runTool(t *testing.T, tool string, args ...string) {
	t.Helper()
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(tool), strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", filepath.Base(tool), strings.Join(args, " "), out)
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	f, err := os.Open(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("decoding %s: %v", rulesFile, err)
	}
	var rules []rule
	for _, g := range file.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no rules", rulesFile)
	}
	return rules
}

var alertName = regexp.MustCompile(`^McpCert[A-Z][A-Za-z0-9]*$`)

func TestAlertConventions(t *testing.T) {
	anchors := runbookAnchors(t)
	base := loadThresholds(t).RunbookBaseURL + "#"
	for _, r := range loadRules(t) {
		name := r.Alert
		if !alertName.MatchString(name) {
			t.Errorf("%q: alert names are CamelCase with the McpCert prefix", name)
		}
		switch r.Labels["severity"] {
		case "critical", "warning", "info":
		default:
			t.Errorf("%s: severity %q is not critical, warning or info", name, r.Labels["severity"])
		}
		if _, err := model.ParseDuration(r.For); err != nil {
			t.Errorf("%s: for %q: %v", name, r.For, err)
		}
		if s := r.Annotations["summary"]; s == "" || strings.Contains(s, "{{") {
			t.Errorf("%s: summary %q must be present and static", name, s)
		}
		want := "$labels.target"
		if exporterAlerts[name] {
			want = "$labels.job"
			if name != "McpCertExporterAbsent" {
				want = "$labels.instance"
			}
		}
		if d := r.Annotations["description"]; !strings.Contains(d, want) {
			t.Errorf("%s: description %q does not name %s", name, d, want)
		}
		if strings.Contains(r.Expr, "reason") && !strings.Contains(r.Annotations["description"], "reason") {
			t.Errorf("%s: selects on reason but its description does not show it", name)
		}
		url := r.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(url, base)
		if !ok || !anchors[anchor] || anchor != strings.ToLower(name) {
			t.Errorf("%s: runbook_url %q must be %s%s, a heading in RUNBOOK.md", name, url, base, strings.ToLower(name))
		}
		if len(r.Annotations) != 3 {
			t.Errorf("%s: annotations %v: want exactly summary, description and runbook_url", name, r.Annotations)
		}
	}
}

// runbookAnchors are the GitHub anchors of RUNBOOK.md's headings.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(tooltest.RepoRoot(t), "RUNBOOK.md"))
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(src), "\n") {
		if heading, ok := strings.CutPrefix(line, "#"); ok {
			text := strings.TrimSpace(strings.TrimLeft(heading, "#"))
			anchors[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(text), ""), " ", "-")] = true
		}
	}
	return anchors
}

// TestEveryAlertIsTested asks the promtool tests for, per alert, a case
// where each of its severities fires and a case where it does not fire.
func TestEveryAlertIsTested(t *testing.T) {
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, path := range testFiles(t) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			RuleFiles []string `yaml:"rule_files"`
			Tests     []struct {
				AlertRuleTests []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []struct {
						ExpLabels map[string]string `yaml:"exp_labels"`
					} `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(raw, &file); err != nil {
			t.Fatalf("decoding %s: %v", path, err)
		}
		if want := "../" + rulesFile; len(file.RuleFiles) != 1 || file.RuleFiles[0] != want {
			t.Errorf("%s tests %v, want [%s]", path, file.RuleFiles, want)
		}
		for _, tc := range file.Tests {
			for _, at := range tc.AlertRuleTests {
				if len(at.ExpAlerts) == 0 {
					quiet[at.Alertname] = true
				}
				for _, a := range at.ExpAlerts {
					fires[at.Alertname+"/"+a.ExpLabels["severity"]] = true
				}
			}
		}
	}
	for _, r := range loadRules(t) {
		if key := r.Alert + "/" + r.Labels["severity"]; !fires[key] {
			t.Errorf("%s: no test in tests/ where it fires with severity %s", r.Alert, r.Labels["severity"])
		}
		if !quiet[r.Alert] {
			t.Errorf("%s: no test in tests/ where it does not fire", r.Alert)
		}
	}
}

func TestRulesUseKnownMetrics(t *testing.T) {
	known := metricset.Known()
	for _, r := range loadRules(t) {
		for _, name := range metricset.Names(r.Expr) {
			if _, ok := known[name]; !ok {
				t.Errorf("%s: queries %s, which the exporter does not export", r.Alert, name)
			}
		}
	}
}

// TestEverySelectorHasTheJobSelector holds every series a rule selects to
// job_selector, so that another job's ssl_* series (ribbybibby/ssl_exporter,
// blackbox_exporter) never reach our alerts. tests/foreign_jobs.yml shows it
// in Prometheus; this catches a selector a new rule forgets.
func TestEverySelectorHasTheJobSelector(t *testing.T) {
	sel := loadThresholds(t).Selector()
	for _, r := range loadRules(t) {
		for _, name := range metricset.Names(r.Expr) {
			use := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b(\{[^}]*\})?`)
			for _, m := range use.FindAllStringSubmatch(r.Expr, -1) {
				if !strings.Contains(m[1], "{"+sel) {
					t.Errorf("%s: %s%s does not start with the job selector {%s", r.Alert, name, m[1], sel)
				}
			}
		}
	}
}

// TestScaledRules renders the rules the way the time-compressed stack test
// does and checks that every duration shrank by the factor and nothing else
// changed.
func TestScaledRules(t *testing.T) {
	const scale = 60
	shipped, scaled := string(render(t, 1)), string(render(t, scale))
	duration := regexp.MustCompile(`(for: |\[)((?:[0-9]+[a-z]+)+)`)
	var want []string
	for _, m := range duration.FindAllStringSubmatch(shipped, -1) {
		d, err := model.ParseDuration(m[2])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m[1]+(d/scale).String())
	}
	var got []string
	for _, m := range duration.FindAllStringSubmatch(scaled, -1) {
		got = append(got, m[1]+m[2])
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) == 0 {
		t.Errorf("scaled durations:\n%v\nwant:\n%v", got, want)
	}
	if !strings.Contains(scaled, "ssl_probe_interval_seconds{job=\"mcp_cert_exporter\"} <= 1)") {
		t.Errorf("the first tier's bound is not scaled to 1s:\n%s", scaled)
	}
}

// TestPintLint runs cloudflare/pint's offline checks on the rendered rules
// with the repository's .pint.hcl, failing on any problem of severity
// warning or worse; the same run on a broken copy must fail, so the config
// cannot quietly exclude the rules.
func TestPintLint(t *testing.T) {
	pint := tooltest.Require(t, "pint")
	root := tooltest.RepoRoot(t)
	lint := func(dir string) ([]byte, error) {
		cmd := exec.Command(pint, "--no-color", "--config", filepath.Join(root, ".pint.hcl"),
			"lint", "--min-severity=info", "--fail-on=warning", "alerts/")
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	out, err := lint(root)
	if err != nil {
		t.Fatalf("pint lint alerts/: %v\n%s", err, out)
	}
	t.Logf("pint lint alerts/:\n%s", out)

	broken := t.TempDir()
	rules := strings.Replace(string(render(t, 1)), "for: 2m", "for: 2m\n        keep_firing_for: -1m", 1)
	rules = strings.Replace(rules, "avg_over_time(ssl_probe_success", "rate(ssl_probe_success", 1)
	if err := os.MkdirAll(filepath.Join(broken, "alerts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "alerts", rulesFile), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := lint(broken); err == nil {
		t.Errorf("pint lint passed rules with a rate() of a gauge and a negative keep_firing_for:\n%s", out)
	}
}
