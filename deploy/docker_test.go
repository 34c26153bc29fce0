// Package deploy_test builds the shipped Dockerfile and runs the image and
// the compose stack on a real Docker engine (scripts/docker.sh starts one
// for scripts/test.sh). Containers use the host network and listen on
// 127.0.0.1 only.
package deploy_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/internal/tooltest"
)

// The stand-ins scripts/docker.sh builds for the Dockerfile's base images.
const (
	builderImage = "mcpcert-local/builder:bookworm"
	runtimeImage = "mcpcert-local/static:nonroot"
	busyboxImage = "mcpcert-local/busybox:latest"
	// defaultSocket is where scripts/docker.sh start puts the engine.
	defaultSocket = "unix:///run/mcp_cert_exporter-docker/docker.sock"
	// testRevision is what the build is told its revision is.
	testRevision = "0123456789abcdef0123456789abcdef01234567"
)

// engine runs the docker client against the test's engine.
type engine struct {
	bin  string
	root string // repository root
	env  []string
}

var (
	engineOnce sync.Once
	theEngine  *engine
	engineErr  string
)

// dockerEngine returns the engine, with the base stand-ins built, or skips
// or fails the test (tooltest's rule) when no engine answers.
func dockerEngine(t *testing.T) *engine {
	t.Helper()
	root := tooltest.RepoRoot(t)
	engineOnce.Do(func() {
		// Debian's client, which matches Debian's engine; another docker
		// earlier in PATH may want plugins this machine lacks.
		bin := "/usr/bin/docker"
		if _, err := os.Stat(bin); err != nil {
			bin = tooltest.Require(t, "docker")
		}
		host := os.Getenv("DOCKER_HOST")
		if host == "" {
			host = defaultSocket
		}
		e := &engine{bin: bin, root: root, env: append(os.Environ(), "DOCKER_HOST="+host, "DOCKER_BUILDKIT=0")}
		if out, err := e.try("info", "--format", "{{.ServerVersion}}"); err != nil {
			engineErr = fmt.Sprintf("no Docker engine at %s (start one with scripts/docker.sh start): %v\n%s", host, err, out)
			return
		}
		bases := exec.Command("bash", filepath.Join(root, "scripts", "docker.sh"), "bases")
		bases.Env = e.env
		if out, err := bases.CombinedOutput(); err != nil {
			engineErr = fmt.Sprintf("scripts/docker.sh bases: %v\n%s", err, out)
			return
		}
		theEngine = e
	})
	if theEngine == nil {
		tooltest.Unavailable(t, "%s", engineErr)
	}
	return theEngine
}

func (e *engine) try(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command(e.bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = e.env, &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func (e *engine) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.try(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

var (
	imageOnce sync.Once
	imageErr  string
)

const exporterTag = "mcp_cert_exporter:e2e"

// buildArgs are the --build-arg flags for the shipped Dockerfile: local
// stand-ins for the pinned bases, this machine's module proxy, and a
// version and revision the test checks for.
func buildArgs(t *testing.T, root string) map[string]string {
	t.Helper()
	version, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	goproxy, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{
		"BUILDER_IMAGE": builderImage,
		"RUNTIME_IMAGE": runtimeImage,
		"GOPROXY":       strings.TrimSpace(string(goproxy)),
		"VERSION":       strings.TrimSpace(string(version)),
		"REVISION":      testRevision,
	}
	for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"} {
		if v := os.Getenv(k); v != "" {
			args[k] = v
		}
	}
	return args
}

// exporterImage builds the shipped Dockerfile, unmodified, once per run.
func exporterImage(t *testing.T) (*engine, string) {
	t.Helper()
	e := dockerEngine(t)
	imageOnce.Do(func() {
		args := []string{"build", "--network=host", "-t", exporterTag, "-f", filepath.Join(e.root, "Dockerfile")}
		for k, v := range buildArgs(t, e.root) {
			args = append(args, "--build-arg", k+"="+v)
		}
		start := time.Now()
		out, err := e.try(append(args, e.root)...)
		if err != nil {
			imageErr = fmt.Sprintf("docker build: %v\n%s", err, out)
			return
		}
		t.Logf("docker build took %s", time.Since(start).Round(time.Second))
	})
	if imageErr != "" {
		t.Fatal(imageErr)
	}
	return e, exporterTag
}

// container is a running container, removed when the test ends.
type container struct {
	e    *engine
	id   string
	addr string
}

func (e *engine) start(t *testing.T, args ...string) *container {
	t.Helper()
	id := e.run(t, append([]string{"run", "-d", "--network=host"}, args...)...)
	c := &container{e: e, id: id}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := e.try("logs", id)
			t.Logf("container logs:\n%s", logs)
		}
		_, _ = e.try("rm", "-f", "-v", id)
	})
	return c
}

