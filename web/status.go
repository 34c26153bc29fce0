package web

import (
	"bytes"
	"encoding/json"
	"fmt"
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
func StatusHandler(src Source) http.Handler {
	return &statusHandler{src: src, slots: make(chan struct{}, maxStatusRenders)}
}

type statusHandler struct {
	src    Source
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
	rep := Report(h.src, q, time.Now())
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
