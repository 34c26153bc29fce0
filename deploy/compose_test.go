package deploy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

// The compose file's ports. On the host network the services bind them on
// 127.0.0.1, so they must be free.
var composePorts = map[string]string{"mcp_cert_exporter": "9879", "prometheus": "9090", "alertmanager": "9093"}

// composeLines are the Compose release lines examples/docker-compose.yml
// must work with: Debian's docker-compose 1.29, and Compose v2 as the docker
// CLI's compose plugin (scripts/install-tools.sh builds it, since Debian 12
// has no package).
var composeLines = []struct {
	name string
	// version is the start of what `version` prints: the row runs the line
	// it names, not whatever answers to the name.
	version string
	// label is the start of the com.docker.compose.version label the line
	// puts on the containers it creates.
	label string
	// shippedPorts: the line accepts the shipped `ports` next to the
	// override's network_mode: host (the engine drops them), so the stack
	// runs on the shipped file itself. 1.29's docker-py refuses them ("host"
	// network_mode is incompatible with port_bindings).
	shippedPorts bool
	cli          func(t *testing.T, e *engine) composeCLI
}{
	{"1.29", "docker-compose version 1.29.", "1.29.", false, debianCompose},
	{"v2", "Docker Compose version v2.", "2.", true, composePlugin},
}

// composeCLI is a compose command line against the test's engine.
type composeCLI struct {
	argv []string // the command before compose's own arguments
	env  []string
}

// run returns stdout and stderr together, for messages.
func (c composeCLI) run(args ...string) (string, error) {
	out, err := c.cmd(args...).CombinedOutput()
	return string(out), err
}

// output returns stdout alone, for values: warnings go to stderr.
func (c composeCLI) output(args ...string) (string, error) {
	out, err := c.cmd(args...).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return strings.TrimSpace(string(out)), err
}

func (c composeCLI) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.argv[0], append(c.argv[1:], args...)...)
	cmd.Env = c.env
	return cmd
}

// debianCompose is Debian's docker-compose 1.29.
func debianCompose(t *testing.T, e *engine) composeCLI {
	// 1.29 would build through the docker CLI, which wants buildx here.
	return composeCLI{[]string{tooltest.Require(t, "docker-compose")}, append(e.env, "COMPOSE_DOCKER_CLI_BUILD=0")}
}

// composePlugin is `docker compose`: Debian's docker CLI with Compose v2 in
// the cli-plugins directory of a config directory of the test's own.
func composePlugin(t *testing.T, e *engine) composeCLI {
	bin := tooltest.Require(t, "docker-compose-v2")
	config := t.TempDir()
	if err := os.Mkdir(filepath.Join(config, "cli-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(config, "cli-plugins", "docker-compose")); err != nil {
		t.Fatal(err)
	}
	return composeCLI{[]string{e.bin, "compose"}, append(e.env, "DOCKER_CONFIG="+config)}
}

// TestComposeStack brings up examples/docker-compose.yml with each Compose
// line and an override that puts every service on the host network, on
// 127.0.0.1, with Prometheus and Alertmanager images built from the
// binaries scripts/install-tools.sh builds, and checks the chain:
// Prometheus scrapes the exporter, a shipped alert fires and Alertmanager
// routes it to the receiver the shipped alertmanager.yml names. Grafana is
// not started.
func TestComposeStack(t *testing.T) {
	// The exporter's image is the one TestImage built from the same
	// Dockerfile: Compose 1.29 builds through docker-py, whose build
	// context misses the engine's layer cache, and a second cold build would
	// double the test's cost.
	e, _ := exporterImage(t)
	images := map[string]string{
		"prometheus":   buildPromImage(t, e, "prometheus", "/prometheus"),
		"alertmanager": buildPromImage(t, e, "alertmanager", "/alertmanager"),
	}
	shipped := filepath.Join(e.root, "examples", "docker-compose.yml")
	for _, line := range composeLines {
		t.Run(line.name, func(t *testing.T) {
			c := line.cli(t, e)
			if out, err := c.run("version"); err != nil || !strings.HasPrefix(out, line.version) {
				t.Fatalf("compose version: %v, says %q, want %q...", err, out, line.version)
			}
			if out, err := c.run("-f", shipped, "config", "--quiet"); err != nil {
				t.Fatalf("the shipped compose file does not validate: %v\n%s", err, out)
			}
			base := shipped
			if !line.shippedPorts {
				base = writeHostNetworkBase(t, e, t.TempDir())
			}
			composeStack(t, e, c, base, images, line.label)
		})
	}
}

// composeStack brings the stack up from base plus the test's override,
// checks that the containers are the ones the line made (their version
// label), and waits for the alert chain and every service's health check.
func composeStack(t *testing.T, e *engine, c composeCLI, base string, images map[string]string, label string) {
	for service, port := range composePorts {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatalf("%s needs 127.0.0.1:%s, which is taken: %v", service, port, err)
		}
		ln.Close()
	}
	f := newFixture(t)
	hook := newWebhook(t)
	override := writeOverride(t, e, t.TempDir(), images, f, hook.addr)

	project := []string{"-p", "mcpcerte2e", "--project-directory", filepath.Join(e.root, "examples"), "-f", base, "-f", override}
	dc := func(args ...string) (string, error) { return c.run(append(project, args...)...) }
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := dc("logs", "--no-color", "--tail=40")
			t.Logf("compose logs:\n%s", out)
		}
		if out, err := dc("down", "-v", "--remove-orphans", "--timeout=20"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	services := []string{"mcp_cert_exporter", "prometheus", "alertmanager"}
	start := time.Now()
	if out, err := dc(append([]string{"up", "-d", "--no-build"}, services...)...); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}
	t.Logf("compose up took %s", time.Since(start).Round(time.Second))
	ids := containers(t, e, c, project, services, label)

	eventually(t, 2*time.Minute, "Prometheus scrapes the exporter", func() bool {
		return promQuery(t, `up{job="mcp_cert_exporter"} == 1`) &&
			promQuery(t, `ssl_certificate_expiry_seconds{target="mounted-certs"} < 0`)
	})
	eventually(t, 2*time.Minute, "McpCertExpired reaches Alertmanager and its critical receiver", func() bool {
		return amHasAlert(t, "McpCertExpired", "mounted-certs") && hook.got("/critical", "McpCertExpired")
	})
	eventually(t, 2*time.Minute, "every service reports healthy", func() bool {
		for _, id := range ids {
			if status, _ := e.try("inspect", "-f", "{{.State.Health.Status}}", id); status != "healthy" {
				return false
			}
		}
		return true
	})
}

