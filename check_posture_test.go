package main

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

func TestCheckPrintsPosture(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA("Check Root")
	weak := ca.Issue(testpki.Options{RSABits: 1024, NotAfter: time.Now().Add(30 * 24 * time.Hour)})
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM())
	legacy := testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{weak.TLS()}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12})

	code, out := runMain(t, "check", legacy, "--ca-file", caFile, "--server-name", "localhost")
	for _, want := range []string{
		"Posture", "TLS 1.0 accepted", "TLS 1.3 refused", "Ciphers TLS 1.0: ", "(insecure)",
		"WEAK_KEY on leaf", "remedy: The key is too small",
		"min_version: accepts TLS 1.0, below TLS 1.2", "remedy: Disable the old versions",
		"allow_insecure_ciphers: accepts ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("posture findings changed the exit code to %d; only the probe decides it", code)
	}
	if _, out := runMain(t, "check", legacy, "--ca-file", caFile, "--server-name", "localhost", "--no-posture"); strings.Contains(out, "Posture") {
		t.Errorf("--no-posture still scanned:\n%s", out)
	}
	if _, out := runMain(t, "check", testpki.ClosedAddr(t)); !strings.Contains(out, "not scanned") {
		t.Errorf("a closed port was scanned:\n%s", out)
	}
}
