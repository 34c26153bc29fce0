package examples_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// TestKubernetesProbes holds the Probe examples to the exporter they talk
// to: the prober is the Service's /probe, the module is one the ConfigMap
// defines, and the module's allowed_targets admit the static targets.
func TestKubernetesProbes(t *testing.T) {
	m := manifests(t)
	tmp := t.TempDir()
	testpki.WriteFile(t, tmp, "ca.crt", testpki.NewCA("Example Cluster CA").PEM())
	text := strings.ReplaceAll(get(m["ConfigMap"], "data", "config.yml").(string), "/etc/mcp/tls/", tmp+"/")
	cfg, err := config.Parse([]byte(text), "ConfigMap config.yml")
	if err != nil {
		t.Fatal(err)
	}
	svc := m["Service"]
	prober := fmt.Sprintf("%s.%s.svc:%v", get(svc, "metadata", "name"), get(svc, "metadata", "namespace"), get(svc, "spec", "ports", 0, "port"))
	for _, file := range []string{"probe.yaml", "probe-ingress.yaml"} {
		docs := decodeAll(t, filepath.Join("kubernetes", file))
		if len(docs) != 1 || get(docs[0], "kind") != "Probe" || get(docs[0], "apiVersion") != "monitoring.coreos.com/v1" {
			t.Fatalf("%s: want one monitoring.coreos.com/v1 Probe", file)
		}
		spec := get(docs[0], "spec")
		if got := get(spec, "prober", "url"); got != prober || get(spec, "prober", "path") != "/probe" {
			t.Errorf("%s: prober %v%v, want %s/probe", file, got, get(spec, "prober", "path"), prober)
		}
		module, ok := cfg.Modules[get(spec, "module").(string)]
		if !ok {
			t.Errorf("%s: module %v is not in the ConfigMap's modules", file, get(spec, "module"))
			continue
		}
		static, _ := get(spec, "targets", "staticConfig", "static").([]any)
		for _, target := range static {
			if _, err := module.Endpoint(target.(string), cfg.Interval.D()); err != nil {
				t.Errorf("%s: the exporter would refuse %v: %v", file, target, err)
			}
		}
	}
	if _, ok := m["Probe"]; !ok {
		t.Error("kustomization.yaml has no Probe")
	}
}
