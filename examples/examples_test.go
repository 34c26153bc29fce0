package examples_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/golden"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

var update = flag.Bool("update", false, "rewrite kubernetes/prometheusrule.yaml from the alert rules")

const (
	rulesPath          = "../alerts/mcp_cert_exporter.rules.yml"
	thresholdsPath     = "../alerts/thresholds.yml"
	prometheusRulePath = "kubernetes/prometheusrule.yaml"
)

// decodeAll reads every YAML document of a file.
func decodeAll(t *testing.T, file string) []any {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []any
	dec := yaml.NewDecoder(f)
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s holds no YAML document", file)
	}
	return docs
}

// decode reads a single-document YAML file into v.
func decode(t *testing.T, file string, v any) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func TestEveryYAMLParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext == ".yml" || ext == ".yaml" {
			decodeAll(t, p)
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("parsed only %d YAML files", n)
	}
}

func exporterJob(t *testing.T) string {
	t.Helper()
	var th struct {
		ExporterJob string `yaml:"exporter_job"`
	}
	decode(t, thresholdsPath, &th)
	if th.ExporterJob == "" {
		t.Fatalf("%s sets no exporter_job", thresholdsPath)
	}
	return th.ExporterJob
}

type prometheusConfig struct {
	RuleFiles []string `yaml:"rule_files"`
	Alerting  struct {
		Alertmanagers []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"alertmanagers"`
	} `yaml:"alerting"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		FileSDConfigs []struct {
			Files []string `yaml:"files"`
		} `yaml:"file_sd_configs"`
	} `yaml:"scrape_configs"`
}

func TestPrometheusConfig(t *testing.T) {
	var cfg prometheusConfig
	decode(t, "prometheus.yml", &cfg)
	if len(cfg.RuleFiles) != 1 || filepath.Clean(cfg.RuleFiles[0]) != filepath.Clean(rulesPath) {
		t.Errorf("rule_files %v, want the shipped %s", cfg.RuleFiles, rulesPath)
	}
	if len(cfg.ScrapeConfigs) != 1 || cfg.ScrapeConfigs[0].JobName != exporterJob(t) {
		t.Fatalf("want one scrape job named %s, the job the alerts watch", exporterJob(t))
	}
	// One job model: an unsharded exporter next to shards in one job
	// would export every target twice.
	sc := cfg.ScrapeConfigs[0]
	if len(sc.StaticConfigs) != 1 || len(sc.StaticConfigs[0].Targets) != 1 || len(sc.FileSDConfigs) != 0 {
		t.Error("want one job scraping the one exporter of docker-compose.yml, and no replicas beside it")
	}
	promtool := tooltest.Require(t, "promtool")
	run(t, promtool, "check", "config", "prometheus.yml")
}

func run(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(tool), strings.Join(args, " "), err, out)
	}
	return string(out)
}

type alertmanagerConfig struct {
	Route struct {
		Receiver string `yaml:"receiver"`
		Routes   []struct {
			Matchers []string `yaml:"matchers"`
			Receiver string   `yaml:"receiver"`
		} `yaml:"routes"`
	} `yaml:"route"`
	InhibitRules []struct {
		SourceMatchers []string `yaml:"source_matchers"`
		TargetMatchers []string `yaml:"target_matchers"`
		Equal          []string `yaml:"equal"`
	} `yaml:"inhibit_rules"`
}

func TestAlertmanagerConfig(t *testing.T) {
	var cfg alertmanagerConfig
	decode(t, "alertmanager.yml", &cfg)
	// Each inhibit rule the shipped alerts rely on, matching on the whole
	// identity of a target: a target name is unique only within one exporter.
	wantInhibits := []struct{ source, target string }{
		{`severity="critical"`, `severity=~"warning|info"`},
		{`alertname=~"McpCertEndpointUnreachable|McpCertVerificationFailed|McpCertExpired"`, `alertname="McpCertMcpDown"`},
	}
	for _, w := range wantInhibits {
		found := false
		for _, r := range cfg.InhibitRules {
			if slicesContain(r.SourceMatchers, w.source) && slicesContain(r.TargetMatchers, w.target) {
				found = true
				if !reflect.DeepEqual(r.Equal, []string{"job", "instance", "target"}) {
					t.Errorf("inhibit rule %s -> %s: equal %v, want [job instance target]", w.source, w.target, r.Equal)
				}
			}
		}
		if !found {
			t.Errorf("no inhibit rule where %s silences %s: %+v", w.source, w.target, cfg.InhibitRules)
		}
	}
	amtool := tooltest.Require(t, "amtool")
	run(t, amtool, "check-config", "alertmanager.yml")
	for _, tc := range []struct{ alert, severity, want string }{
		{"McpCertExpiringSoon", "critical", "critical-pager"},
		{"McpCertExpiringSoon", "warning", "warning-tickets"},
		{"McpCertEndpointUnreachable", "critical", "critical-pager"},
		{"McpCertMcpDown", "critical", "critical-pager"},
		{"McpCertLegacyTls", "warning", "warning-tickets"},
		{"McpCertPostureCheckUnknown", "info", "info-feed"},
		{"McpCertCertificateChanged", "info", "info-feed"},
	} {
		got := strings.TrimSpace(run(t, amtool, "config", "routes", "test", "--config.file=alertmanager.yml",
			"alertname="+tc.alert, "job=mcp_cert_exporter", "instance=exporter:9879", "target=web", "severity="+tc.severity))
		if got != tc.want {
			t.Errorf("%s with severity %s routes to %q, want %q", tc.alert, tc.severity, got, tc.want)
		}
	}
}

