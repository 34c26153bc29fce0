package web

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/mcpcert/mcp_cert_exporter/metrics"
)

// MetricSource writes the metrics /metrics serves, merged in name order
// with what g gathers; the collector is one.
type MetricSource interface {
	WriteMetrics(w io.Writer, g prometheus.Gatherer, now time.Time) error
	// GzipMetrics is the same text as one gzip member.
	GzipMetrics(g prometheus.Gatherer, now time.Time) ([]byte, error)
}

// MetricsHandler serves src's metrics merged with what g gathers (the
// exporter's build, Go and process metrics). Concurrent scrapes share one
// rendering, so their number does not multiply the work.
func MetricsHandler(src MetricSource, g prometheus.Gatherer, logger *slog.Logger) http.Handler {
	return &metricsHandler{src: src, g: g, logger: logger}
}

type metricsHandler struct {
	src    MetricSource
	g      prometheus.Gatherer
	logger *slog.Logger
	flight singleflight.Group
	size   atomic.Int64 // of the last plain body, to size the next
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	gz := acceptsGzip(r.Header.Get("Accept-Encoding"))
	encoding := "identity"
	if gz {
		encoding = "gzip"
	}
	v, err, _ := h.flight.Do(encoding, func() (any, error) { return h.body(gz) })
	if err != nil {
		h.logger.Error("error gathering metrics", "err", err)
		http.Error(w, "An error has occurred while serving metrics:\n\n"+err.Error(), http.StatusInternalServerError)
		return
	}
	body := v.([]byte)
	w.Header().Set("Content-Type", metrics.TextFormat)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if gz {
		w.Header().Set("Content-Encoding", "gzip")
	}
	// The scraper going away is not the exporter's problem.
	_, _ = w.Write(body)
}

// body renders one response. The body is built whole, not streamed, so
// that scrapes arriving meanwhile share it, compression included: that is
// why this is not a compressing wrapper such as klauspost/compress's
// gzhttp, which compresses each response on its own. A gzip body is made
// by the source, which keeps what did not change compressed (see
// metrics.GzipCache): 240 MB of text at 100,000 endpoints.
func (h *metricsHandler) body(gz bool) ([]byte, error) {
	now := time.Now()
	if gz {
		return h.src.GzipMetrics(h.g, now)
	}
	var b bytes.Buffer
	b.Grow(int(h.size.Load()))
	err := h.src.WriteMetrics(&b, h.g, now)
	h.size.Store(int64(b.Len()))
	return b.Bytes(), err
}

// acceptsGzip reads an Accept-Encoding header: gzip, unless its q is 0.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err != nil || v > 0
	}
	return false
}