// containers returns the container of each service, and fails the test
// unless the line that was asked to create it did (its version label).
func containers(t *testing.T, e *engine, c composeCLI, project, services []string, label string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, s := range services {
		id, err := c.output(append(project, "ps", "-q", s)...)
		if err != nil || id == "" {
			t.Fatalf("compose ps %s: %v, no container", s, err)
		}
		ids[s] = id
		if v := e.run(t, "inspect", "-f", `{{index .Config.Labels "com.docker.compose.version"}}`, id); !strings.HasPrefix(v, label) {
			t.Errorf("%s was created by compose %q, want %s...", s, v, label)
		}
	}
	return ids
}

// buildPromImage builds a stand-in for prom/<name>: the binary from
// .tools/bin on a busybox base like upstream's, running as nobody.
func buildPromImage(t *testing.T, e *engine, name, dataDir string) string {
	t.Helper()
	bin := tooltest.Require(t, name)
	ctx := t.TempDir()
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, name), raw, 0o755); err != nil {
		t.Fatal(err)
	}
	dockerfile := fmt.Sprintf(`FROM %s
COPY %s /bin/%s
RUN mkdir -p %s && chown 65534:65534 %s
USER 65534:65534
ENTRYPOINT ["/bin/%s"]
`, busyboxImage, name, name, dataDir, dataDir, name)
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := "mcpcert-local/" + name + ":e2e"
	e.run(t, "build", "--network=host", "-t", tag, ctx)
	return tag
}

// writeHostNetworkBase writes examples/docker-compose.yml without its
// published ports, which Compose 1.29 refuses next to network_mode: host
// and an override cannot remove; relative paths stay relative to examples/
// through --project-directory.
func writeHostNetworkBase(t *testing.T, e *engine, dir string) string {
	t.Helper()
	var c map[string]any
	readYAML(t, filepath.Join(e.root, "examples", "docker-compose.yml"), &c)
	for _, s := range c["services"].(map[string]any) {
		delete(s.(map[string]any), "ports")
	}
	path := filepath.Join(dir, "docker-compose.yml")
	writeYAML(t, path, c)
	return path
}

// composeFile is the part of a compose file the override derives from.
type composeFile struct {
	Services map[string]struct {
		Command []string `yaml:"command"`
	} `yaml:"services"`
}

