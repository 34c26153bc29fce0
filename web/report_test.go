package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/certfile"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/mcptest"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// statusViews are results as the collector holds them: an endpoint whose
// leaf expired, one expiring in 3 days, one healthy, one not yet probed, a
// group of 8 roots, and a trust store holding a long-expired root and one
// that expires in 10 days.
func statusViews(t *testing.T) Snapshot {
	t.Helper()
	yml := `interval: 1h
endpoints:
  - {name: c-ok, address: "127.0.0.1:1"}
  - {name: a-fail, address: "127.0.0.1:2", posture: false}
  - {name: d-pending, address: "127.0.0.1:3"}
  - {name: b-soon, address: "127.0.0.1:4"}
files:
  - {name: store, paths: [/nonexistent/roots.pem]}
  - {name: system, paths: [/nonexistent/ca-certificates.crt], trust_store: true}
`
	cfg, err := config.Parse([]byte(yml), "status.yml")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := testpki.NewCA("Status Root")
	leaf := func(cn string, left time.Duration) []probe.CertInfo {
		l := ca.Issue(testpki.Options{CN: cn, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(left)})
		return []probe.CertInfo{probe.CertInfoOf(l.Cert, probe.RoleLeaf), probe.CertInfoOf(ca.Cert, probe.RoleRoot)}
	}
	results := map[string]*probe.TLSResult{
		"a-fail": {Reason: probe.ReasonCertificateExpired, Detail: "expired", Certificates: leaf("a", -time.Hour)},
		"b-soon": {Verified: true, Certificates: leaf("b", 3*24*time.Hour)},
		"c-ok":   {Verified: true, Certificates: leaf("c", 200*24*time.Hour)},
	}
	var s Snapshot
	for _, ep := range cfg.Endpoints {
		r := results[ep.Name]
		if r != nil {
			r.Time, r.Success = now, true
		}
		s.Endpoints = append(s.Endpoints, EndpointView{Endpoint: ep, Policy: cfg.Policy, Last: r})
	}
	var roots []probe.CertInfo
	for i := range 8 {
		r := testpki.SelfSigned(testpki.Options{CN: fmt.Sprint("root ", i), IsCA: true, NotAfter: now.Add(time.Duration(2000+i) * time.Hour * 24)})
		roots = append(roots, probe.CertInfoOf(r.Cert, probe.RoleRoot))
	}
	var system []probe.CertInfo
	for i, left := range []time.Duration{-400 * 24 * time.Hour, 3000 * 24 * time.Hour, 10 * 24 * time.Hour} {
		r := testpki.SelfSigned(testpki.Options{CN: fmt.Sprint("system root ", i), IsCA: true, NotBefore: now.Add(-5000 * time.Hour), NotAfter: now.Add(left)})
		system = append(system, probe.CertInfoOf(r.Cert, probe.RoleRoot))
	}
	for i, certs := range [][]probe.CertInfo{roots, system} {
		g := cfg.Files[i]
		s.Files = append(s.Files, FileView{Group: g, Policy: cfg.Policy, Last: &certfile.FileResult{
			Time: now, Files: []certfile.FileState{{Path: g.Paths[0], Certificates: certs}},
		}})
	}
	return s
}

