package collector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"
)

// maxStatusRenders bounds how many different status pages render at once;
// identical requests share one rendering anyway. Each rendering holds its
// page's body and rows, so this bounds the page's memory whatever the
// number of concurrent requests.
const maxStatusRenders = 2

// StatusHandler serves the status page: HTML, or JSON (?format=json) or
// text (?format=text), filtered by ?state= and ?target=. Concurrent requests
// for the same page share one rendering, as /metrics scrapes do; nothing is
// kept afterwards, so memory returns to where it was.
func (c *Collector) StatusHandler() http.Handler {
	return &statusHandler{c: c, slots: make(chan struct{}, maxStatusRenders)}
}

type statusHandler struct {
	c      *Collector
	flight singleflight.Group
	slots  chan struct{}
}

type statusPage struct {
	contentType string
	body        []byte
}

func (h *statusHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q, err := parseStatusQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	v, err, _ := h.flight.Do(q.key(), func() (any, error) {
		h.slots <- struct{}{}
		defer func() { <-h.slots }()
		return h.render(q)
	})
	if err != nil {
		http.Error(w, "rendering the status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	page := v.(*statusPage)
	w.Header().Set("Content-Type", page.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(page.body)))
	_, _ = w.Write(page.body) // the reader going away is not the exporter's problem
}

func (h *statusHandler) render(q StatusQuery) (*statusPage, error) {
	rep := h.c.StatusReport(q, time.Now())
	var b bytes.Buffer
	var err error
	page := &statusPage{}
	switch q.Format {
	case "json":
		page.contentType = "application/json"
		err = writeStatusJSON(&b, rep)
	case "text":
		page.contentType = "text/plain; charset=utf-8"
		writeStatusText(&b, rep)
	default:
		page.contentType = "text/html; charset=utf-8"
		err = statusTemplate.Execute(&b, rep)
	}
	page.body = b.Bytes()
	return page, err
}

// parseStatusQuery reads the filters; a value the page does not know is an
// error rather than an empty page that looks like good news.
func parseStatusQuery(v url.Values) (StatusQuery, error) {
	q := StatusQuery{Target: v.Get("target"), Format: v.Get("format"), Limit: -1}
	switch q.Format {
	case "", "html":
		q.Format, q.Limit = "html", DefaultStatusLimit
	case "json", "text":
	default:
		return q, fmt.Errorf("unknown format %q: use html, json or text", q.Format)
	}
	for _, list := range v["state"] {
		for s := range strings.SplitSeq(list, ",") {
			if s == "" {
				continue
			}
			if !slices.Contains(states, s) {
				return q, fmt.Errorf("unknown state %q: use %s", s, strings.Join(states, ", "))
			}
			q.States = append(q.States, s)
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return q, fmt.Errorf("limit %q is not a count of targets", l)
		}
		q.Limit = n
	}
	slices.Sort(q.States)
	q.States = slices.Compact(q.States)
	return q, nil
}

// key identifies a page for sharing its rendering.
func (q StatusQuery) key() string {
	return strings.Join([]string{q.Format, strings.Join(q.States, ","), strconv.Itoa(q.Limit), q.Target}, "\x00")
}

// writeStatusJSON writes the listed targets as a JSON array, one at a time.
func writeStatusJSON(w *bytes.Buffer, rep *StatusReport) error {
	w.WriteString("[")
	for i := range rep.Targets {
		if i > 0 {
			w.WriteString(",")
		}
		w.WriteString("\n  ")
		b, err := json.MarshalIndent(&rep.Targets[i], "  ", "  ")
		if err != nil {
			return err
		}
		w.Write(b)
	}
	w.WriteString("\n]\n")
	return nil
}

// writeStatusText writes the summary and one line per target, or, for one
// target, what `check` prints.
func writeStatusText(w io.Writer, rep *StatusReport) {
	s := &rep.Summary
	fmt.Fprintf(w, "Targets: %d failing, %d expiring, %d healthy, %d pending; certificates: %d expired, %d within 7d, %d within 30d; %d targets violate policy\n",
		s.Failing, s.Expiring, s.Healthy, s.Pending, s.Expired, s.Within7d, s.Within30d, s.Violating)
	if s.LastRefresh != nil {
		fmt.Fprintf(w, "Last refresh: %s\n", s.LastRefresh.UTC().Format(time.RFC3339))
	}
	if rep.Single && rep.Targets[0].Report != "" {
		fmt.Fprintf(w, "\n%s", rep.Targets[0].Report)
		return
	}
	fmt.Fprintln(w)
	for _, t := range rep.Targets {
		fmt.Fprintf(w, "%-8s %s (%s)", t.State, t.Name, t.Target)
		if t.SoonestExpiry != nil {
			fmt.Fprintf(w, " soonest expiry %s", HumanDuration(t.SoonestExpiry.Sub(rep.Now)))
		}
		if t.Note != "" {
			fmt.Fprintf(w, "; %s", t.Note)
		}
		fmt.Fprintln(w)
		for _, p := range t.Problems {
			fmt.Fprintf(w, "         %s%s: %s\n         remedy: %s\n", p.Title(), p.where(), p.Detail, p.Remedy)
		}
	}
	if n := rep.Folded(); n > 0 {
		fmt.Fprintf(w, "... and %d more; narrow with ?state= or ?target=, or raise ?limit=\n", n)
	}
}

// Title is the problem's reason, MCP ones marked as such.
func (p Problem) Title() string {
	if p.Layer == "mcp" {
		return "MCP " + p.Reason
	}
	return p.Reason
}

func (p Problem) where() string {
	if p.Path == "" {
		return ""
	}
	return " (" + p.Path + ")"
}