func slicesContain(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type compose struct {
	Services map[string]struct {
		Build *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

// hostPath maps a path inside a compose service to the repository file
// that the service's bind mounts put there.
func (c *compose) hostPath(t *testing.T, service, inside string) string {
	t.Helper()
	for _, v := range c.Services[service].Volumes {
		parts := strings.Split(v, ":")
		src, dst := parts[0], parts[1]
		if !strings.HasPrefix(src, ".") {
			continue // a named volume
		}
		if rel, ok := strings.CutPrefix(path.Clean(inside), dst); ok && (rel == "" || rel[0] == '/') {
			return filepath.Join(src, filepath.FromSlash(rel))
		}
	}
	t.Errorf("service %s: no bind mount holds %s", service, inside)
	return ""
}

func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func TestDockerCompose(t *testing.T) {
	var c compose
	decode(t, "docker-compose.yml", &c)
	for _, s := range []string{"mcp_cert_exporter", "prometheus", "alertmanager", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("no %s service", s)
		}
	}
	exp := c.Services["mcp_cert_exporter"]
	if exp.Build == nil {
		t.Fatal("the exporter must be built from the repository")
	}
	mustExist(t, filepath.Join(exp.Build.Context, exp.Build.Dockerfile))
	if !slicesContain(exp.Ports, "127.0.0.1:9879:9879") {
		t.Errorf("exporter ports %v: want 9879 on 127.0.0.1", exp.Ports)
	}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %s beyond this machine; want 127.0.0.1:", name, p)
			}
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" {
			t.Errorf("%s has no exec-form health check", name)
		}
		if slicesContain(s.Command, "--web.enable-lifecycle") {
			t.Errorf("%s enables /-/reload and /-/quit", name)
		}
		for _, v := range s.Volumes {
			if src := strings.Split(v, ":")[0]; strings.HasPrefix(src, ".") {
				mustExist(t, src)
			}
		}
	}
	checkComposePrometheus(t, &c)
	checkComposeGrafana(t, &c)
}

func mustExist(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		t.Errorf("%v", err)
	}
}

// checkComposePrometheus follows prometheus.yml inside its container: its
// rule file must be the shipped one and its targets compose services.
func checkComposePrometheus(t *testing.T, c *compose) {
	t.Helper()
	inside := flagValue(c.Services["prometheus"].Command, "--config.file")
	if got := c.hostPath(t, "prometheus", inside); got != "prometheus.yml" {
		t.Errorf("Prometheus reads %s, mounted from %q, want prometheus.yml", inside, got)
	}
	var cfg prometheusConfig
	decode(t, "prometheus.yml", &cfg)
	for _, rf := range cfg.RuleFiles {
		host := c.hostPath(t, "prometheus", path.Join(path.Dir(inside), rf))
		if filepath.Clean(host) != filepath.Clean(rulesPath) {
			t.Errorf("in the container, rule file %s is %s, want %s", rf, host, rulesPath)
		}
	}
	targets := cfg.ScrapeConfigs[0].StaticConfigs[0].Targets
	for _, am := range cfg.Alerting.Alertmanagers {
		targets = append(targets, am.StaticConfigs[0].Targets...)
	}
	for _, target := range targets {
		host, _, err := net.SplitHostPort(target)
		if _, ok := c.Services[host]; err != nil || !ok {
			t.Errorf("Prometheus target %s is not a compose service", target)
		}
	}
}

