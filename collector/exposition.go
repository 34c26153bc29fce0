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
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// Rendering every cached result into const metrics at each scrape, and
// letting a registry check, sort and encode them, costs about 100 µs per
// endpoint: over a second for 10,000. So when a result is stored, the same
// render functions that Collect uses run once, and their output is kept as
// text exposition lines grouped by metric family. A scrape then only copies
// those lines and computes the countdowns.

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
	fam          *family
	start, fixed uint32
	cd0, cd1     uint32
}

// countdownLine is a sample whose value is the time left until deadline;
// text[start:end] is the sample up to its value.
type countdownLine struct {
	start, end uint32
	deadline   time.Time
}

// sample is a gauge as the render functions send it: cheap to make, written
// as text by the cache directly, and a const metric for registries.
type sample struct {
	desc   *prometheus.Desc
	value  float64
	labels []string // in the Desc's order
}

func (s sample) Desc() *prometheus.Desc { return s.desc }

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
	m, err := prometheus.NewConstMetric(s.desc, prometheus.GaugeValue, s.value, labels...)
	if err != nil {
		return err
	}
	return m.Write(out)
}

// countdown is a gauge of the seconds left until deadline. Text cached for
// scrapes recomputes its value at every scrape.
type countdown struct {
	sample
	deadline time.Time
}

// family is a metric family's name and its HELP and TYPE lines, learnt from
// the first metric of its Desc that is rendered.
type family struct {
	name   string
	typ    dto.MetricType
	header []byte
	// For samples of legacy-valid names: the label names in text order
	// (sorted), and the index of each one's value in the Desc's order.
	direct bool
	labels []string
	order  []int
}

// families are looked up by Desc pointer, so Descs are meant to be made
// once, as package variables. Should a render function make a new Desc per
// call, the lookup table is dropped when it reaches maxDescs rather than
// grow without end.
var families = struct {
	sync.Mutex
	byDesc sync.Map // *prometheus.Desc -> *family
	descs  int
	byName map[string]*family
}{byName: map[string]*family{}}

const maxDescs = 10000

// familyOf returns the family of m's Desc, asking a registry once per Desc
// for its name, HELP, type and labels, since a Desc does not export them.
func familyOf(m prometheus.Metric) (*family, error) {
	if f, ok := families.byDesc.Load(m.Desc()); ok {
		return f.(*family), nil
	}
	families.Lock()
	defer families.Unlock()
	d := m.Desc()
	if f, ok := families.byDesc.Load(d); ok {
		return f.(*family), nil
	}
	f, err := describe(m)
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", d, err)
	}
	if prev := families.byName[f.name]; prev != nil {
		if !bytes.Equal(prev.header, f.header) || !slices.Equal(prev.labels, f.labels) {
			return nil, fmt.Errorf("metric %s is described twice, differently: %q and %q", f.name, prev.header, f.header)
		}
		f = prev
	}
	families.byName[f.name] = f
	if families.descs++; families.descs > maxDescs {
		families.byDesc.Clear()
		families.descs = 1
	}
	families.byDesc.Store(d, f)
	return f, nil
}

func describe(m prometheus.Metric) (*family, error) {
	mf, err := gatherOne(m)
	if err != nil {
		return nil, err
	}
	var text bytes.Buffer
	if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
		return nil, err
	}
	f := &family{name: mf.GetName(), typ: mf.GetType(), header: headerOf(text.Bytes())}
	if s, ok := asSample(m); ok && f.typ == dto.MetricType_GAUGE && model.LegacyValidation.IsValidMetricName(f.name) {
		f.direct, f.labels, f.order = labelOrder(s)
	}
	return f, nil
}

