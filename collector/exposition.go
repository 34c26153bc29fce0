package collector

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/metrics"
)

// Rendering every cached result into const metrics at each scrape, and
// letting a registry check, sort and encode them, costs about 100 µs per
// endpoint: over a second for 10,000. So when a result is stored, its
// samples are rendered once and kept as text exposition lines grouped by
// metric family, with headers from the catalog (metrics.Family). A scrape
// then only copies those lines and computes the countdowns.

// exposition is one target's metrics as text exposition lines, in one
// array: cached results are many, so they hold few pointers.
type exposition struct {
	text       []byte
	groups     []textGroup
	countdowns []countdownLine
	err        error // rendering failed: scrapes fail with it, as a registry's would
}

// textGroup is a target's samples of one family: text[start:fixed] holds
// those with a fixed value, countdowns[cd0:cd1] those counting down.
type textGroup struct {
	fam          *metrics.Family
	start, fixed uint32
	cd0, cd1     uint32
}

// countdownLine is a sample whose value is the time left until deadline;
// text[start:end] is the sample up to its value.
type countdownLine struct {
	start, end uint32
	deadline   time.Time
}

// sample is a gauge of a catalogued family as the render functions make
// it: cheap to make, written as text by the cache directly, and a const
// metric for registries.
type sample struct {
	fam    *metrics.Family
	value  float64
	labels []string // in the family's Labels order
	// deadline, when set, makes the sample a countdown: the seconds left
	// until deadline, which cached text recomputes at every scrape.
	deadline time.Time
}

func (s sample) Desc() *prometheus.Desc { return s.fam.Desc() }

func (s sample) Write(out *dto.Metric) error {
	labels := s.labels
	for i, v := range labels {
		if lv := labelValue(v); lv != v {
			if &labels[0] == &s.labels[0] {
				labels = slices.Clone(labels)
			}
			labels[i] = lv
		}
	}
	m, err := prometheus.NewConstMetric(s.fam.Desc(), prometheus.GaugeValue, s.value, labels...)
	if err != nil {
		return err
	}
	return m.Write(out)
}

// samples is what render functions append to.
type samples []sample

// samplePool recycles render buffers: every refresh renders, and only the
// text is kept.
var samplePool = sync.Pool{New: func() any { return new(samples) }}

// renderText runs render and keeps its samples as text.
func renderText(render func(*samples)) *exposition {
	out := samplePool.Get().(*samples)
	render(out)
	e, err := encodeText(*out)
	clear(*out) // drop the label slices the samples point to
	*out = (*out)[:0]
	samplePool.Put(out)
	if err != nil {
		return &exposition{err: err}
	}
	return e
}

// encodeText groups samples by family, in the order the families first
// appear, and writes each group: fixed values first, then countdowns.
func encodeText(ss samples) (*exposition, error) {
	var order []*metrics.Family
	for i := range ss {
		if !slices.Contains(order, ss[i].fam) {
			order = append(order, ss[i].fam)
		}
	}
	e := &exposition{groups: make([]textGroup, 0, len(order)), text: make([]byte, 0, 128*len(ss))}
	for _, f := range order {
		g := textGroup{fam: f, start: uint32(len(e.text)), cd0: uint32(len(e.countdowns))}
		for i := range ss {
			if s := &ss[i]; s.fam == f && s.deadline.IsZero() {
				var err error
				if e.text, err = appendLine(e.text, s); err != nil {
					return nil, err
				}
			}
		}
		g.fixed = uint32(len(e.text))
		for i := range ss {
			if s := &ss[i]; s.fam == f && !s.deadline.IsZero() {
				if err := e.appendCountdown(s); err != nil {
					return nil, err
				}
			}
		}
		g.cd1 = uint32(len(e.countdowns))
		e.groups = append(e.groups, g)
	}
	// An exactly sized copy: thousands of cached results must not each keep
	// a grown buffer's spare room.
	e.text = bytes.Clone(e.text)
	return e, nil
}

// appendCountdown keeps the sample without its value, which each scrape
// computes.
func (e *exposition) appendCountdown(s *sample) error {
	start := len(e.text)
	var err error
	if e.text, err = appendLine(e.text, s); err != nil {
		return err
	}
	line := e.text[start:]
	end := start + bytes.LastIndexByte(line, ' ') + 1
	e.text = e.text[:end]
	e.countdowns = append(e.countdowns, countdownLine{start: uint32(start), end: uint32(end), deadline: s.deadline})
	return nil
}

