package examples_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

// k8sModels is where scripts/install-tools.sh installs the npm packages
// kubernetes-models and @kubernetes-models/prometheus-operator.
func k8sModels(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("MCPCERT_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache", "mcp_cert_exporter")
	}
	dir := filepath.Join(cache, "npm-k8s", "node_modules")
	for _, pkg := range []string{"kubernetes-models", "@kubernetes-models/prometheus-operator"} {
		if _, err := os.Stat(filepath.Join(dir, pkg, "package.json")); err != nil {
			tooltest.Unavailable(t, "npm package %s not installed (scripts/install-tools.sh installs it): %v", pkg, err)
		}
	}
	return dir
}

// validateObjects runs the schema validator over objects and returns its
// report and whether every object passed.
func validateObjects(t *testing.T, objects []any) (string, bool) {
	t.Helper()
	node := tooltest.Require(t, "node")
	raw, err := json.Marshal(objects)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join("kubernetes", "validate", "validate.mjs"), k8sModels(t))
	cmd.Stdin = strings.NewReader(string(raw))
	out, err := cmd.CombinedOutput()
	if _, isExit := err.(*exec.ExitError); err != nil && !isExit {
		t.Fatal(err)
	}
	return string(out), err == nil
}

// Every manifest of examples/kubernetes against the real OpenAPI schemas of
// Kubernetes and prometheus-operator, offline.
func TestKubernetesSchemas(t *testing.T) {
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var objects []any
	for _, f := range files {
		for _, d := range decodeAll(t, f) {
			// kustomize's own file is not an API object; kubectl reads it.
			if get(d, "kind") != "Kustomization" {
				objects = append(objects, d)
			}
		}
	}
	report, ok := validateObjects(t, objects)
	if !ok || strings.Count("\n"+report, "\nok ") != len(objects) {
		t.Errorf("manifests fail their schemas:\n%s", report)
	}
	t.Logf("%s", report)

	// The validator must be able to say no.
	broken := decodeAll(t, "kubernetes/deployment.yaml")[0].(map[string]any)
	broken["spec"].(map[string]any)["replicas"] = "one"
	if report, ok := validateObjects(t, []any{broken}); ok || !strings.Contains(report, "replicas must be integer") {
		t.Errorf("a Deployment with replicas: \"one\" passed:\n%s", report)
	}
}
