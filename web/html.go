package web

import (
	"html/template"
	"time"
)

// Collapsed says whether the row folds its certificates behind one line: a
// trust store always does.
func (t *TargetStatus) Collapsed() bool { return t.TrustStore || len(t.Certs) > collapseAt }

// Soonest is the certificate that expires first, nil without any; in a trust
// store, the first of those not yet expired.
func (t *TargetStatus) Soonest() *CertStatus {
	var s *CertStatus
	for i := range t.Certs {
		if t.TrustStore && (t.SoonestExpiry == nil || t.Certs[i].NotAfter.Before(*t.SoonestExpiry)) {
			continue
		}
		if s == nil || t.Certs[i].NotAfter.Before(s.NotAfter) {
			s = &t.Certs[i]
		}
	}
	return s
}

// FirstProblems are the problems a row shows; the rest fold behind one line.
func (t *TargetStatus) FirstProblems() []Problem {
	if len(t.Problems) > collapseAt {
		return t.Problems[:1]
	}
	return t.Problems
}

// MoreProblems are the problems a row folds.
func (t *TargetStatus) MoreProblems() []Problem { return t.Problems[len(t.FirstProblems()):] }

// In is the countdown to at, as the page prints it.
func (r *StatusReport) In(at time.Time) string { return HumanDuration(at.Sub(r.Now)) }

// UrgencyOf classes at for the page's colours.
func (r *StatusReport) UrgencyOf(at time.Time) string { return urgencyOf(at.Sub(r.Now)) }

// Ago is how long before the report at was, to the second.
func (r *StatusReport) Ago(at time.Time) string { return r.Now.Sub(at).Round(time.Second).String() }

// States lists the states for the filter links.
func (r *StatusReport) States() []string { return states }

// SelectedState is the state the filter form shows as chosen.
func (r *StatusReport) SelectedState() string {
	if len(r.Query.States) == 1 {
		return r.Query.States[0]
	}
	return ""
}

// Filtered says whether the page shows a subset.
func (r *StatusReport) Filtered() bool { return len(r.Query.States) > 0 || r.Query.Target != "" }