// writeOverride writes the override and the fast configurations it mounts:
// the shipped prometheus.yml, rules and alertmanager.yml with intervals,
// `for` durations and group waits cut to seconds, and the webhooks pointed
// at the test.
func writeOverride(t *testing.T, e *engine, dir string, images map[string]string, f fixture, hookAddr string) string {
	t.Helper()
	examples := filepath.Join(e.root, "examples")
	var base composeFile
	readYAML(t, filepath.Join(examples, "docker-compose.yml"), &base)

	var prom map[string]any
	readYAML(t, filepath.Join(examples, "prometheus.yml"), &prom)
	prom["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	for _, sc := range prom["scrape_configs"].([]any) {
		sc.(map[string]any)["scrape_interval"] = "1s"
	}
	writeYAML(t, filepath.Join(dir, "prometheus", "prometheus.yml"), prom)

	var rules map[string]any
	readYAML(t, filepath.Join(e.root, "alerts", "mcp_cert_exporter.rules.yml"), &rules)
	for _, g := range rules["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			r.(map[string]any)["for"] = "0s"
		}
	}
	writeYAML(t, filepath.Join(dir, "alerts", "mcp_cert_exporter.rules.yml"), rules)

	var am map[string]any
	readYAML(t, filepath.Join(examples, "alertmanager.yml"), &am)
	am["route"].(map[string]any)["group_wait"] = "1s"
	for _, r := range am["receivers"].([]any) {
		for _, w := range r.(map[string]any)["webhook_configs"].([]any) {
			w := w.(map[string]any)
			u, err := url.Parse(w["url"].(string))
			if err != nil {
				t.Fatal(err)
			}
			w["url"] = "http://" + hookAddr + u.Path
		}
	}
	writeYAML(t, filepath.Join(dir, "alertmanager", "alertmanager.yml"), am)
	readable(t, dir)

	// Host networking: the services find each other under their compose
	// names through /etc/hosts, and listen on 127.0.0.1 only.
	hosts := []string{"mcp_cert_exporter:127.0.0.1", "alertmanager:127.0.0.1", "prometheus:127.0.0.1"}
	listen := func(service string) []string {
		return append(base.Services[service].Command, "--web.listen-address=127.0.0.1:"+composePorts[service])
	}
	services := map[string]any{
		"mcp_cert_exporter": map[string]any{
			"image":        exporterTag,
			"network_mode": "host",
			"command":      []string{"--config.file=/etc/mcp_cert_exporter/config.yml", "--web.listen-address=127.0.0.1:9879"},
			"volumes": []string{
				filepath.Join(f.configDir, "config.yml") + ":/etc/mcp_cert_exporter/config.yml:ro",
				f.certDir + ":/certs:ro",
			},
		},
		"prometheus": map[string]any{
			"image": images["prometheus"], "network_mode": "host", "extra_hosts": hosts,
			"command": listen("prometheus"),
			"volumes": []string{
				filepath.Join(dir, "prometheus", "prometheus.yml") + ":/etc/prometheus/prometheus.yml:ro",
				filepath.Join(dir, "alerts") + ":/etc/alerts:ro",
			},
		},
		"alertmanager": map[string]any{
			"image": images["alertmanager"], "network_mode": "host", "extra_hosts": hosts,
			// No gossip listener on every interface: one instance.
			"command": append(listen("alertmanager"), "--cluster.listen-address="),
			"volumes": []string{filepath.Join(dir, "alertmanager", "alertmanager.yml") + ":/etc/alertmanager/alertmanager.yml:ro"},
		},
	}
	path := filepath.Join(dir, "docker-compose.override.yml")
	writeYAML(t, path, map[string]any{"services": services})
	return path
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// promQuery reports whether an instant query returns any series.
func promQuery(t *testing.T, q string) bool {
	t.Helper()
	code, body, err := get("http://127.0.0.1:9090/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil || code != 200 {
		return false
	}
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	return json.Unmarshal([]byte(body), &r) == nil && len(r.Data.Result) > 0
}

func amHasAlert(t *testing.T, name, target string) bool {
	t.Helper()
	code, body, err := get("http://127.0.0.1:9093/api/v2/alerts")
	if err != nil || code != 200 {
		return false
	}
	var alerts []struct {
		Labels map[string]string `json:"labels"`
	}
	if json.Unmarshal([]byte(body), &alerts) != nil {
		return false
	}
	for _, a := range alerts {
		if a.Labels["alertname"] == name && a.Labels["target"] == target {
			return true
		}
	}
	return false
}

// webhook records Alertmanager's notifications by path.
type webhook struct {
	addr string
	mu   sync.Mutex
	seen map[string][]string
}

func newWebhook(t *testing.T) *webhook {
	t.Helper()
	h := &webhook{seen: map[string][]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.seen[r.URL.Path] = append(h.seen[r.URL.Path], string(body))
		h.mu.Unlock()
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	h.addr = ln.Addr().String()
	return h
}

func (h *webhook) got(path, alert string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, body := range h.seen[path] {
		if strings.Contains(body, `"alertname":"`+alert+`"`) {
			return true
		}
	}
	return false
}