func TestStatusFiltersAndOrder(t *testing.T) {
	srv := httptest.NewServer(StatusHandler(statusViews(t)))
	defer srv.Close()
	for _, tc := range []struct {
		query string
		want  string // names in order, or the start of a 400's message
	}{
		// The trust store is healthy, and last among the healthy: its roots
		// (one expired, one expiring in 10 days) are nobody's problem.
		{"", "a-fail b-soon c-ok store system d-pending"},
		{"state=expiring", "b-soon"},
		{"state=failing", "a-fail"},
		{"state=pending&state=healthy", "c-ok store system d-pending"},
		{"state=healthy,expiring", "b-soon c-ok store system"},
		{"target=ok", "c-ok"},
		{"target=127.0.0.1:", "a-fail b-soon c-ok d-pending"},
		{"target=roots.pem", "store"},
		{"target=b-soon", "b-soon"},
		{"target=nothing", ""},
		{"limit=2", "a-fail b-soon"},
		{"state=broken", "unknown state"},
		{"format=xml", "unknown format"},
		{"limit=-1", "limit"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			query := tc.query
			if !strings.Contains(query, "format=") {
				query += "&format=json"
			}
			resp, err := http.Get(srv.URL + "/status?" + query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusBadRequest {
				msg, _ := io.ReadAll(resp.Body)
				if !strings.HasPrefix(string(msg), tc.want) {
					t.Errorf("400 %q, want %q", msg, tc.want)
				}
				return
			}
			var st []TargetStatus
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range st {
				names = append(names, s.Name)
			}
			if got := strings.Join(names, " "); got != tc.want {
				t.Errorf("targets %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStatusSummaryAndViews(t *testing.T) {
	c := statusViews(t)
	rep := Report(c, StatusQuery{Limit: 1}, time.Now())
	// The trust store's expired and expiring roots count nowhere.
	want := Summary{Targets: 6, Failing: 1, Expiring: 1, Healthy: 3, Pending: 1, Expired: 1, Within7d: 1, Within30d: 1}
	got := rep.Summary
	got.LastRefresh = nil
	if got != want {
		t.Errorf("summary %+v, want %+v", got, want)
	}
	if rep.Folded() != 5 || rep.Single {
		t.Errorf("limit 1: %d folded, single %v", rep.Folded(), rep.Single)
	}
	one := Report(c, StatusQuery{Target: "a-fail", Limit: -1}, time.Now())
	if !one.Single || !strings.Contains(one.Targets[0].Report, "Verdict:      FAILED: CERTIFICATE_EXPIRED") {
		t.Errorf("per-target view: single %v, report %q", one.Single, one.Targets[0].Report)
	}
	store := Report(c, StatusQuery{Target: "store", Limit: -1}, time.Now()).Targets[0]
	if !store.Collapsed() || store.Soonest().Subject != "root 0" || !slices.IsSortedFunc(store.Certs, func(a, b CertStatus) int { return a.NotAfter.Compare(b.NotAfter) }) {
		t.Errorf("the group of 8 roots: collapsed %v, soonest %+v", store.Collapsed(), store.Soonest())
	}
	if !strings.Contains(store.Report, "/nonexistent/roots.pem") {
		t.Errorf("the group's report lacks its path:\n%s", store.Report)
	}
	if store.TrustStore || store.Note != "" {
		t.Errorf("a plain file group is marked as a trust store: %q", store.Note)
	}
	system := Report(c, StatusQuery{Target: "system", Limit: -1}, time.Now()).Targets[0]
	if soonest := system.Soonest(); !system.TrustStore || !system.Collapsed() || soonest == nil || soonest.Subject != "system root 2" ||
		system.SoonestExpiry == nil || !system.SoonestExpiry.Equal(soonest.NotAfter) ||
		!strings.Contains(system.Note, "3 roots, 1 expired") {
		t.Errorf("the trust store: trust %v, collapsed %v, soonest %+v at %v, note %q",
			system.TrustStore, system.Collapsed(), soonest, system.SoonestExpiry, system.Note)
	}
}

// The per-target view's JSON carries everything its report shows: the
// report written again from the decoded JSON is the same text. The list
// views carry no detail, so that a page of 20,000 rows stays small.
func TestPerTargetJSONCarriesTheReport(t *testing.T) {
	views := statusViews(t)
	views.Endpoints = append(views.Endpoints, probedViews(t)...)
	srv := httptest.NewServer(StatusHandler(views))
	defer srv.Close()
	get := func(query string) []TargetStatus {
		resp, err := http.Get(srv.URL + "/status?format=json&" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st []TargetStatus
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, row := range get("") {
		if row.TargetDetail != nil || row.Report != "" || slices.ContainsFunc(row.Certs, func(c CertStatus) bool { return c.CertDetail != nil }) {
			t.Errorf("%s: the list view carries the per-target detail", row.Name)
		}
		if row.Pending {
			continue
		}
		t.Run(row.Name, func(t *testing.T) {
			one := get("target=" + row.Name)
			if len(one) != 1 || one[0].Report == "" || one[0].TargetDetail == nil {
				t.Fatalf("the per-target view of %s: %+v", row.Name, one)
			}
			if again := reportText(&one[0]); again != one[0].Report {
				t.Errorf("written from the JSON:\n%s\nthe report:\n%s", again, one[0].Report)
			}
			// check prints an endpoint's report in two parts; a file
			// group has none.
			var parts strings.Builder
			rep := &StatusReport{Single: true, Targets: one}
			WriteProbeReport(&parts, rep)
			WritePostureReport(&parts, rep)
			if want := map[string]string{"endpoint": one[0].Report}[one[0].Kind]; parts.String() != want {
				t.Errorf("the two parts:\n%s\nwant:\n%s", parts.String(), want)
			}
		})
	}
}

// probedViews are real probes and posture scans on 127.0.0.1: a server
// accepting TLS 1.0 with a 1024-bit key, one whose leaf expired probed with
// insecure_skip_verify, and an MCP server over Streamable HTTP.
func probedViews(t *testing.T) []EndpointView {
	ca := testpki.NewCA("Probe Root")
	caFile := testpki.WriteFile(t, t.TempDir(), "ca.pem", ca.PEM())
	weak := ca.Issue(testpki.Options{RSABits: 1024, DNSNames: []string{"localhost"}})
	legacy := testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{weak.TLS()}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12})
	old := ca.Issue(testpki.Options{DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	expired := testpki.Serve(t, &tls.Config{Certificates: []tls.Certificate{old.TLS()}})
	base, mux := mcptest.ServeTLS(t, ca.Issue(testpki.Options{DNSNames: []string{"localhost"}}).TLS())
	calls := &mcptest.Calls{}
	mux.Handle("/mcp", mcptest.Streamable(mcptest.NewServer("docs", calls), calls, nil))
	cfg, err := config.Parse(fmt.Appendf(nil, `endpoints:
  - {name: legacy, address: %[1]q, tls_config: {ca_file: %[2]q, server_name: localhost}}
  - {name: skip, address: %[3]q, tls_config: {ca_file: %[2]q, server_name: localhost, insecure_skip_verify: true}}
  - {name: mcp, url: %[4]q, tls_config: {ca_file: %[2]q, server_name: localhost}}
`, legacy, caFile, expired, base+"/mcp"), "probed.yml")
	if err != nil {
		t.Fatal(err)
	}
	var views []EndpointView
	for i := range cfg.Endpoints {
		ep := &cfg.Endpoints[i]
		target, err := probe.NewTarget(*ep)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		views = append(views, EndpointView{Endpoint: *ep, Policy: cfg.Policy, Last: target.Probe(ctx),
			Posture: target.Posture(ctx, probe.PostureOptionsFor(ep, cfg.Policy))})
	}
	return views
}