// statusTemplate is the page: no script, no external asset, readable at
// 20,000 targets because the summary and the most urgent rows come first.
var statusTemplate = template.Must(template.New("status").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Single}}{{(index .Targets 0).Name}}: {{end}}mcp_cert_exporter status</title>
<style>
body{font-family:system-ui,sans-serif;margin:1em 2em;color:#1f2328}
h1{font-size:1.4em;margin:.2em 0}a{color:#0969da}
.summary{display:flex;flex-wrap:wrap;gap:.6em;margin:.8em 0}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.4em .9em;min-width:7em;text-decoration:none;color:inherit}
.card b{display:block;font-size:1.6em}
.card.failing b,.failing .state{color:#cf222e}.card.soon b{color:#cf222e}.card.expiring b,.expiring .state{color:#9a6700}
.card.healthy b,.healthy .state,.up{color:#1a7f37}.pending .state{color:#57606a}
form{margin:.6em 0}table{border-collapse:collapse;width:100%}
th{background:#f6f8fa}td,th{border-bottom:1px solid #d0d7de;padding:5px 8px;text-align:left;vertical-align:top}
tr.failing td:first-child{border-left:4px solid #cf222e}tr.expiring td:first-child{border-left:4px solid #d4a72c}
tr.healthy td:first-child{border-left:4px solid #2da44e}tr.pending td:first-child{border-left:4px solid #8c959f}
.state{font-weight:bold;text-transform:uppercase;font-size:85%}
.reason{color:#cf222e;font-weight:bold}.remedy{color:#57606a;font-size:90%}.small{color:#57606a;font-size:90%}
.u-expired,.u-soon{color:#cf222e;font-weight:bold}.u-expiring{color:#9a6700}
td{overflow-wrap:anywhere}td.problem{min-width:16em;max-width:26em}td.expiry,td.state{white-space:nowrap}
details.posture summary{list-style-position:inside}details.posture>div{margin-left:1em}
summary{cursor:pointer}pre{background:#f6f8fa;padding:1em;overflow:auto}ul{margin:0;padding-left:1.2em}
</style></head>
<body>
<h1>mcp_cert_exporter: status</h1>
<div class="small">Rendered {{.Now.UTC.Format "2006-01-02 15:04:05Z"}} · <a href="?">all targets</a> ·
as <a href="?format=json{{with .Query.Target}}&amp;target={{.}}{{end}}">JSON</a> or <a href="?format=text{{with .Query.Target}}&amp;target={{.}}{{end}}">text</a></div>
{{with .Summary}}<div class="summary" id="summary">
<a class="card failing" href="?state=failing" id="failing"><b>{{.Failing}}</b>failing targets</a>
<a class="card soon" href="?state=expiring" id="within7d"><b>{{.Within7d}}</b>certificates expire in &lt; 7 days{{if .Expired}}; {{.Expired}} expired{{end}}</a>
<a class="card expiring" href="?state=expiring" id="within30d"><b>{{.Within30d}}</b>certificates expire in &lt; 30 days</a>
<a class="card healthy" href="?state=healthy" id="healthy"><b>{{.Healthy}}</b>healthy targets</a>
{{if .Pending}}<a class="card pending" href="?state=pending" id="pending"><b>{{.Pending}}</b>pending first refresh</a>{{end}}
{{if .Violating}}<div class="card" id="violating"><b>{{.Violating}}</b>targets break policy</div>{{end}}
<div class="card" id="refresh"><b>{{with .LastRefresh}}{{$.Ago .}} ago{{else}}never{{end}}</b>last refresh{{with .LastRefresh}} ({{.UTC.Format "15:04:05Z"}}){{end}}</div>
</div>{{end}}
<form method="get">Show <select name="state"><option value="">every state</option>{{range .States}}<option{{if eq . $.SelectedState}} selected{{end}}>{{.}}</option>{{end}}</select>
targets matching <input name="target" value="{{.Query.Target}}" placeholder="name or address"> <button>Filter</button></form>
{{if .Single}}{{with index .Targets 0}}<h2>{{.Name}}</h2>{{if .Report}}<pre id="report">{{.Report}}</pre>{{end}}{{end}}{{end}}
{{if .Filtered}}<p class="small">{{.Matched}} of {{.Summary.Targets}} targets match.</p>{{end}}
<table id="targets"><thead><tr><th>State</th><th>Target</th><th>Problem and remedy</th><th>Soonest expiry</th><th>TLS and MCP</th><th>Posture</th><th>Certificates</th><th>Last refresh</th></tr></thead><tbody>
{{range .Targets}}<tr class="{{.State}}" data-name="{{.Name}}" data-state="{{.State}}"><td class="state">{{.State}}</td>
<td><a href="?target={{.Name}}"><b>{{.Name}}</b></a><br><span class="small">{{.Kind}} {{.Target}}</span></td>
<td class="problem">{{if .Pending}}pending first refresh{{end}}{{range .FirstProblems}}<div class="reason">{{.Title}}{{with .Path}} ({{.}}){{end}}</div><div>{{.Detail}}</div><div class="remedy">{{.Remedy}}</div>{{end}}
{{with .MoreProblems}}<details><summary>{{len .}} more problems</summary>{{range .}}<div class="reason">{{.Title}}{{with .Path}} ({{.}}){{end}}</div><div>{{.Detail}}</div><div class="remedy">{{.Remedy}}</div>{{end}}</details>{{end}}</td>
<td class="expiry">{{$ts := .TrustStore}}{{with .SoonestExpiry}}<span class="u-{{if not $ts}}{{$.UrgencyOf .}}{{end}}">{{$.In .}}</span><br><span class="small">{{.UTC.Format "2006-01-02"}}</span>{{end}}</td>
<td>{{.Version}}{{with .Cipher}}<br><span class="small">{{.}}</span>{{end}}{{with .Verified}}<br>verified: {{.}}{{end}}
{{with .MCP}}<br>MCP {{if .Up}}<b class="up">up</b> {{.Transport}} {{.ProtocolVersion}}<br><span class="small">{{.ServerName}} {{.ServerVersion}}</span>{{else}}<b class="reason">down</b>{{with .Transport}} {{.}}{{end}}{{end}}
{{with .AuthMetadataValid}}<br><span class="small">OAuth discovery well-formed: {{.}}</span>{{end}}{{end}}</td>
<td>{{range .Violations}}<details class="posture"{{if $.Single}} open{{end}}><summary class="reason">{{.Rule}}</summary><div>{{.Detail}}</div><div class="remedy">{{.Remedy}}</div></details>{{end}}
{{range .Findings}}<details class="posture"{{if $.Single}} open{{end}}><summary><b>{{.Finding}}</b> <span class="small">on {{.Role}} {{.Subject}}</span></summary><div class="remedy">{{.Remedy}}</div></details>{{end}}</td>
<td>{{with .Note}}<div class="small note">{{.}}</div>{{end}}{{if .Collapsed}}<details{{if $.Single}} open{{end}} class="group"><summary>{{len .Certs}} certificates{{with .Soonest}}, soonest <span class="u-{{.Urgency}}">{{.Subject}} {{.ExpiresIn}}</span>{{end}}</summary><ul>{{range .Certs}}<li>{{template "cert" .}}</li>{{end}}</ul></details>
{{else}}{{range .Certs}}<div>{{template "cert" .}}</div>{{end}}{{end}}</td>
<td class="small">{{with .LastRun}}{{$.Ago .}} ago{{end}}</td></tr>
{{end}}</tbody></table>
{{if .Folded}}<p id="folded">{{.Folded}} more targets not listed: narrow with the filters above, or raise <code>?limit=</code>.</p>{{end}}
</body></html>
{{define "cert"}}{{.Role}}: {{.Subject}} <span class="small">(issuer {{.Issuer}})</span> <span class="u-{{.Urgency}}">{{.ExpiresIn}}</span>{{with .Path}} <span class="small">[{{.}}]</span>{{end}}{{end}}
`))
