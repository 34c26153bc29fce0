package collector

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sync/singleflight"

	"github.com/mcpcert/mcp_cert_exporter/metrics"
)

// textFormat is the text exposition format 0.0.4, which every Prometheus
// version parses whatever it asked for.
var textFormat = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// chunkSize is how much text is built before it is handed to the compressor.
const chunkSize = 64 << 10

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
	w := &chunker{}
	if !gz {
		w.Grow(int(h.size.Load()))
		err = writeMetrics(w, exps, mfs, now)
		h.size.Store(int64(w.Len()))
		return w.Bytes(), err
	}
	// BestSpeed: this text repeats itself so much that it still shrinks over
	// 30 times, for several times less CPU than the default level.
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	w.out = zw
	if err := writeMetrics(w, exps, mfs, now); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing metrics: %w", err)
	}
	return out.Bytes(), nil
}

// chunker builds text in a small buffer and hands it on in chunks; with no
// out, the buffer keeps everything.
type chunker struct {
	bytes.Buffer
	out io.Writer
}

func (c *chunker) flush(final bool) error {
	if c.out == nil || (!final && c.Len() < chunkSize) {
		return nil
	}
	_, err := c.out.Write(c.Bytes())
	c.Reset()
	return err
}

// writeMetrics writes the cached families and the gathered ones, merged in
// name order, each family's header once.
func writeMetrics(w *chunker, exps []*exposition, mfs []*dto.MetricFamily, now time.Time) error {
	fams, groups := textFamilies(exps)
	for len(fams) > 0 || len(mfs) > 0 {
		var err error
		switch {
		case len(mfs) == 0 || (len(fams) > 0 && fams[0].Name < mfs[0].GetName()):
			err = writeFamily(w, fams[0], groups[fams[0]], now)
			fams = fams[1:]
		case len(fams) > 0 && fams[0].Name == mfs[0].GetName():
			if err = writeFamily(w, fams[0], groups[fams[0]], now); err == nil {
				err = writeGathered(w, mfs[0], false)
			}
			fams, mfs = fams[1:], mfs[1:]
		default:
			err = writeGathered(w, mfs[0], true)
			mfs = mfs[1:]
		}
		if err != nil {
			return err
		}
	}
	return w.flush(true)
}

func writeFamily(w *chunker, f *metrics.Family, groups []groupRef, now time.Time) error {
	w.Write(f.Header())
	for _, r := range groups {
		r.e.writeTo(&w.Buffer, r.g, now)
		if err := w.flush(false); err != nil {
			return err
		}
	}
	return nil
}

// writeGathered encodes a gathered family, without its header when the
// cached text already opened the family.
func writeGathered(w *chunker, mf *dto.MetricFamily, header bool) error {
	if header {
		_, err := expfmt.MetricFamilyToText(&w.Buffer, mf)
		return err
	}
	start := w.Len()
	bare := &dto.MetricFamily{Name: mf.Name, Type: mf.Type, Metric: mf.Metric}
	if _, err := expfmt.MetricFamilyToText(&w.Buffer, bare); err != nil {
		return err
	}
	// Drop the TYPE line that opened the bare family.
	text := w.Bytes()[start:]
	typeLine := bytes.IndexByte(text, '\n') + 1
	copy(text, text[typeLine:])
	w.Truncate(w.Len() - typeLine)
	return nil
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
