package main

import (
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// Tests of the command line, run in-process. Tests of the built binary and
// of the documentation are in e2e/.

// runMain runs the command line in-process, stdout and stderr together.
func runMain(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out strings.Builder // written by run's goroutine only
	code := run(args, &out, &out)
	return code, out.String()
}

// What the command line answers before the exporter would serve: a config
// check, or a bad --shard that stops it, naming the flag's form.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	good := testpki.WriteFile(t, dir, "good.yml", []byte("endpoints:\n  - name: a\n    address: 127.0.0.1:1\n"))
	bad := testpki.WriteFile(t, dir, "bad.yml", []byte("endpoints:\n  - name: a\n    url: http://x\n"))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--config.check", "--config.file=" + good}, 0, "OK"},
		{[]string{"--config.check", "--config.file=" + bad}, 1, "bad.yml:3: endpoints[0].url: must be an https:// URL"},
		{[]string{"--config.check", "--config.file=config.example.yml"}, 0, "OK"}, // the shipped example
		{[]string{"--config.file=" + good, "--shard=3/3"}, 2, "want 0 <= i < n"},
		{[]string{"--config.file=" + good, "--shard=1"}, 2, "want i/n"},
		{[]string{"--config.file=" + good, "--shard=x/2"}, 2, "replica index"},
		// Placement hashes a target once per replica: a huge n would
		// never let the exporter start serving.
		{[]string{"--config.file=" + good, "--shard=0/1000000000"}, 2, "at most 1000 replicas"},
	} {
		code, out := runMain(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, %q; want exit %d and %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}
