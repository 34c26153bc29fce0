package web

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/collector"
	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/policy"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// The report model: what the status page and `check` show, built from the
// collector's views of its targets, in the order an engineer reads it. The
// renderers (html.go, text.go, JSON in status.go) only read it.

// Target states, in urgency order.
const (
	StateFailing  = "failing"  // a read failed, or an endpoint is not probe.TLSResult.Healthy
	StateExpiring = "expiring" // a certificate has expired or expires within 30 days
	StateHealthy  = "healthy"
	StatePending  = "pending" // no result yet
)

var states = []string{StateFailing, StateExpiring, StateHealthy, StatePending}

const (
	soonWindow     = 7 * 24 * time.Hour
	expiringWindow = 30 * 24 * time.Hour
	// collapseAt is how many certificates or problems a row lists before
	// it folds them behind one line: a trust store of 140 roots is a row.
	collapseAt = 5
	// defaultStatusLimit is how many targets one page lists unless ?limit=
	// says otherwise: the summary still counts them all.
	defaultStatusLimit = 500
)

// TargetStatus is one target as the status page shows it.
type TargetStatus struct {
	Name          string     `json:"name"`
	Kind          string     `json:"kind"` // endpoint or file
	Target        string     `json:"target"`
	State         string     `json:"state"`
	LastRun       *time.Time `json:"last_run,omitempty"`
	Pending       bool       `json:"pending"`
	Problems      []Problem  `json:"problems"`
	Version       string     `json:"tls_version,omitempty"`
	Cipher        string     `json:"cipher,omitempty"`
	Verified      *bool      `json:"verified,omitempty"`
	Verdict       string     `json:"tls_verdict,omitempty"` // an endpoint's: VerdictOK, VerdictFailed or VerdictWaived
	SoonestExpiry *time.Time `json:"soonest_expiry,omitempty"`
	// TrustStore marks a trust_store group: always one folded row, never
	// expiring, its expired roots counted only in Note.
	TrustStore bool              `json:"trust_store,omitempty"`
	Note       string            `json:"note,omitempty"`
	Certs      []CertStatus      `json:"certificates"`
	MCP        *MCPStatus        `json:"mcp,omitempty"`
	Findings   []FindingStatus   `json:"findings,omitempty"`
	Violations []ViolationStatus `json:"policy_violations,omitempty"`
	// Report is what `check` prints for this target, written from the
	// fields above and TargetDetail; only in the per-target view.
	Report string `json:"report,omitempty"`
	// TargetDetail is the rest of what the report shows; only in the
	// per-target view, nil elsewhere.
	*TargetDetail
}

