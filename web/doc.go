// Package web serves the exporter's pages from the collector's cached
// results only, never touching the network or the disk: the /status page
// and the report model behind it, which `check` also prints, as text, for
// its own one-shot probe.
//
// The report model (report.go, detail.go) is built once from collector
// views: one entry per target to count, order and filter them all, rows
// only for the targets a page lists, and the per-target view's detail
// (timing, chain, OCSP, posture scan, files) only for that one target.
// Verdicts come decided from probe and policy. The renderers read the model
// only, never a result: the HTML page (html.go), JSON (status.go) and text
// (text.go). A target's report, what /status?target=NAME shows and `check`
// prints, is written from the model by one function for both, so the page,
// its JSON and the command cannot drift apart.
package web