func (c *container) inspect(t *testing.T, format string) string {
	t.Helper()
	return c.e.run(t, "inspect", "-f", format, c.id)
}

func (c *container) logs(t *testing.T) string {
	t.Helper()
	return c.e.run(t, "logs", c.id)
}

// freePort is a 127.0.0.1 port free when picked: the container binds it
// itself, so its address must be chosen beforehand.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(url string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// eventually polls cond until it holds or the bound passes; it bounds the
// wait, it times nothing.
func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened within %s: %s", bound, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// readable makes a test directory and its files readable by the image's
// non-root user, as a mounted ConfigMap or host directory would be.
func readable(t *testing.T, dir string) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fixture is a TLS server and an expired certificate file, and a
// configuration watching both through the paths the container mounts.
type fixture struct {
	configDir, certDir string
	server             string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ca := testpki.NewCA("Deploy Test Root")
	good := ca.Leaf("localhost")
	expired := ca.Issue(testpki.Options{CN: "expired.test", NotBefore: time.Now().Add(-48 * time.Hour),
		NotAfter: time.Now().Add(-24 * time.Hour)})
	f := fixture{configDir: t.TempDir(), certDir: t.TempDir()}
	f.server = testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{good.TLS()}})
	testpki.WriteFile(t, f.certDir, "ca.pem", ca.PEM())
	testpki.WriteFile(t, f.certDir, "expired.pem", expired.PEM())
	testpki.WriteFile(t, f.configDir, "config.yml", []byte(fmt.Sprintf(`interval: 1h
endpoints:
  - name: local-tls
    address: %s
    tls_config: {ca_file: /certs/ca.pem, server_name: localhost}
files:
  - name: mounted-certs
    paths: ["/certs/expired.pem"]
`, f.server)))
	readable(t, f.configDir)
	readable(t, f.certDir)
	return f
}

func TestImage(t *testing.T) {
	e, image := exporterImage(t)
	f := newFixture(t)
	addr := freePort(t)
	c := e.start(t, "--read-only",
		"-v", f.configDir+":/etc/mcp_cert_exporter:ro", "-v", f.certDir+":/certs:ro",
		image, "--config.file=/etc/mcp_cert_exporter/config.yml", "--web.listen-address="+addr)

	var metrics string
	eventually(t, time.Minute, "the container serves /metrics with both targets", func() bool {
		code, body, err := get("http://" + addr + "/metrics")
		metrics = body
		return err == nil && code == 200 && strings.Contains(body, `ssl_probe_success{target="local-tls"} 1`) &&
			strings.Contains(body, `target="mounted-certs"`)
	})
	t.Run("reads the read-only mounts", func(t *testing.T) {
		m := regexp.MustCompile(`(?m)^ssl_certificate_expiry_seconds\{[^}]*path="/certs/expired.pem"[^}]*\} (-\S+)$`).
			FindStringSubmatch(metrics)
		if m == nil {
			t.Errorf("no negative expiry for the mounted expired certificate in:\n%s", grep(metrics, "ssl_certificate_expiry_seconds"))
		}
		if got := c.inspect(t, `{{range .Mounts}}{{.Destination}}:{{.RW}} {{end}}`); !strings.Contains(got, "/certs:false") ||
			!strings.Contains(got, "/etc/mcp_cert_exporter:false") {
			t.Errorf("mounts %q, want /certs and /etc/mcp_cert_exporter read-only", got)
		}
	})
	t.Run("runs as non-root", func(t *testing.T) {
		pid := c.inspect(t, "{{.State.Pid}}")
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{"Uid", "Gid"} {
			m := regexp.MustCompile(`(?m)^` + field + `:\s+(.*)$`).FindSubmatch(status)
			if m == nil || strings.Join(strings.Fields(string(m[1])), " ") != "65532 65532 65532 65532" {
				t.Errorf("%s of the exporter process: %q, want 65532 throughout", field, m)
			}
		}
	})
	t.Run("healthcheck in the image", func(t *testing.T) {
		if got := c.inspect(t, "{{json .Config.Healthcheck.Test}}"); got != `["CMD","/bin/mcp_cert_exporter","healthcheck"]` {
			t.Errorf("image health check %s, want the exec form of the healthcheck command", got)
		}
		if out, err := e.try("exec", c.id, "/bin/mcp_cert_exporter", "healthcheck", "--web.listen-address="+addr); err != nil {
			t.Errorf("healthcheck inside the container: %v\n%s", err, out)
		}
	})
	t.Run("SIGTERM stops it within the grace period", func(t *testing.T) {
		// docker stop sends SIGTERM, then SIGKILL after --time: exit code
		// 0 and the log line show the exporter stopped by itself.
		e.run(t, "stop", "--time=20", c.id)
		if code := c.inspect(t, "{{.State.ExitCode}}"); code != "0" {
			t.Errorf("exit code %s after docker stop, want 0 (137 is SIGKILL after the grace period)", code)
		}
		if logs := c.logs(t); !strings.Contains(logs, `msg="shutting down" signal=terminated`) ||
			!strings.Contains(logs, "msg=stopped") {
			t.Errorf("logs lack the shutdown lines:\n%s", logs)
		}
	})
}

