package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// blackboxConfig is a tls_connect module that verifies the chain against
// the test root, as the exporter does.
const blackboxConfig = `modules:
  tls_connect:
    prober: tcp
    timeout: 10s
    tcp:
      tls: true
      tls_config:
        ca_file: %q
        server_name: localhost
`

// blackbox is blackbox_exporter running as a child process.
type blackbox struct {
	cmd  *exec.Cmd
	base string
}

func startBlackbox(bin string, p *pki) (*blackbox, error) {
	cfg := filepath.Join(p.dir, "blackbox.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, blackboxConfig, p.caFile), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", cfg, err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	b := &blackbox{base: "http://" + addr}
	b.cmd = exec.Command(bin, "--config.file="+cfg, "--web.listen-address="+addr, "--log.level=warn")
	b.cmd.Stderr = os.Stderr
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := httpGet(b.base + "/-/healthy"); err == nil {
			return b, nil
		} else if time.Now().After(deadline) {
			b.stop()
			return nil, fmt.Errorf("blackbox_exporter did not come up: %w", err)
		}
	}
}

func (b *blackbox) stop() {
	_ = b.cmd.Process.Signal(syscall.SIGTERM) // it may already be gone
	_ = b.cmd.Wait()                          // killed by our signal: not a failure
}

// probe asks blackbox_exporter to probe one listener and fails unless the
// probe succeeded, so that a misconfigured module cannot look cheap.
func (b *blackbox) probe(addr string) error {
	body, err := httpGet(b.base + "/probe?module=tls_connect&target=" + url.QueryEscape(addr))
	if err != nil {
		return err
	}
	if !strings.Contains(body, "\nprobe_success 1\n") {
		return fmt.Errorf("probe of %s failed:\n%s", addr, body)
	}
	return nil
}

// measureBlackbox probes every listener through blackbox_exporter, total
// probes at the given concurrency, and counts blackbox_exporter's CPU from
// /proc as for any process.
func measureBlackbox(bin string, p *pki, addrs []string, concurrency, total int, interval time.Duration, serverPIDs []int) (cost, error) {
	b, err := startBlackbox(bin, p)
	if err != nil {
		return cost{}, err
	}
	defer b.stop()
	if err := b.probe(addrs[0]); err != nil { // warm up, and check the module works
		return cost{}, err
	}
	m := meter{serverPIDs: serverPIDs, cpu: func() (time.Duration, error) { return procCPU(b.cmd.Process.Pid) }}
	return runConcurrently(m, addrs, concurrency, schedule(len(addrs), total, interval), total, b.probe)
}

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}

func httpGet(u string) (string, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", u, resp.Status)
	}
	return string(body), err
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
