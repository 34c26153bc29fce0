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

// legacyServer serves a 1024-bit leaf over TLS 1.0 to 1.2: findings and
// policy violations for the posture scan to report. The leaf expires in 90
// days and 30 minutes, so that countdowns rendered a moment apart agree.
func legacyServer(t *testing.T) (caFile, addr string) {
	ca := testpki.NewCA("Check Root")
	weak := ca.Issue(testpki.Options{RSABits: 1024, NotAfter: time.Now().Add(90*24*time.Hour + 30*time.Minute)})
	caFile = testpki.WriteFile(t, t.TempDir(), "ca.pem", ca.PEM())
	return caFile, testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{weak.TLS()}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12})
}

// check's exit code says whether the endpoint is healthy, whatever the
// posture scan finds; its report names the reason, the remedy, the chain and
// the posture.
func TestCheck(t *testing.T) {
	caFile, good, expired := testpki.GoodAndExpired(t)
	weakCA, legacy := legacyServer(t)
	trust := []string{"--ca-file", caFile, "--server-name", "localhost"}
	weak := []string{legacy, "--ca-file", weakCA, "--server-name", "localhost"}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		want   []string
		absent string
	}{
		{"expired", append([]string{expired}, trust...), 1,
			[]string{"CERTIFICATE_EXPIRED", "Remedy:", "[leaf] expired.test", "[intermediate] Test Intermediate", "TLS 1.3"}, ""},
		{"good", append([]string{good}, trust...), 0, []string{"Verdict:      OK"}, ""},
		{"http URL", []string{"http://x"}, 2, []string{"invalid target or flags"}, ""},
		{"legacy", weak, 0, []string{ // findings do not change the exit code
			"Posture", "TLS 1.0 accepted", "TLS 1.3 refused", "Ciphers TLS 1.0: ", "(insecure)",
			"WEAK_KEY on leaf", "remedy: The key is too small",
			"min_version: accepts TLS 1.0, below TLS 1.2", "remedy: Disable the old versions",
			"allow_insecure_ciphers: accepts ",
		}, ""},
		{"legacy --no-posture", append(weak, "--no-posture"), 0, nil, "Posture"},
		{"closed port", []string{testpki.ClosedAddr(t)}, 1, []string{"not scanned"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runMain(t, append([]string{"check"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("check output lacks %q:\n%s", want, out)
				}
			}
			if tc.absent != "" && strings.Contains(out, tc.absent) {
				t.Errorf("check output has %q:\n%s", tc.absent, out)
			}
		})
	}
}

// For the same probe and posture results, check prints exactly what
// /status?target=NAME&format=text shows under its summary: one report
// model, one text writer. It prints the probe's part before the posture
// scan starts.
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
	var printed strings.Builder
	var beforeScan string // what check had printed when the scan started
	writeCheck(&printed, view, true, func() *probe.PostureResult {
		beforeScan = printed.String()
		view.Posture = target.Posture(ctx, probe.PostureOptionsFor(ep, cfg.Policy))
		return view.Posture
	}, time.Now())
	if !strings.Contains(beforeScan, "Verdict:      OK") || strings.Contains(beforeScan, "Posture") ||
		!strings.HasPrefix(printed.String(), beforeScan) {
		t.Errorf("before the posture scan, check had printed:\n%s", beforeScan)
	}

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
