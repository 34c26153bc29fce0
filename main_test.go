package main

import (
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// Tests of the command line, run in-process. Tests of the built binary are
// in e2e/.

// runMain runs the command line in-process, stdout and stderr together.
func runMain(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out strings.Builder // written by run's goroutine only
	code := run(args, &out, &out)
	return code, out.String()
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := testpki.WriteFile(t, dir, "good.yml", []byte("endpoints:\n  - name: a\n    address: 127.0.0.1:1\n"))
	bad := testpki.WriteFile(t, dir, "bad.yml", []byte("endpoints:\n  - name: a\n    url: http://x\n"))
	if code, out := runMain(t, "--config.check", "--config.file="+good); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("good config: exit %d, %q", code, out)
	}
	code, out := runMain(t, "--config.check", "--config.file="+bad)
	if code != 1 || !strings.Contains(out, "bad.yml:3: endpoints[0].url: must be an https:// URL") {
		t.Errorf("bad config: exit %d, %q", code, out)
	}
	if code, out := runMain(t, "--config.check", "--config.file=config.example.yml"); code != 0 {
		t.Errorf("shipped example config: exit %d, %q", code, out)
	}
}