// Problem is a failure with what to do about it.
type Problem struct {
	Layer  string `json:"layer,omitempty"` // mcp for the MCP handshake; empty for TLS and files
	Path   string `json:"path,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	Remedy string `json:"remedy"`
}

// CertStatus is one certificate's summary.
type CertStatus struct {
	Path      string    `json:"path,omitempty"`
	Role      string    `json:"role"`
	Subject   string    `json:"subject_cn"`
	Issuer    string    `json:"issuer_cn"`
	NotAfter  time.Time `json:"not_after"`
	ExpiresIn string    `json:"expires_in"`
	Urgency   string    `json:"-"` // expired, soon or expiring, for the page's colours
	// CertDetail is the rest of what the report shows; only in the
	// per-target view, nil elsewhere.
	*CertDetail
}

// FindingStatus is a quality finding of one certificate.
type FindingStatus struct {
	Finding string `json:"finding"`
	Role    string `json:"role"`
	Subject string `json:"subject_cn"`
	Serial  string `json:"serial"`
	Path    string `json:"path,omitempty"`
	Remedy  string `json:"remedy"`
}

// ViolationStatus is a policy rule the target breaches.
type ViolationStatus struct {
	Rule   string `json:"rule"`
	Detail string `json:"detail"`
	Remedy string `json:"remedy"`
}

// Summary counts every target, whatever the filters.
type Summary struct {
	Targets     int
	Failing     int
	Expiring    int // targets
	Healthy     int
	Pending     int
	Violating   int // targets breaching a policy rule
	Expired     int // certificates
	Within7d    int // certificates expiring within 7 days, not yet expired
	Within30d   int // certificates expiring within 30 days, not yet expired
	LastRefresh *time.Time
}

// StatusQuery is what the URL asks for.
type StatusQuery struct {
	States []string // none: every state
	Target string   // a target's exact name: its own view; else a substring of name or address
	Limit  int
	Format string // html, json or text
}

// StatusReport is the status page's model.
type StatusReport struct {
	Now     time.Time
	Summary Summary
	Query   StatusQuery
	Matched int            // targets passing the filters
	Targets []TargetStatus // the first Limit of them, most urgent first
	Single  bool           // the per-target view: Target named exactly one target
}

// Folded is how many targets matched but are not listed.
func (r *StatusReport) Folded() int { return r.Matched - len(r.Targets) }

// statusEntry is a target before its row is built: enough to count, sort and
// filter every target without building every row.
type statusEntry struct {
	ep      *EndpointView
	file    *FileView
	name    string
	address string
	state   int // index in states
	soonest time.Time
	// trustStore: a trust_store group, whose roots are nobody's problem
	// until a served chain uses them (issue 10): soonest is its soonest
	// unexpired root, and it counts as no certificate in the summary.
	trustStore bool
}

// sortExpiry is the expiry that orders the entry: none for a trust store.
func (e statusEntry) sortExpiry() time.Time {
	if e.trustStore {
		return time.Time{}
	}
	return e.soonest
}

// EndpointView and FileView are the report's input: a target's definition
// and last results, as the collector holds them. `check` builds one from
// its own probe.
type (
	EndpointView = collector.EndpointView
	FileView     = collector.FileView
)

// Source is what the report reads: a snapshot of every target's
// definition and last results. *collector.Collector is one.
type Source interface {
	Views() ([]EndpointView, []FileView)
}

// Snapshot is a Source of views taken elsewhere: `check`'s one result.
type Snapshot struct {
	Endpoints []EndpointView
	Files     []FileView
}

// Views returns the snapshot's views.
func (s Snapshot) Views() ([]EndpointView, []FileView) {
	return s.Endpoints, s.Files
}

// EndpointReport is the per-target view of one endpoint's result, what
// /status?target=NAME shows for it: `check` builds its report this way.
func EndpointReport(v EndpointView, now time.Time) *StatusReport {
	q := StatusQuery{Target: v.Endpoint.Name, Limit: -1, Format: "text"}
	return Report(Snapshot{Endpoints: []EndpointView{v}}, q, now)
}

// Report builds the report for q from src's targets. It holds one small
// entry per target and builds rows only for the targets it lists.
func Report(src Source, q StatusQuery, now time.Time) *StatusReport {
	endpoints, files := src.Views()
	rep := &StatusReport{Now: now, Query: q}
	all := make([]statusEntry, 0, len(endpoints)+len(files))
	for i := range endpoints {
		all = append(all, rep.Summary.endpoint(&endpoints[i], now))
	}
	for i := range files {
		all = append(all, rep.Summary.file(&files[i], now))
	}
	slices.SortStableFunc(all, urgency)
	matched := all[:0]
	exact := false
	for _, e := range all {
		if q.matches(e) {
			matched = append(matched, e)
			exact = exact || e.name == q.Target
		}
	}
	if exact { // the per-target view: that target only, not others containing its name
		matched = slices.DeleteFunc(matched, func(e statusEntry) bool { return e.name != q.Target })
	}
	rep.Matched, rep.Single = len(matched), exact && len(matched) == 1
	if q.Limit >= 0 && len(matched) > q.Limit {
		matched = matched[:q.Limit]
	}
	rep.Targets = make([]TargetStatus, len(matched))
	for i, e := range matched {
		rep.Targets[i] = e.row(now, rep.Single)
	}
	return rep
}

// urgency orders failures first, then the soonest expiry, then by name.
func urgency(a, b statusEntry) int {
	if a.state != b.state {
		return a.state - b.state
	}
	as, bs := a.sortExpiry(), b.sortExpiry()
	switch {
	case as.Equal(bs):
	case as.IsZero():
		return 1
	case bs.IsZero():
		return -1
	default:
		return as.Compare(bs)
	}
	return strings.Compare(a.name, b.name)
}

func (q *StatusQuery) matches(e statusEntry) bool {
	if len(q.States) > 0 && !slices.Contains(q.States, states[e.state]) {
		return false
	}
	return q.Target == "" || strings.Contains(e.name, q.Target) || strings.Contains(e.address, q.Target)
}

// endpoint counts an endpoint and returns its statusEntry.
func (s *Summary) endpoint(v *EndpointView, now time.Time) statusEntry {
	ep := &v.Endpoint
	e := statusEntry{ep: v, name: ep.Name, address: firstNonEmpty(ep.URL, ep.Address)}
	r := v.Last
	if r == nil {
		return s.count(e, nil, false, false, now)
	}
	failed := !r.Healthy(ep)
	e.soonest = s.certs(r.Certificates, now)
	violating := ep.PostureEnabled() && len(policy.EndpointViolations(v.Policy, *ep, r, v.Posture)) > 0
	return s.count(e, &r.Time, failed, violating, now)
}

// file counts a file group and returns its statusEntry.
func (s *Summary) file(v *FileView, now time.Time) statusEntry {
	e := statusEntry{file: v, name: v.Group.Name, address: strings.Join(v.Group.Paths, ", "), trustStore: v.Group.TrustStore}
	r := v.Last
	if r == nil {
		return s.count(e, nil, false, false, now)
	}
	failed := false
	for _, f := range r.Files {
		failed = failed || f.Reason != probe.ReasonNone
		var soonest time.Time
		if e.trustStore {
			soonest = trustStoreSoonest(f.Certificates, now)
		} else {
			soonest = s.certs(f.Certificates, now)
		}
		if !soonest.IsZero() && (e.soonest.IsZero() || soonest.Before(e.soonest)) {
			e.soonest = soonest
		}
	}
	violating := len(policy.FileViolations(v.Policy, r)) > 0
	return s.count(e, &r.Time, failed, violating, now)
}

// certs counts certificates by expiry and returns the soonest NotAfter.
func (s *Summary) certs(certs []probe.CertInfo, now time.Time) time.Time {
	var soonest time.Time
	for i := range certs {
		at := certs[i].NotAfter
		switch left := at.Sub(now); {
		case left < 0:
			s.Expired++
		case left < soonWindow:
			s.Within7d++
			s.Within30d++
		case left < expiringWindow:
			s.Within30d++
		}
		if soonest.IsZero() || at.Before(soonest) {
			soonest = at
		}
	}
	return soonest
}

// trustStoreSoonest is the soonest NotAfter of the roots not yet expired,
// counting none.
func trustStoreSoonest(certs []probe.CertInfo, now time.Time) time.Time {
	var soonest time.Time
	for i := range certs {
		if at := certs[i].NotAfter; !at.Before(now) && (soonest.IsZero() || at.Before(soonest)) {
			soonest = at
		}
	}
	return soonest
}

// count gives the statusEntry its state and counts it.
func (s *Summary) count(e statusEntry, last *time.Time, failed, violating bool, now time.Time) statusEntry {
	s.Targets++
	if violating {
		s.Violating++
	}
	if last != nil && (s.LastRefresh == nil || last.After(*s.LastRefresh)) {
		at := *last
		s.LastRefresh = &at
	}
	switch {
	case last == nil:
		e.state = slices.Index(states, StatePending)
		s.Pending++
	case failed:
		e.state = slices.Index(states, StateFailing)
		s.Failing++
	case !e.trustStore && !e.soonest.IsZero() && e.soonest.Sub(now) < expiringWindow:
		e.state = slices.Index(states, StateExpiring)
		s.Expiring++
	default:
		e.state = slices.Index(states, StateHealthy)
		s.Healthy++
	}
	return e
}

// row builds the target's row; with detail, also the rest of what the
// per-target view shows and its `check` text, written from the row.
func (e statusEntry) row(now time.Time, detail bool) TargetStatus {
	s := TargetStatus{Name: e.name, Target: e.address, State: states[e.state], Pending: e.state == slices.Index(states, StatePending)}
	if !e.soonest.IsZero() {
		at := e.soonest
		s.SoonestExpiry = &at
	}
	switch {
	case e.ep != nil:
		s.Kind = "endpoint"
		if e.ep.Last != nil {
			fillEndpointStatus(&s, e.ep, now, detail)
		}
	case e.file != nil:
		s.Kind = "file"
		if e.file.Last != nil {
			fillFileStatus(&s, e.file, now, detail)
		}
	}
	if e.trustStore {
		s.TrustStore, s.Note = true, trustStoreNote(s.Certs, now)
		for i := range s.Certs {
			s.Certs[i].Urgency = "" // no alarm colours for roots nobody uses
		}
	}
	if s.TargetDetail != nil {
		s.Report = reportText(&s)
	}
	return s
}

func fillEndpointStatus(s *TargetStatus, v *EndpointView, now time.Time, detail bool) {
	ep, pol, r := &v.Endpoint, v.Policy, v.Last
	s.LastRun = &r.Time
	if r.Reason != probe.ReasonNone {
		s.Problems = append(s.Problems, problemOf("", r.Reason, r.Detail))
	}
	if r.Version != 0 {
		s.Version, s.Cipher = tls.VersionName(r.Version), tls.CipherSuiteName(r.CipherSuite)
	}
	if r.Success || len(r.Certificates) > 0 {
		verified := r.Verified
		s.Verified = &verified
	}
	s.Verdict = verdictOf(r)
	s.Certs = certStatuses(s.Certs, "", r.Certificates, now, detail)
	fillMCPStatus(s, r.MCP)
	var scan *probe.PostureResult
	if ep.PostureEnabled() {
		scan = v.Posture
		s.Findings = findingStatuses(s.Findings, pol, "", r.Certificates)
		s.Violations = violationStatuses(policy.EndpointViolations(pol, *ep, r, scan))
	}
	if detail {
		s.TargetDetail = endpointDetail(ep, r, scan)
	}
}

func fillFileStatus(s *TargetStatus, v *FileView, now time.Time, detail bool) {
	pol, r := v.Policy, v.Last
	s.LastRun = &r.Time
	for _, f := range r.Files {
		if f.Reason != probe.ReasonNone {
			s.Problems = append(s.Problems, problemOf(f.Path, f.Reason, f.Detail))
		}
		s.Certs = certStatuses(s.Certs, f.Path, f.Certificates, now, detail)
		s.Findings = findingStatuses(s.Findings, pol, f.Path, f.Certificates)
	}
	slices.SortStableFunc(s.Certs, func(a, b CertStatus) int { return a.NotAfter.Compare(b.NotAfter) })
	s.Violations = violationStatuses(policy.FileViolations(pol, r))
	if detail {
		s.TargetDetail = fileDetail(r)
	}
}

// trustStoreNote says why a trust store's expiring and expired roots do not
// count, with how many there are.
func trustStoreNote(certs []CertStatus, now time.Time) string {
	expired := 0
	for i := range certs {
		if certs[i].NotAfter.Before(now) {
			expired++
		}
	}
	return fmt.Sprintf("trust store: %d roots, %d expired; not counted as expiring or expired, "+
		"since no client uses a root just because the bundle holds it. A root that anchors an endpoint's chain "+
		"shows under that endpoint.", len(certs), expired)
}

func problemOf(path string, r probe.Reason, detail string) Problem {
	return Problem{Path: path, Reason: string(r), Detail: detail, Remedy: r.Remedy()}
}

func certStatuses(out []CertStatus, path string, certs []probe.CertInfo, now time.Time, detail bool) []CertStatus {
	for i := range certs {
		c := &certs[i]
		left := c.NotAfter.Sub(now)
		s := CertStatus{
			Path: path, Role: c.Role, Subject: c.SubjectCN, Issuer: c.IssuerCN,
			NotAfter: c.NotAfter, ExpiresIn: humanDuration(left), Urgency: urgencyOf(left),
		}
		if detail {
			s.CertDetail = certDetail(i, c)
		}
		out = append(out, s)
	}
	return out
}

func urgencyOf(left time.Duration) string {
	switch {
	case left < 0:
		return "expired"
	case left < soonWindow:
		return "soon"
	case left < expiringWindow:
		return "expiring"
	}
	return ""
}

func findingStatuses(out []FindingStatus, pol config.Policy, path string, certs []probe.CertInfo) []FindingStatus {
	for i := range certs {
		c := &certs[i]
		for _, f := range policy.CertFindings(c, pol) {
			out = append(out, FindingStatus{Finding: string(f), Role: c.Role, Subject: c.SubjectCN, Serial: c.Serial, Path: path, Remedy: f.Remedy()})
		}
	}
	return out
}

func violationStatuses(vs []policy.Violation) []ViolationStatus {
	out := make([]ViolationStatus, len(vs))
	for i, v := range vs {
		out[i] = ViolationStatus{Rule: string(v.Rule), Detail: v.Detail, Remedy: v.Rule.Remedy()}
	}
	return out
}

// humanDuration writes a countdown an operator reads at a glance: "12d 3h",
// or "expired 2d 1h ago".
func humanDuration(d time.Duration) string {
	prefix, suffix := "in ", ""
	if d < 0 {
		d, prefix, suffix = -d, "expired ", " ago"
	}
	days, hours := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if days == 0 {
		return prefix + (d.Truncate(time.Minute)).String() + suffix
	}
	return fmt.Sprintf("%s%dd %dh%s", prefix, days, hours, suffix)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