func checkComposeGrafana(t *testing.T, c *compose) {
	t.Helper()
	prov := c.hostPath(t, "grafana", "/etc/grafana/provisioning")
	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	decode(t, filepath.Join(prov, "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("want one prometheus data source at http://prometheus:9090, got %+v", ds.Datasources)
	}
	var dash struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decode(t, filepath.Join(prov, "dashboards", "mcp_cert_exporter.yml"), &dash)
	if len(dash.Providers) != 1 {
		t.Fatalf("want one dashboard provider, got %+v", dash.Providers)
	}
	dir := c.hostPath(t, "grafana", dash.Providers[0].Options.Path)
	mustExist(t, filepath.Join(dir, "mcp_cert_exporter.json"))
	home := c.Services["grafana"].Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	mustExist(t, c.hostPath(t, "grafana", home))
}

// manifests returns the Kubernetes objects by kind.
func manifests(t *testing.T) map[string]map[string]any {
	t.Helper()
	var k struct {
		Resources []string `yaml:"resources"`
	}
	decode(t, "kubernetes/kustomization.yaml", &k)
	byKind := map[string]map[string]any{}
	for _, r := range k.Resources {
		for _, d := range decodeAll(t, filepath.Join("kubernetes", r)) {
			doc, _ := d.(map[string]any)
			kind, _ := doc["kind"].(string)
			if _, dup := byKind[kind]; dup || kind == "" {
				t.Fatalf("%s: a second or unnamed %q", r, kind)
			}
			byKind[kind] = doc
		}
	}
	for _, kind := range []string{"ConfigMap", "Deployment", "Service", "ServiceMonitor", "PrometheusRule"} {
		if byKind[kind] == nil {
			t.Fatalf("kustomization.yaml has no %s", kind)
		}
	}
	return byKind
}

// get walks maps and lists: get(obj, "spec", "template", "spec",
// "containers", 0, "name").
func get(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestKubernetesDeployment(t *testing.T) {
	m := manifests(t)
	pod := get(m["Deployment"], "spec", "template", "spec")
	ctr := get(pod, "containers", 0)
	for _, c := range []struct {
		what string
		got  any
		want any
	}{
		{"pod runAsNonRoot", get(pod, "securityContext", "runAsNonRoot"), true},
		{"container runAsNonRoot", get(ctr, "securityContext", "runAsNonRoot"), true},
		{"readOnlyRootFilesystem", get(ctr, "securityContext", "readOnlyRootFilesystem"), true},
		{"allowPrivilegeEscalation", get(ctr, "securityContext", "allowPrivilegeEscalation"), false},
		{"readiness probe", get(ctr, "readinessProbe", "exec", "command"), healthcheck},
		{"liveness probe", get(ctr, "livenessProbe", "exec", "command"), healthcheck},
		{"container port", get(ctr, "ports", 0, "containerPort"), 9879},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	mounts := map[string]map[string]any{}
	for _, vm := range get(ctr, "volumeMounts").([]any) {
		vm := vm.(map[string]any)
		if vm["readOnly"] != true {
			t.Errorf("volume %v is not mounted read-only", vm["name"])
		}
		mounts[vm["name"].(string)] = vm
	}
	items := secretItems(t, pod, mounts)
	for _, c := range []struct {
		key      string
		optional bool
	}{{"tls.crt", false}, {"ca.crt", true}, {"tls.key", false}} {
		it, ok := items[c.key]
		switch {
		case c.key == "tls.key" && ok:
			t.Error("tls.key is mounted: the exporter needs no private key")
		case c.key != "tls.key" && !ok:
			t.Errorf("Secret key %s is not mounted", c.key)
		case ok && it.optional != c.optional:
			t.Errorf("Secret key %s optional=%v, want %v (ACME issuers' Secrets often lack ca.crt)", c.key, it.optional, c.optional)
		}
	}
	checkKubernetesConfig(t, m, pod, mounts)
}

// healthcheck is the exec probe: the image has no shell or curl.
var healthcheck = []any{"/bin/mcp_cert_exporter", "healthcheck"}

type secretItem struct {
	dir, path string
	optional  bool
}

// secretItems finds the mounted keys of Secrets, from secret volumes and
// the secret sources of projected volumes.
func secretItems(t *testing.T, pod any, mounts map[string]map[string]any) map[string]secretItem {
	t.Helper()
	items := map[string]secretItem{}
	for _, v := range get(pod, "volumes").([]any) {
		mount := mounts[get(v, "name").(string)]
		if mount == nil {
			continue
		}
		sources := []any{get(v, "secret")}
		if srcs, ok := get(v, "projected", "sources").([]any); ok {
			sources = nil
			for _, src := range srcs {
				sources = append(sources, get(src, "secret"))
			}
		}
		for _, sec := range sources {
			list, _ := get(sec, "items").([]any)
			for _, it := range list {
				opt, _ := get(sec, "optional").(bool)
				items[get(it, "key").(string)] = secretItem{mount["mountPath"].(string), get(it, "path").(string), opt}
			}
		}
	}
	if len(items) == 0 {
		t.Fatal("no Secret is mounted: the certificates come from a Secret")
	}
	return items
}

// checkKubernetesConfig finds the ConfigMap's config where --config.file
// points, and has the exporter's own parser accept it with the Secret's
// files in place.
func checkKubernetesConfig(t *testing.T, m map[string]map[string]any, pod any, mounts map[string]map[string]any) {
	t.Helper()
	var args []string
	for _, a := range get(pod, "containers", 0, "args").([]any) {
		args = append(args, a.(string))
	}
	cfgPath := flagValue(args, "--config.file")
	var cfgText string
	for _, v := range get(pod, "volumes").([]any) {
		mount := mounts[get(v, "name").(string)]
		if mount == nil {
			continue
		}
		dir := mount["mountPath"].(string)
		if get(v, "configMap", "name") == get(m["ConfigMap"], "metadata", "name") && path.Dir(cfgPath) == dir {
			cfgText, _ = get(m["ConfigMap"], "data", path.Base(cfgPath)).(string)
		}
	}
	if cfgText == "" {
		t.Fatalf("--config.file=%s is not a key of the mounted ConfigMap", cfgPath)
	}
	tmp := t.TempDir()
	ca := testpki.NewCA("Example Cluster CA")
	text := cfgText
	for _, item := range secretItems(t, pod, mounts) {
		testpki.WriteFile(t, tmp, item.path, ca.PEM())
		text = strings.ReplaceAll(text, item.dir+"/", tmp+"/")
	}
	if _, err := config.Parse([]byte(text), "ConfigMap config.yml"); err != nil {
		t.Errorf("the exporter rejects the ConfigMap's config with the Secret's files mounted: %v", err)
	}
}

func TestKubernetesServiceAndMonitor(t *testing.T) {
	m := manifests(t)
	podLabels := get(m["Deployment"], "spec", "template", "metadata", "labels").(map[string]any)
	if !subset(get(m["Deployment"], "spec", "selector", "matchLabels"), podLabels) {
		t.Error("the Deployment's selector does not match its pods")
	}
	if !subset(get(m["Service"], "spec", "selector"), podLabels) {
		t.Error("the Service's selector does not match the exporter's pods")
	}
	svcLabels := get(m["Service"], "metadata", "labels").(map[string]any)
	if !subset(get(m["ServiceMonitor"], "spec", "selector", "matchLabels"), svcLabels) {
		t.Error("the ServiceMonitor's selector does not match the Service")
	}
	portName := get(m["Service"], "spec", "ports", 0, "name")
	if get(m["ServiceMonitor"], "spec", "endpoints", 0, "port") != portName ||
		get(m["Service"], "spec", "ports", 0, "targetPort") != get(m["Deployment"], "spec", "template", "spec", "containers", 0, "ports", 0, "name") {
		t.Error("ServiceMonitor port, Service port and container port names do not line up")
	}
	jobLabel, _ := get(m["ServiceMonitor"], "spec", "jobLabel").(string)
	if job := svcLabels[jobLabel]; job != exporterJob(t) {
		t.Errorf("the scraped job would be %v (Service label %q), but the alerts watch job %s", job, jobLabel, exporterJob(t))
	}
}

// subset reports whether every label of sel is in labels; an empty
// selector selects nothing here.
func subset(sel any, labels map[string]any) bool {
	s, _ := sel.(map[string]any)
	for k, v := range s {
		if labels[k] != v {
			return false
		}
	}
	return len(s) > 0
}

const prometheusRuleHeader = `# GENERATED from alerts/mcp_cert_exporter.rules.yml by: go test ./examples -update
# Its spec.groups are that file's groups; a test fails when they differ.
#
# For prometheus-operator. Its Prometheus selects PrometheusRules by label:
# add the label yours expects (kube-prometheus-stack: release: <its release>).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: mcp-cert-exporter
  namespace: monitoring
  labels:
    app.kubernetes.io/name: mcp_cert_exporter
spec:
`

// renderPrometheusRule nests the rule file's groups, comments included,
// under spec.
func renderPrometheusRule(t *testing.T) []byte {
	t.Helper()
	rules, err := os.ReadFile(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(rules, []byte("\ngroups:\n"))
	if i < 0 {
		t.Fatalf("%s has no top-level groups:", rulesPath)
	}
	var out bytes.Buffer
	out.WriteString(prometheusRuleHeader)
	for _, line := range strings.SplitAfter(string(rules[i+1:]), "\n") {
		if strings.TrimSpace(line) != "" {
			out.WriteString("  ")
		}
		out.WriteString(line)
	}
	return out.Bytes()
}

func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	golden.Check(t, prometheusRulePath, renderPrometheusRule(t), *update, "go test ./alerts ./examples -update")
	var rules, pr map[string]any
	decode(t, rulesPath, &rules)
	decode(t, prometheusRulePath, &pr)
	if !reflect.DeepEqual(get(pr, "spec", "groups"), rules["groups"]) || rules["groups"] == nil {
		t.Errorf("the PrometheusRule's spec.groups differ from the groups of %s", rulesPath)
	}
}
