package metrics

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"math"
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

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// text is what the text format needs of a family, computed once when the
// family is defined: its HELP and TYPE lines, and its label names sorted as
// expfmt writes them with where each one's value is in Labels.
type text struct {
	header []byte
	sorted []string
	order  []int
}

func textOf(name, help string, typ Type, labels []string) text {
	var b strings.Builder
	b.WriteString("# HELP " + name + " ")
	escapeHelp(&b, help)
	b.WriteString("\n# TYPE " + name + " " + string(typ) + "\n")
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	sorted := make([]string, len(labels))
	for i, j := range order {
		sorted[i] = labels[j]
	}
	return text{header: []byte(b.String()), sorted: sorted, order: order}
}

// escapeHelp escapes HELP text as the text format requires: backslash and
// newline.
func escapeHelp(b *strings.Builder, help string) {
	for _, r := range help {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
}

// Header is the family's HELP and TYPE lines. The caller must not change it.
func (f *Family) Header() []byte { return f.text.header }

// TextLabels are the label names in the order the text format writes them
// (sorted), and for each the index of its value in Labels order. The caller
// must not change them.
func (f *Family) TextLabels() (names []string, order []int) { return f.text.sorted, f.text.order }

// Rendering every cached result into const metrics at each scrape, and
// letting a registry check, sort and encode them, costs about 100 µs per
// endpoint: over a second for 10,000. So when a result is stored, its
// samples are rendered once (Render) and kept as text exposition lines
// grouped by family, with headers from the catalog. A scrape then only
// copies those lines and computes the countdowns (Write).

// Exposition is one target's samples, kept compact: cached results are
// many (100,000 endpoints), so the text holds few pointers and no repeats.
// Each sample is one line record in text (see lineRef): the family's name
// is left out, and a label block the exposition already holds, such as a
// certificate's in its expiry, not_after and not_before lines or the bare
// {target="…"} of most families, is a 5-byte reference to the first.
// It must not be changed once made.
type Exposition struct {
	text   []byte
	groups []textGroup
	err    error  // rendering failed: scrapes fail with it, as a registry's would
	cuts   uint32 // label values cut at limits.label_length while rendering it
}

// Cuts is how many label values were cut at limits.label_length while
// rendering e.
func (e *Exposition) Cuts() uint32 { return e.cuts }

// CountCuts counts n cut label values again, for text reused rather than
// rendered anew: mcp_cert_exporter_label_values_cut_total keeps rising
// while some target's labels are cut, whether its text was made again or not.
func CountCuts(n uint32) { labelCuts.Add(uint64(n)) }

// Len is the size of e's text.
func (e *Exposition) Len() int { return len(e.text) }

// Since is the exposition of e's samples written from byte from of its text
// on, sharing e's text: for a Join, the parts after those from bytes (from
// is the Len of the parts before). Join copies what it is given, so the
// view does not keep e alive in what Join makes of it.
func (e *Exposition) Since(from int) *Exposition {
	n := 0
	for _, g := range e.groups {
		if int(g.start) >= from {
			n++
		}
	}
	out := &Exposition{text: e.text[from:], err: e.err, groups: make([]textGroup, 0, n)}
	for _, g := range e.groups {
		if int(g.start) >= from {
			g.start, g.end = g.start-uint32(from), g.end-uint32(from)
			out.groups = append(out.groups, g)
		}
	}
	return out
}

// LabelLength is limits.label_length in force: text rendered under another
// one is not the text rendering would make now.
func LabelLength() int { return int(labelLength.Load()) }

// Err is why rendering failed, nil if it did not.
func (e *Exposition) Err() error { return e.err }

// Failed is an exposition that fails every scrape that writes it with err.
func Failed(err error) *Exposition { return &Exposition{err: err} }

// textGroup is a target's samples of one family: the line records in
// text[start:end], fixed values first, then countdowns. The family is its
// index in the catalog: 12 bytes a group, not 24, times some 20 groups a
// target.
type textGroup struct {
	start, end uint32
	family     uint16
}

func (g *textGroup) fam() *Family { return all[g.family] }

// A line record is a tag byte, the head (what follows the family's name up
// to the value: a histogram's suffix and the label block) and the tail.
// The head is a uvarint length and the bytes, or with lineRef, 3 bytes of
// distance back from the reference to an earlier head and 2 of its length:
// distances make records movable, so Join copies them as they are. The
// tail is " value\n", or with lineCountdown, the deadline as 8 bytes of Unix
// seconds and 4 of nanoseconds, the value being computed at each scrape.
const (
	lineRef       = 1 << 0
	lineCountdown = 1 << 1

	refLen     = 5
	maxRefDist = 1<<24 - 1
	maxRefHead = 1<<16 - 1
	minRefHead = refLen + 2 // shorter heads are cheaper written out
)

// Sample is a gauge of a catalogued family as the render functions make
// it: cheap to make, written as text by Render directly, and a const
// metric for registries.
type Sample struct {
	Family *Family
	Value  float64
	Labels []string // in the family's Labels order
	// Deadline, when set, makes the sample a countdown: the seconds left
	// until Deadline, which Write recomputes at every scrape.
	Deadline time.Time

	suffix string // of a histogram's series: _bucket, _sum or _count
	le     string // a bucket's upper bound, as the text format writes it
}

// Desc is the family's, for prometheus.Metric.
func (s Sample) Desc() *prometheus.Desc { return s.Family.Desc() }

// Write makes the sample a prometheus.Metric, its label values made valid
// as the text path makes them.
func (s Sample) Write(out *dto.Metric) error {
	labels := s.Labels
	for i, v := range labels {
		if lv := labelValue(v); lv != v {
			if &labels[0] == &s.Labels[0] {
				labels = slices.Clone(labels)
			}
			labels[i] = lv
		}
	}
	m, err := prometheus.NewConstMetric(s.Family.Desc(), prometheus.GaugeValue, s.Value, labels...)
	if err != nil {
		return err
	}
	return m.Write(out)
}

// Samples is what render functions append to.
type Samples []Sample

// Gauge appends a sample. The labels slice is kept, so it must not change
// after the call.
func (s *Samples) Gauge(f *Family, v float64, labels ...string) {
	*s = append(*s, Sample{Family: f, Value: v, Labels: labels})
}

// Histogram appends a histogram as the text format writes one: a _bucket
// sample per upper bound, counting every observation up to it, then +Inf,
// _sum and _count. counts holds each bucket's own observations, one more
// than upper for those above every bound.
func (s *Samples) Histogram(f *Family, upper []float64, counts []uint64, sum float64, labels ...string) {
	var total uint64
	for i, c := range counts {
		total += c
		bound := math.Inf(1)
		if i < len(upper) {
			bound = upper[i]
		}
		le := string(appendFloat(nil, bound))
		*s = append(*s, Sample{Family: f, Value: float64(total), Labels: labels, suffix: "_bucket", le: le})
	}
	*s = append(*s, Sample{Family: f, Value: sum, Labels: labels, suffix: "_sum"},
		Sample{Family: f, Value: float64(total), Labels: labels, suffix: "_count"})
}

// encoder is what Render needs besides the samples, recycled: every
// refresh renders, and only the text is kept.
type encoder struct {
	samples Samples
	text    []byte // built here, then copied to its exact size
	head    []byte
	heads   map[uint64]uint32 // hash of a head -> where it was written out
}

var (
	encoderPool = sync.Pool{New: func() any { return &encoder{heads: map[uint64]uint32{}} }}
	headSeed    = maphash.MakeSeed()
)

// Render runs render and keeps its samples as text.
func Render(render func(*Samples)) *Exposition {
	enc := encoderPool.Get().(*encoder)
	render(&enc.samples)
	e, err := enc.encode()
	clear(enc.samples) // drop the label slices the samples point to
	enc.samples = enc.samples[:0]
	clear(enc.heads)
	encoderPool.Put(enc)
	if err != nil {
		return Failed(err)
	}
	return e
}

// empty is the exposition of no samples, shared: most targets render no
// posture text at every refresh, and expositions are not changed once made.
var empty = &Exposition{}

// encode groups the samples by family, in name order, and writes each
// group: fixed values first, then countdowns.
func (enc *encoder) encode() (*Exposition, error) {
	ss := enc.samples
	if len(ss) == 0 {
		return empty, nil
	}
	var order []*Family
	for i := range ss {
		if !slices.Contains(order, ss[i].Family) {
			order = append(order, ss[i].Family)
		}
	}
	slices.SortFunc(order, byName) // so that Write merges expositions
	e := &Exposition{groups: make([]textGroup, 0, len(order)), text: enc.text[:0]}
	for _, f := range order {
		g := textGroup{family: f.index, start: uint32(len(e.text))}
		for _, countdowns := range []bool{false, true} {
			for i := range ss {
				if s := &ss[i]; s.Family == f && s.Deadline.IsZero() != countdowns {
					if err := enc.appendRecord(e, s); err != nil {
						return nil, err
					}
				}
			}
		}
		g.end = uint32(len(e.text))
		e.groups = append(e.groups, g)
	}
	// An exactly sized copy: thousands of cached results must not each keep
	// a grown buffer's spare room.
	enc.text, e.text = e.text, bytes.Clone(e.text)
	return e, nil
}

// appendRecord appends a sample's line record (see lineRef).
func (enc *encoder) appendRecord(e *Exposition, s *Sample) error {
	var err error
	if enc.head, err = appendHead(enc.head[:0], s, &e.cuts); err != nil {
		return err
	}
	tagAt := len(e.text)
	e.text = append(e.text, 0)
	var tag byte
	h := maphash.Bytes(headSeed, enc.head)
	if dist, ok := enc.earlier(e.text, h); ok {
		tag |= lineRef
		e.text = append(e.text, byte(dist), byte(dist>>8), byte(dist>>16))
		e.text = binary.LittleEndian.AppendUint16(e.text, uint16(len(enc.head)))
	} else {
		e.text = binary.AppendUvarint(e.text, uint64(len(enc.head)))
		if _, seen := enc.heads[h]; !seen {
			enc.heads[h] = uint32(len(e.text))
		}
		e.text = append(e.text, enc.head...)
	}
	if s.Deadline.IsZero() {
		e.text = appendValue(append(e.text, ' '), s.Value)
	} else {
		tag |= lineCountdown
		e.text = binary.LittleEndian.AppendUint64(e.text, uint64(s.Deadline.Unix()))
		e.text = binary.LittleEndian.AppendUint32(e.text, uint32(s.Deadline.Nanosecond()))
	}
	e.text[tagAt] = tag
	return nil
}

// earlier finds enc.head, whose hash is h, written out earlier in text and
// worth a reference from the end of text: the distance back to it.
func (enc *encoder) earlier(text []byte, h uint64) (dist int, ok bool) {
	at, seen := enc.heads[h]
	n, dist := len(enc.head), len(text)-int(at)
	ok = seen && n >= minRefHead && n <= maxRefHead && dist <= maxRefDist &&
		int(at)+n <= len(text) && bytes.Equal(text[at:int(at)+n], enc.head)
	return dist, ok
}

// appendHead writes what follows the name up to the value: a histogram
// series' suffix and the label block.
func appendHead(b []byte, s *Sample, cuts *uint32) ([]byte, error) {
	f := s.Family
	names, order := f.TextLabels()
	if len(s.Labels) != len(order) {
		return b, fmt.Errorf("rendering %s: %d label values for %d labels", f.Name, len(s.Labels), len(order))
	}
	b = append(b, s.suffix...)
	for i, name := range names {
		v, cut := labelValueCut(s.Labels[order[i]])
		if cut {
			*cuts++
		}
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
	if s.le != "" {
		if len(names) > 0 {
			b = append(b, ',')
		} else {
			b = append(b, '{')
		}
		b = append(b, `le="`...)
		b = append(b, s.le...)
		b = append(b, '"')
	}
	if len(names) > 0 || s.le != "" {
		b = append(b, '}')
	}
	return b, nil
}

// labelLength is limits.label_length of the config in force.
var labelLength atomic.Int64

func init() { labelLength.Store(int64(config.DefaultLimits.LabelLength)) }

// SetLabelLength sets limits.label_length for every value rendered from now
// on; n <= 0 keeps the current one.
func SetLabelLength(n int) {
	if n > 0 {
		labelLength.Store(int64(n))
	}
}

// cutMark ends a label value cut at limits.label_length.
const cutMark = "…(cut)"

// labelCuts counts the values labelValue cut, so that reaching the limit is
// reported, not only seen in the values.
var labelCuts atomic.Uint64

// LabelCuts is how many label values have been cut at limits.label_length.
func LabelCuts() uint64 { return labelCuts.Load() }

// labelValue is the one place every label value passes on its way out, so
// that no text from outside (a file name, a SAN, a server's name) can make
// the exposition invalid and fail the scrape of every target. Bytes that
// are not UTF-8 are written as \xNN, as Go quotes them, and a value longer
// than limits.label_length is cut at a character boundary and ends in
// "…(cut)". Valid values within the limit are kept as they are.
func labelValue(v string) string {
	v, _ = labelValueCut(v)
	return v
}

// labelValueCut is labelValue, and whether it cut v.
func labelValueCut(v string) (string, bool) {
	limit := int(labelLength.Load())
	if len(v) <= limit && utf8.ValidString(v) {
		return v, false
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
		return out, false
	}
	labelCuts.Add(1)
	cut := limit - len(cutMark)
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:max(cut, 0)] + cutMark, true
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
	return append(appendFloat(b, v), '\n')
}

func appendFloat(b []byte, v float64) []byte {
	if v == 0 {
		v = 0
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// writeTo writes the group's samples as text, counting down to now: each
// line is built in the buffer's spare room and written at once. It reports
// whether the group holds countdowns.
func (e *Exposition) writeTo(buf *bytes.Buffer, g *textGroup, now time.Time) (countdown bool) {
	text, name := e.text, g.fam().Name
	for p := int(g.start); p < int(g.end); {
		tag := text[p]
		p++
		line := append(buf.AvailableBuffer(), name...)
		if tag&lineRef != 0 {
			from := p - (int(text[p]) | int(text[p+1])<<8 | int(text[p+2])<<16)
			line = append(line, text[from:from+int(binary.LittleEndian.Uint16(text[p+3:]))]...)
			p += refLen
		} else {
			n, k := binary.Uvarint(text[p:])
			p += k
			line = append(line, text[p:p+int(n)]...)
			p += int(n)
		}
		if tag&lineCountdown != 0 {
			countdown = true
			deadline := time.Unix(int64(binary.LittleEndian.Uint64(text[p:])), int64(binary.LittleEndian.Uint32(text[p+8:])))
			line = appendValue(append(line, ' '), deadline.Sub(now).Seconds())
			p += 12
		} else {
			end := p + bytes.IndexByte(text[p:], '\n') + 1
			line = append(line, text[p:end]...)
			p = end
		}
		buf.Write(line)
	}
	return countdown
}

// byName orders families by name, as the text format writes them.
func byName(a, b *Family) int { return cmp.Compare(a.rank, b.rank) }

// textFamilies is every family the expositions hold, in name order.
func textFamilies(exps []*Exposition) []*Family {
	present := make([]bool, len(all))
	for _, e := range exps {
		for i := range e.groups {
			present[e.groups[i].family] = true
		}
	}
	var fams []*Family
	for i, ok := range present {
		if ok {
			fams = append(fams, all[i])
		}
	}
	slices.SortFunc(fams, byName)
	return fams
}

// Join is one exposition holding the samples of all parts; the first part
// that failed, if any. Line records hold no positions, only distances
// within a part, so they are copied as they are.
func Join(parts ...*Exposition) *Exposition {
	size, groups := 0, 0
	for _, p := range parts {
		if p.err != nil {
			return p
		}
		size, groups = size+len(p.text), groups+len(p.groups)
	}
	e := &Exposition{text: make([]byte, 0, size), groups: make([]textGroup, 0, groups)}
	for _, p := range parts {
		offset := uint32(len(e.text))
		e.text = append(e.text, p.text...)
		for _, g := range p.groups {
			g.start, g.end = g.start+offset, g.end+offset
			e.groups = append(e.groups, g)
		}
	}
	slices.SortStableFunc(e.groups, func(a, b textGroup) int { return byName(a.fam(), b.fam()) })
	return e
}

// TextFormat is the content type of what Write writes: the text exposition
// format 0.0.4, which every Prometheus version parses whatever it asked for.
var TextFormat = string(expfmt.NewFormat(expfmt.TypeTextPlain))

// chunkSize is how much text Write builds before it hands it on.
const chunkSize = 64 << 10

// chunker builds text in a buffer and hands it on in chunks; with no out,
// the buffer keeps everything.
type chunker struct {
	*bytes.Buffer
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

// Write writes the expositions' families and the gathered ones, merged in
// name order, each family's header once, countdowns computed at now. A
// *bytes.Buffer is written to directly; any other writer gets chunks of
// about 64 KiB, so a compressor in between never sees the whole text.
func Write(out io.Writer, exps []*Exposition, gathered []*dto.MetricFamily, now time.Time) error {
	w := &chunker{out: out}
	if b, ok := out.(*bytes.Buffer); ok {
		w = &chunker{Buffer: b}
	} else {
		w.Buffer = new(bytes.Buffer)
	}
	for _, e := range exps {
		if e.err != nil {
			return e.err
		}
	}
	fams := textFamilies(exps)
	// Each exposition's groups are in name order (encode, Join): a scrape
	// merges them, next[i] being exps[i]'s first group not yet written, and
	// keeps nothing per group.
	next := make([]uint32, len(exps))
	mfs := gathered
	for len(fams) > 0 || len(mfs) > 0 {
		var err error
		switch {
		case len(mfs) == 0 || (len(fams) > 0 && fams[0].Name < mfs[0].GetName()):
			err = writeFamily(w, fams[0], exps, next, now)
			fams = fams[1:]
		case len(fams) > 0 && fams[0].Name == mfs[0].GetName():
			if err = writeFamily(w, fams[0], exps, next, now); err == nil {
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

// writeFamily writes f's header and the groups of f that come next in the
// expositions, in their order.
func writeFamily(w *chunker, f *Family, exps []*Exposition, next []uint32, now time.Time) error {
	w.Write(f.Header())
	for i, e := range exps {
		for int(next[i]) < len(e.groups) && e.groups[next[i]].family == f.index {
			e.writeTo(w.Buffer, &e.groups[next[i]], now)
			next[i]++
			if err := w.flush(false); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeGathered encodes a gathered family, without its header when the
// cached text already opened the family.
func writeGathered(w *chunker, mf *dto.MetricFamily, header bool) error {
	if header {
		_, err := expfmt.MetricFamilyToText(w.Buffer, mf)
		return err
	}
	start := w.Len()
	bare := &dto.MetricFamily{Name: mf.Name, Type: mf.Type, Metric: mf.Metric}
	if _, err := expfmt.MetricFamilyToText(w.Buffer, bare); err != nil {
		return err
	}
	// Drop the TYPE line that opened the bare family.
	text := w.Bytes()[start:]
	typeLine := bytes.IndexByte(text, '\n') + 1
	copy(text, text[typeLine:])
	w.Truncate(w.Len() - typeLine)
	return nil
}
