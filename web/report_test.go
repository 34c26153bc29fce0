package web

import (
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