// appendLine writes a sample as expfmt does: name{label="value",...} value,
// labels sorted by name, values escaped.
func appendLine(b []byte, s *sample) ([]byte, error) {
	f := s.fam
	names, order := f.TextLabels()
	if len(s.labels) != len(order) {
		return b, fmt.Errorf("rendering %s: %d label values for %d labels", f.Name, len(s.labels), len(order))
	}
	b = append(b, f.Name...)
	for i, name := range names {
		v := labelValue(s.labels[order[i]])
		sep := byte(',')
		if i == 0 {
			sep = '{'
		}
		b = append(b, sep)
		b = append(b, name...)
		b = append(b, '=', '"')
		b = appendEscaped(b, v)
		b = append(b, '"')
	}
	if len(names) > 0 {
		b = append(b, '}')
	}
	b = append(b, ' ')
	return appendValue(b, s.value), nil
}

// labelLength is limits.label_length of the config in force.
var labelLength atomic.Int64

func init() { labelLength.Store(int64(config.DefaultLimits.LabelLength)) }

// cutMark ends a label value cut at limits.label_length.
const cutMark = "…(cut)"

// labelValue is the one place every label value passes on its way out, so
// that no text from outside (a file name, a SAN, a server's name) can make
// the exposition invalid and fail the scrape of every target. Bytes that
// are not UTF-8 are written as \xNN, as Go quotes them, and a value longer
// than limits.label_length is cut at a character boundary and ends in
// "…(cut)". Valid values within the limit are kept as they are.
func labelValue(v string) string {
	limit := int(labelLength.Load())
	if len(v) <= limit && utf8.ValidString(v) {
		return v
	}
	var b strings.Builder
	i := 0
	for i < len(v) && b.Len() <= limit {
		r, n := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, `\x%02x`, v[i])
		} else {
			b.WriteString(v[i : i+n])
		}
		i += n
	}
	out := b.String()
	if i == len(v) && len(out) <= limit {
		return out
	}
	cut := limit - len(cutMark)
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:max(cut, 0)] + cutMark
}

// appendEscaped escapes a label value: backslash, double quote and newline.
func appendEscaped(b []byte, v string) []byte {
	if !strings.ContainsAny(v, "\\\"\n") {
		return append(b, v...)
	}
	for i := range len(v) {
		switch c := v[i]; c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendValue writes a value and ends the line, as expfmt writes floats
// (which also writes negative zero as 0).
func appendValue(b []byte, v float64) []byte {
	if v == 0 {
		v = 0
	}
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	return append(b, '\n')
}

// writeTo appends the group's samples, counting down to now.
func (e *exposition) writeTo(buf *bytes.Buffer, g *textGroup, now time.Time) {
	buf.Write(e.text[g.start:g.fixed])
	var num [40]byte
	for _, cd := range e.countdowns[g.cd0:g.cd1] {
		buf.Write(e.text[cd.start:cd.end])
		buf.Write(appendValue(num[:0], cd.deadline.Sub(now).Seconds()))
	}
}

// groupRef is one target's group of one family.
type groupRef struct {
	e *exposition
	g *textGroup
}

// textFamilies buckets the groups of many expositions by family, in name
// order.
func textFamilies(exps []*exposition) ([]*metrics.Family, map[*metrics.Family][]groupRef) {
	byFam := map[*metrics.Family][]groupRef{}
	var fams []*metrics.Family
	for _, e := range exps {
		for i := range e.groups {
			g := &e.groups[i]
			refs, ok := byFam[g.fam]
			if !ok {
				fams = append(fams, g.fam)
				refs = make([]groupRef, 0, len(exps))
			}
			byFam[g.fam] = append(refs, groupRef{e, g})
		}
	}
	slices.SortFunc(fams, func(a, b *metrics.Family) int { return cmp.Compare(a.Name, b.Name) })
	return fams, byFam
}

// joinText is one exposition holding the samples of all parts, which must
// not be changed after.
func joinText(parts ...*exposition) *exposition {
	size := 0
	for _, p := range parts {
		if p.err != nil {
			return p
		}
		size += len(p.text)
	}
	e := &exposition{text: make([]byte, 0, size)}
	for _, p := range parts {
		offset, cds := uint32(len(e.text)), uint32(len(e.countdowns))
		e.text = append(e.text, p.text...)
		for _, g := range p.groups {
			g.start, g.fixed, g.cd0, g.cd1 = g.start+offset, g.fixed+offset, g.cd0+cds, g.cd1+cds
			e.groups = append(e.groups, g)
		}
		for _, cd := range p.countdowns {
			cd.start, cd.end = cd.start+offset, cd.end+offset
			e.countdowns = append(e.countdowns, cd)
		}
	}
	return e
}
