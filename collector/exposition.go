package collector

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Rendering every cached result into const metrics at each scrape, and
// letting a registry check, sort and encode them, costs about 100 µs per
// endpoint: over a second for 10,000. So when a result is stored, the same
// render functions that Collect uses run once, and their output is kept as
// text exposition lines grouped by metric family. A scrape then only copies
// those lines and computes the countdowns.

// exposition is one target's metrics as text exposition lines.
type exposition struct {
	groups []textGroup
	err    error // rendering failed: scrapes fail with it, as a registry's would
}

// textGroup is a target's samples of one family.
type textGroup struct {
	fam        *family
	lines      []byte // samples whose value is fixed
	countdowns []countdownLine
}

// countdownLine is a sample whose value is the time left until deadline.
type countdownLine struct {
	prefix   []byte // the sample up to its value: name, labels and a space
	deadline time.Time
}

// family is a metric family's name and its HELP and TYPE lines, learnt from
// the first metric of its Desc that is rendered.
type family struct {
	name   string
	typ    dto.MetricType
	header []byte
}

var families = struct {
	sync.Mutex
	byDesc map[*prometheus.Desc]*family
	byName map[string]*family
}{byDesc: map[*prometheus.Desc]*family{}, byName: map[string]*family{}}

// familyOf returns the family of m's Desc, asking a registry once per Desc
// for its name, HELP and type, since a Desc does not export them.
func familyOf(m prometheus.Metric) (*family, error) {
	families.Lock()
	defer families.Unlock()
	d := m.Desc()
	if f := families.byDesc[d]; f != nil {
		return f, nil
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(oneMetric{m}); err != nil {
		return nil, fmt.Errorf("describing %s: %w", d, err)
	}
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		return nil, fmt.Errorf("describing %s: %v", d, err)
	}
	mf := mfs[0]
	var text bytes.Buffer
	if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
		return nil, fmt.Errorf("describing %s: %w", d, err)
	}
	f := &family{name: mf.GetName(), typ: mf.GetType(), header: headerOf(text.Bytes())}
	if prev := families.byName[f.name]; prev != nil {
		if !bytes.Equal(prev.header, f.header) {
			return nil, fmt.Errorf("metric %s is described twice, differently: %q and %q", f.name, prev.header, f.header)
		}
		f = prev
	}
	families.byName[f.name], families.byDesc[d] = f, f
	return f, nil
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

// encodeText groups metrics by family and writes each group with expfmt,
// so that escaping and number formats are exactly a registry's.
func encodeText(metrics []prometheus.Metric) (*exposition, error) {
	var (
		order  []*family
		fixed  = map[*family][]*dto.Metric{}
		counts = map[*family][]countdown{}
	)
	for _, m := range metrics {
		f, err := familyOf(m)
		if err != nil {
			return nil, err
		}
		if _, ok := fixed[f]; !ok {
			order = append(order, f)
			fixed[f] = nil
		}
		if cd, ok := m.(countdown); ok {
			counts[f] = append(counts[f], cd)
			continue
		}
		pb := &dto.Metric{}
		if err := m.Write(pb); err != nil {
			return nil, fmt.Errorf("rendering %s: %w", f.name, err)
		}
		fixed[f] = append(fixed[f], pb)
	}
	var buf bytes.Buffer
	e := &exposition{groups: make([]textGroup, 0, len(order))}
	for _, f := range order {
		g := textGroup{fam: f}
		var err error
		if g.lines, err = samplesText(&buf, f, fixed[f]...); err != nil {
			return nil, err
		}
		for _, cd := range counts[f] {
			line, err := countdownText(&buf, f, cd)
			if err != nil {
				return nil, err
			}
			g.countdowns = append(g.countdowns, line)
		}
		e.groups = append(e.groups, g)
	}
	e.compact(buf.Len())
	return e, nil
}

// samplesText appends the sample lines of ms to buf, without the family's
// TYPE line, and returns them.
func samplesText(buf *bytes.Buffer, f *family, ms ...*dto.Metric) ([]byte, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	start := buf.Len()
	mf := &dto.MetricFamily{Name: &f.name, Type: &f.typ, Metric: ms}
	if _, err := expfmt.MetricFamilyToText(buf, mf); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", f.name, err)
	}
	text := buf.Bytes()[start:]
	return text[bytes.IndexByte(text, '\n')+1:], nil
}

func countdownText(buf *bytes.Buffer, f *family, cd countdown) (countdownLine, error) {
	pb := &dto.Metric{}
	if err := cd.Write(pb); err != nil {
		return countdownLine{}, fmt.Errorf("rendering %s: %w", f.name, err)
	}
	line, err := samplesText(buf, f, pb)
	if err != nil {
		return countdownLine{}, err
	}
	return countdownLine{prefix: line[:bytes.LastIndexByte(line, ' ')+1], deadline: cd.deadline}, nil
}

// compact moves the text into one exactly sized array, so that thousands of
// cached results do not each keep a growing buffer's spare capacity.
func (e *exposition) compact(size int) {
	text := make([]byte, 0, size)
	move := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		start := len(text)
		text = append(text, b...)
		return text[start:len(text):len(text)]
	}
	for i := range e.groups {
		g := &e.groups[i]
		g.lines = move(g.lines)
		for j := range g.countdowns {
			g.countdowns[j].prefix = move(g.countdowns[j].prefix)
		}
	}
}

// writeTo appends the group's samples, counting down to now.
func (g *textGroup) writeTo(buf *bytes.Buffer, now time.Time) {
	buf.Write(g.lines)
	var num [32]byte
	for _, cd := range g.countdowns {
		buf.Write(cd.prefix)
		buf.Write(strconv.AppendFloat(num[:0], cd.deadline.Sub(now).Seconds(), 'g', -1, 64))
		buf.WriteByte('\n')
	}
}

// textFamilies buckets the groups of many expositions by family, in name
// order.
func textFamilies(exps []*exposition) ([]*family, map[*family][]*textGroup) {
	byFam := map[*family][]*textGroup{}
	var fams []*family
	for _, e := range exps {
		for i := range e.groups {
			g := &e.groups[i]
			if _, ok := byFam[g.fam]; !ok {
				fams = append(fams, g.fam)
			}
			byFam[g.fam] = append(byFam[g.fam], g)
		}
	}
	slices.SortFunc(fams, func(a, b *family) int { return cmp.Compare(a.name, b.name) })
	return fams, byFam
}
