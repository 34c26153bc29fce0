package alerts_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/mcpcert/mcp_cert_exporter/internal/golden"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricset"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

var update = flag.Bool("update", false, "rewrite mcp_cert_exporter.rules.yml from the template and thresholds.yml")

const (
	rulesFile     = "mcp_cert_exporter.rules.yml"
	templateFile  = "mcp_cert_exporter.rules.tmpl"
	thresholdFile = "thresholds.yml"
	testsFile     = "tests.yml"
)

// exporterAlerts have no target: they are about the exporter itself, so
// their description names its instance or job instead.
var exporterAlerts = map[string]bool{
	"McpCertExporterAbsent": true, "McpCertExporterDown": true, "McpCertConfigReloadFailed": true,
}

type thresholds struct {
	ExporterJob             string `yaml:"exporter_job"`
	ExpiryWarningDays       int    `yaml:"expiry_warning_days"`
	ExpiryCriticalDays      int    `yaml:"expiry_critical_days"`
	StaleIntervals          int    `yaml:"stale_intervals"`
	CertificateChangeWindow string `yaml:"certificate_change_window"`
	RunbookBaseURL          string `yaml:"runbook_base_url"`
}

func (th *thresholds) validate() error {
	switch {
	case th.ExporterJob == "" || th.RunbookBaseURL == "":
		return fmt.Errorf("exporter_job and runbook_base_url are required")
	case th.ExpiryCriticalDays <= 0 || th.ExpiryWarningDays <= th.ExpiryCriticalDays:
		return fmt.Errorf("need 0 < expiry_critical_days < expiry_warning_days, got %d and %d",
			th.ExpiryCriticalDays, th.ExpiryWarningDays)
	case th.StaleIntervals < 1:
		return fmt.Errorf("stale_intervals must be at least 1, got %d", th.StaleIntervals)
	}
	if _, err := model.ParseDuration(th.CertificateChangeWindow); err != nil {
		return fmt.Errorf("certificate_change_window: %w", err)
	}
	return nil
}

func loadThresholds(t *testing.T) *thresholds {
	t.Helper()
	f, err := os.Open(thresholdFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var th thresholds
	if err := dec.Decode(&th); err != nil {
		t.Fatalf("decoding %s: %v", thresholdFile, err)
	}
	if err := th.validate(); err != nil {
		t.Fatalf("%s: %v", thresholdFile, err)
	}
	return &th
}

// render uses [[ ]] as delimiters: the rules carry Prometheus' own {{ }}
// templates, which must pass through untouched.
func render(t *testing.T, th *thresholds) []byte {
	t.Helper()
	src, err := os.ReadFile(templateFile)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.New(templateFile).Delims("[[", "]]").Option("missingkey=error").Parse(string(src))
	if err != nil {
		t.Fatalf("parsing %s: %v", templateFile, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, th); err != nil {
		t.Fatalf("rendering %s: %v", templateFile, err)
	}
	return buf.Bytes()
}

// regenerate rewrites every generated file that derives from the rules.
const regenerate = "go test ./alerts ./examples -update"

func TestRulesMatchTemplateAndThresholds(t *testing.T) {
	golden.Check(t, rulesFile, render(t, loadThresholds(t)), *update, regenerate)
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := tooltest.Require(t, "promtool")
	runTool(t, promtool, "check", "rules", "--lint=all", "--lint-fatal", rulesFile)
}

func TestPromtoolTestRules(t *testing.T) {
	promtool := tooltest.Require(t, "promtool")
	runTool(t, promtool, "test", "rules", testsFile)
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
		if strings.Contains(r.Expr, "reason") && !strings.Contains(r.Annotations["description"], "$labels.reason") {
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

// TestEveryAlertIsTested asks tests.yml for, per alert, a case where each of
// its severities fires and a case where it does not fire.
func TestEveryAlertIsTested(t *testing.T) {
	raw, err := os.ReadFile(testsFile)
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
		t.Fatalf("decoding %s: %v", testsFile, err)
	}
	if len(file.RuleFiles) != 1 || file.RuleFiles[0] != rulesFile {
		t.Errorf("%s tests %v, want [%s]", testsFile, file.RuleFiles, rulesFile)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
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
	for _, r := range loadRules(t) {
		if key := r.Alert + "/" + r.Labels["severity"]; !fires[key] {
			t.Errorf("%s: no test in %s where it fires with severity %s", r.Alert, testsFile, r.Labels["severity"])
		}
		if !quiet[r.Alert] {
			t.Errorf("%s: no test in %s where it does not fire", r.Alert, testsFile)
		}
	}
}

func TestRulesUseKnownMetrics(t *testing.T) {
	known, err := metricset.Known(tooltest.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range loadRules(t) {
		for _, name := range metricset.Names(r.Expr) {
			if _, ok := known[name]; !ok {
				t.Errorf("%s: queries %s, which the exporter does not export", r.Alert, name)
			}
		}
	}
}