func gatherOne(m prometheus.Metric) (*dto.MetricFamily, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(oneMetric{m}); err != nil {
		return nil, err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	if len(mfs) != 1 {
		return nil, fmt.Errorf("gathered %d families from one metric", len(mfs))
	}
	return mfs[0], nil
}

// labelOrder finds where each label's value goes by rendering the Desc
// with each value set to its own index. Const labels, or names a text line
// would have to quote, leave the family to expfmt.
func labelOrder(s sample) (direct bool, labels []string, order []int) {
	index := make([]string, len(s.labels))
	for i := range index {
		index[i] = strconv.Itoa(i)
	}
	var pb dto.Metric
	if err := (sample{desc: s.desc, labels: index}).Write(&pb); err != nil || len(pb.Label) != len(index) {
		return false, nil, nil
	}
	for _, lp := range pb.Label {
		i, err := strconv.Atoi(lp.GetValue())
		if err != nil || !model.LegacyValidation.IsValidLabelName(lp.GetName()) {
			return false, nil, nil
		}
		labels, order = append(labels, lp.GetName()), append(order, i)
	}
	return true, labels, order
}

func asSample(m prometheus.Metric) (sample, bool) {
	switch s := m.(type) {
	case sample:
		return s, true
	case countdown:
		return s.sample, true
	}
	return sample{}, false
}

// headerOf is the comment lines that open a family's text.
func headerOf(text []byte) []byte {
	end := 0
	for end < len(text) && text[end] == '#' {
		end += bytes.IndexByte(text[end:], '\n') + 1
	}
	return bytes.Clone(text[:end])
}

// oneMetric collects a single metric, unchecked.
type oneMetric struct{ m prometheus.Metric }

func (o oneMetric) Describe(chan<- *prometheus.Desc)    {}
func (o oneMetric) Collect(ch chan<- prometheus.Metric) { ch <- o.m }

// renderText runs render and keeps what it sends as text.
func renderText(render func(chan<- prometheus.Metric)) *exposition {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		defer close(ch)
		render(ch)
	}()
	var metrics []prometheus.Metric
	for m := range ch {
		metrics = append(metrics, m)
	}
	e, err := encodeText(metrics)
	if err != nil {
		return &exposition{err: err}
	}
	return e
}

// encodeText groups metrics by family, in the order the families first
// appear, and writes each group: fixed values first, then countdowns.
func encodeText(metrics []prometheus.Metric) (*exposition, error) {
	fams := make([]*family, len(metrics))
	var order []*family
	for i, m := range metrics {
		f, err := familyOf(m)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(order, f) {
			order = append(order, f)
		}
		fams[i] = f
	}
	e := &exposition{groups: make([]textGroup, 0, len(order)), text: make([]byte, 0, 128*len(metrics))}
	for _, f := range order {
		g := textGroup{fam: f, start: uint32(len(e.text)), cd0: uint32(len(e.countdowns))}
		for i, m := range metrics {
			if _, ok := m.(countdown); !ok && fams[i] == f {
				if err := e.appendSample(f, m); err != nil {
					return nil, err
				}
			}
		}
		g.fixed = uint32(len(e.text))
		for i, m := range metrics {
			if cd, ok := m.(countdown); ok && fams[i] == f {
				if err := e.appendCountdown(f, cd); err != nil {
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

func (e *exposition) appendSample(f *family, m prometheus.Metric) error {
	if s, ok := asSample(m); ok && f.direct {
		var err error
		e.text, err = appendLine(e.text, f, s)
		return err
	}
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		return fmt.Errorf("rendering %s: %w", f.name, err)
	}
	var buf bytes.Buffer
	mf := &dto.MetricFamily{Name: &f.name, Type: &f.typ, Metric: []*dto.Metric{&pb}}
	if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
		return fmt.Errorf("rendering %s: %w", f.name, err)
	}
	// Drop the TYPE line that opens the one-sample family.
	text := buf.Bytes()
	e.text = append(e.text, text[bytes.IndexByte(text, '\n')+1:]...)
	return nil
}

// appendCountdown keeps the sample without its value, which each scrape
// computes.
func (e *exposition) appendCountdown(f *family, cd countdown) error {
	start := len(e.text)
	if err := e.appendSample(f, cd); err != nil {
		return err
	}
	line := e.text[start:]
	end := start + bytes.LastIndexByte(line, ' ') + 1
	e.text = e.text[:end]
	e.countdowns = append(e.countdowns, countdownLine{start: uint32(start), end: uint32(end), deadline: cd.deadline})
	return nil
}

// appendLine writes a sample as expfmt does: name{label="value",...} value,
// labels sorted by name, values escaped.
func appendLine(b []byte, f *family, s sample) ([]byte, error) {
	if len(s.labels) != len(f.order) {
		return b, fmt.Errorf("rendering %s: %d label values for %d labels", f.name, len(s.labels), len(f.order))
	}
	b = append(b, f.name...)
	for i, name := range f.labels {
		v := labelValue(s.labels[f.order[i]])
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
	if len(f.labels) > 0 {
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
func textFamilies(exps []*exposition) ([]*family, map[*family][]groupRef) {
	byFam := map[*family][]groupRef{}
	var fams []*family
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
	slices.SortFunc(fams, func(a, b *family) int { return cmp.Compare(a.name, b.name) })
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
