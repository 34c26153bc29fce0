package collector

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sync/singleflight"

	"github.com/mcpcert/mcp_cert_exporter/metrics"
)

// textFormat is the text exposition format 0.0.4, which every Prometheus
// version parses whatever it asked for.
var textFormat = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// MetricsHandler serves the metrics: the targets' cached text merged, in
// name order, with what g gathers (build info) and the exporter's own
// metrics. Concurrent scrapes share one rendering, so their number does not
// multiply the work.
func (c *Collector) MetricsHandler(g prometheus.Gatherer, logger *slog.Logger) http.Handler {
	return &metricsHandler{c: c, g: prometheus.Gatherers{g, c.live}, logger: logger}
}

type metricsHandler struct {
	c      *Collector
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
	w.Header().Set("Content-Type", textFormat)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if gz {
		w.Header().Set("Content-Encoding", "gzip")
	}
	// The scraper going away is not the exporter's problem.
	_, _ = w.Write(body)
}

// body renders one response.
func (h *metricsHandler) body(gz bool) ([]byte, error) {
	now := time.Now()
	exps, err := h.c.expositions()
	if err != nil {
		return nil, err
	}
	mfs, err := h.g.Gather()
	if err != nil {
		return nil, err
	}
	if !gz {
		var b bytes.Buffer
		b.Grow(int(h.size.Load()))
		err = metrics.Write(&b, exps, mfs, now)
		h.size.Store(int64(b.Len()))
		return b.Bytes(), err
	}
	// BestSpeed: this text repeats itself so much that it still shrinks over
	// 30 times, for several times less CPU than the default level.
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if err := metrics.Write(zw, exps, mfs, now); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing metrics: %w", err)
	}
	return out.Bytes(), nil
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
