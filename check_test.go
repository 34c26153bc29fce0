package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/probe"
	"github.com/mcpcert/mcp_cert_exporter/web"
)

func TestCheckCommand(t *testing.T) {
	caFile, good, expired := testpki.GoodAndExpired(t)
	code, out := runMain(t, "check", expired, "--ca-file", caFile, "--server-name", "localhost")
	for _, want := range []string{"CERTIFICATE_EXPIRED", "Remedy:", "[leaf] expired.test", "[intermediate] Test Intermediate", "TLS 1.3"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("check of an expired server exited %d, want 1", code)
	}
	if code, out := runMain(t, "check", good, "--ca-file", caFile, "--server-name", "localhost"); code != 0 {
		t.Errorf("check of a good server exited %d:\n%s", code, out)
	}
	if code, _ := runMain(t, "check", "http://x"); code != 2 {
		t.Errorf("check with an http URL exited %d, want 2", code)
	}
}

// legacyServer serves a 1024-bit leaf over TLS 1.0 to 1.2: findings and
// policy violations for the posture scan to report. The leaf expires in 90
// days and 30 minutes, so that countdowns rendered a moment apart agree.
func legacyServer(t *testing.T) (caFile, addr string) {
	ca := testpki.NewCA("Check Root")
	weak := ca.Issue(testpki.Options{RSABits: 1024, NotAfter: time.Now().Add(90*24*time.Hour + 30*time.Minute)})
	caFile = testpki.WriteFile(t, t.TempDir(), "ca.pem", ca.PEM())
	return caFile, testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{weak.TLS()}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12})
}

func TestCheckPrintsPosture(t *testing.T) {
	caFile, legacy := legacyServer(t)
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

// For the same probe and posture results, check prints exactly what
// /status?target=NAME&format=text shows under its summary: one report
// model, one text writer.
func TestCheckPrintsWhatStatusShows(t *testing.T) {
	caFile, legacy := legacyServer(t)
	yml := fmt.Sprintf("endpoints:\n  - {name: legacy, address: %q, tls_config: {ca_file: %q, server_name: localhost}}\n"+
		"  - {name: legacy-2, address: \"127.0.0.1:1\"}\n", legacy, caFile)
	cfg, err := config.Parse([]byte(yml), "check.yml")
	if err != nil {
		t.Fatal(err)
	}
	ep := &cfg.Endpoints[0]
	target, err := probe.NewTarget(*ep)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	view := web.EndpointView{Endpoint: *ep, Policy: cfg.Policy, Last: target.Probe(ctx)}
	view.Posture = target.Posture(ctx, probe.PostureOptionsFor(ep, cfg.Policy))
	var printed strings.Builder
	writeCheck(&printed, view, true, time.Now())

	// The page also holds a target whose name contains this one's.
	page := web.StatusHandler(web.Snapshot{
		Endpoints: []web.EndpointView{{Endpoint: cfg.Endpoints[1], Policy: cfg.Policy}, view},
	})
	rec := httptest.NewRecorder()
	page.ServeHTTP(rec, httptest.NewRequest("GET", "/status?format=text&target=legacy", nil))
	summary, shown, _ := strings.Cut(rec.Body.String(), "\n\n")
	if !strings.HasPrefix(summary, "Targets: 0 failing, 0 expiring, 1 healthy, 1 pending;") {
		t.Errorf("summary %q", summary)
	}
	if shown != printed.String() {
		t.Errorf("check printed:\n%s\n/status shows:\n%s", printed.String(), shown)
	}
	for _, want := range []string{"Target:       legacy (dial", "Verdict:      OK", "Posture (scan took", "WEAK_KEY on leaf", "min_version: accepts TLS 1.0"} {
		if !strings.Contains(shown, want) {
			t.Errorf("the report lacks %q:\n%s", want, shown)
		}
	}
}
