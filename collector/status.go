package collector

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/probe"
)

// TargetStatus is one target as the status page shows it.
type TargetStatus struct {
	Name     string       `json:"name"`
	Kind     string       `json:"kind"` // endpoint or file
	Target   string       `json:"target"`
	LastRun  *time.Time   `json:"last_run,omitempty"`
	Pending  bool         `json:"pending"`
	Problems []Problem    `json:"problems"`
	Version  string       `json:"tls_version,omitempty"`
	Cipher   string       `json:"cipher,omitempty"`
	Verified *bool        `json:"verified,omitempty"`
	Certs    []CertStatus `json:"certificates"`
	MCP      *MCPStatus   `json:"mcp,omitempty"`
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
}

// Status snapshots every target.
func (c *Collector) Status() []TargetStatus {
	now := time.Now()
	c.mu.RLock()
	endpoints, files := c.endpoints, c.files
	c.mu.RUnlock()
	out := make([]TargetStatus, 0, len(endpoints)+len(files))
	for _, j := range endpoints {
		ep := j.target.Endpoint
		s := TargetStatus{Name: ep.Name, Kind: "endpoint", Target: firstNonEmpty(ep.URL, ep.Address), Pending: true}
		if r := j.last.Load(); r != nil {
			fillEndpointStatus(&s, r, now)
		}
		out = append(out, s)
	}
	for _, j := range files {
		s := TargetStatus{Name: j.group.Name, Kind: "file", Target: strings.Join(j.group.Paths, ", "), Pending: true}
		if r := j.last.Load(); r != nil {
			fillFileStatus(&s, r, now)
		}
		out = append(out, s)
	}
	return out
}

func fillEndpointStatus(s *TargetStatus, r *probe.TLSResult, now time.Time) {
	s.Pending, s.LastRun = false, &r.Time
	if r.Reason != probe.ReasonNone {
		s.Problems = append(s.Problems, problemOf("", r.Reason, r.Detail))
	}
	if r.Version != 0 {
		s.Version, s.Cipher = tls.VersionName(r.Version), tls.CipherSuiteName(r.CipherSuite)
	}
	if r.Success || len(r.Certificates) > 0 {
		v := r.Verified
		s.Verified = &v
	}
	s.Certs = certStatuses(s.Certs, "", r.Certificates, now)
	fillMCPStatus(s, r.MCP)
}

func fillFileStatus(s *TargetStatus, r *probe.FileResult, now time.Time) {
	s.Pending, s.LastRun = false, &r.Time
	for _, f := range r.Files {
		if f.Reason != probe.ReasonNone {
			s.Problems = append(s.Problems, problemOf(f.Path, f.Reason, f.Detail))
		}
		s.Certs = certStatuses(s.Certs, f.Path, f.Certificates, now)
	}
}

func problemOf(path string, r probe.Reason, detail string) Problem {
	return Problem{Path: path, Reason: string(r), Detail: detail, Remedy: r.Remedy()}
}

func certStatuses(out []CertStatus, path string, certs []probe.CertInfo, now time.Time) []CertStatus {
	for _, c := range certs {
		out = append(out, CertStatus{
			Path: path, Role: c.Role, Subject: c.SubjectCN, Issuer: c.IssuerCN,
			NotAfter: c.NotAfter, ExpiresIn: HumanDuration(c.NotAfter.Sub(now)),
		})
	}
	return out
}

// HumanDuration writes a countdown an operator reads at a glance: "12d 3h",
// or "expired 2d 1h ago".
func HumanDuration(d time.Duration) string {
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

// StatusHandler serves the status page as HTML, or as JSON with ?format=json.
func (c *Collector) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := c.Status()
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(st)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = statusPage.Execute(w, st)
	})
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{"deref": func(b *bool) bool { return *b }}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>mcp_cert_exporter status</title>
<style>body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:bold}.remedy{color:#555;font-size:90%}</style></head>
<body><h1>mcp_cert_exporter: targets</h1><p><a href="?format=json">JSON</a></p>
<table><tr><th>Target</th><th>Kind</th><th>Status</th><th>TLS</th><th>MCP</th><th>Certificates</th><th>Last refresh</th></tr>
{{range .}}<tr><td><b>{{.Name}}</b><br>{{.Target}}</td><td>{{.Kind}}</td><td>
{{if .Pending}}pending first refresh{{else if .Problems}}{{range .Problems}}<div class="bad">{{if .Layer}}MCP {{end}}{{.Reason}}{{if .Path}} ({{.Path}}){{end}}</div>
<div>{{.Detail}}</div><div class="remedy">{{.Remedy}}</div>{{end}}{{else}}<span class="ok">OK</span>{{end}}</td>
<td>{{.Version}}<br>{{.Cipher}}{{if .Verified}}<br>verified: {{.Verified}}{{end}}</td>
<td>{{with .MCP}}{{if .Up}}<span class="ok">up</span> {{.Transport}} {{.ProtocolVersion}}<br>{{.ServerName}} {{.ServerVersion}}{{else}}<span class="bad">down</span>{{end}}
{{if .Connections}}<br>{{.Duration}}, {{.Connections}} TLS connection(s){{end}}{{with .Detail}}<div>{{.}}</div>{{end}}{{if .AuthMetadataValid}}<br>OAuth discovery well-formed: {{deref .AuthMetadataValid}}<div class="remedy">{{.AuthDetail}}</div>{{end}}{{end}}</td>
<td>{{range .Certs}}<div>{{.Role}}: {{.Subject}} (issuer {{.Issuer}}) {{.ExpiresIn}}{{if .Path}} [{{.Path}}]{{end}}</div>{{end}}</td>
<td>{{if .LastRun}}{{.LastRun.Format "2006-01-02 15:04:05Z07:00"}}{{end}}</td></tr>
{{end}}</table></body></html>
`))
