package main

import (
	"strings"
	"testing"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// A bad --shard stops the exporter before it starts, naming the flag's form.
func TestShardFlagIsValidated(t *testing.T) {
	cfg := testpki.WriteFile(t, t.TempDir(), "c.yml", []byte("endpoints:\n  - name: a\n    address: 127.0.0.1:1\n"))
	for value, want := range map[string]string{
		"3/3": "want 0 <= i < n",
		"1":   "want i/n",
		"x/2": "replica index",
		// Placement hashes a target once per replica: a huge n would
		// never let the exporter start serving.
		"0/1000000000": "at most 1000 replicas",
	} {
		code, out := runMain(t, "--config.file="+cfg, "--shard="+value)
		if code != 2 || !strings.Contains(out, want) {
			t.Errorf("--shard=%s: exit %d, %q; want exit 2 and %q", value, code, out, want)
		}
	}
}
