// Package web serves the exporter's pages from the collector's cached
// results only, never touching the network or the disk: the /status page
// and the report model behind it, which `check` also prints, as text, for
// its own one-shot probe.
//
// The report (report.go) is built from collector views: one entry per
// target to count, order and filter them all, full rows only for the
// targets a page lists. Its renderers only read it: the HTML page
// (html.go), JSON and text (status.go, text.go). A target's report, what
// /status?target=NAME shows and `check` prints, is written by one function
// for both, so the page and the command cannot drift apart.
package web