func TestImageMetadata(t *testing.T) {
	e, image := exporterImage(t)
	version := buildArgs(t, e.root)["VERSION"]
	labels := e.run(t, "image", "inspect", "-f", "{{json .Config.Labels}}", image)
	for _, want := range []string{
		`"org.opencontainers.image.source":"https://github.com/mcpcert/mcp_cert_exporter"`,
		`"org.opencontainers.image.version":"` + version + `"`,
		`"org.opencontainers.image.revision":"` + testRevision + `"`,
	} {
		if !strings.Contains(labels, want) {
			t.Errorf("labels %s lack %s", labels, want)
		}
	}
	if user := e.run(t, "image", "inspect", "-f", "{{.Config.User}}", image); user != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532", user)
	}
	out := e.run(t, "run", "--rm", "--network=host", image, "--version")
	if !strings.Contains(out, "version "+version+" ") || !strings.Contains(out, "revision: "+testRevision) {
		t.Errorf("--version says %q, want version %s and revision %s", out, version, testRevision)
	}
}

// Started without a configuration of its own, the image watches nothing and
// says how to give it one.
func TestImageWithoutConfigWatchesNothing(t *testing.T) {
	e, image := exporterImage(t)
	addr := freePort(t)
	c := e.start(t, "--read-only", image, "--config.file=/etc/mcp_cert_exporter/config.yml", "--web.listen-address="+addr)
	var metrics string
	eventually(t, time.Minute, "the container serves /metrics", func() bool {
		code, body, err := get("http://" + addr + "/metrics")
		metrics = body
		return err == nil && code == 200
	})
	if strings.Contains(metrics, "ssl_certificate_expiry_seconds{") || strings.Contains(metrics, "ssl_probe_success{") {
		t.Errorf("the image's own configuration watches something:\n%s", grep(metrics, "ssl_"))
	}
	if logs := c.logs(t); !strings.Contains(logs, "the configuration watches nothing") ||
		!strings.Contains(logs, "/etc/mcp_cert_exporter/config.yml:ro") {
		t.Errorf("the start log does not say how to mount a configuration:\n%s", logs)
	}
}

// TestDockerfileDefaults keeps the Dockerfile's defaults honest: bases
// pinned by digest, and the version the VERSION file has.
func TestDockerfileDefaults(t *testing.T) {
	root := tooltest.RepoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(raw)
	for _, arg := range []string{"BUILDER_IMAGE", "RUNTIME_IMAGE"} {
		if !regexp.MustCompile(`(?m)^ARG ` + arg + `=\S+:\S+@sha256:[0-9a-f]{64}$`).MatchString(dockerfile) {
			t.Errorf("ARG %s has no default pinned by digest", arg)
		}
	}
	version := buildArgs(t, root)["VERSION"]
	if n := strings.Count(dockerfile, "\nARG VERSION="+version+"\n"); n != 2 {
		t.Errorf("want ARG VERSION=%s in both stages (the VERSION file's), found %d", version, n)
	}
}

func grep(text, substr string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
