package metrics

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
)

// The cache writes samples itself; each line must be byte for byte what
// expfmt writes for the same const metric. ssl_certificate_info has labels
// whose sorted order differs from their catalog order.
func TestAppendLineMatchesExpfmt(t *testing.T) {
	f := CertInfo
	values := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1.7e9, -3.25e-7, math.NaN(), math.Inf(1), math.Inf(-1), 31536000.123456789}
	labels := [][]string{
		{"plain", "", "x"},
		{`back\slash`, `"quoted"`, "new\nline"},
		{"ünïcødé ✓", "tab\there", `\"\n`},
	}
	for _, v := range values {
		for _, ls := range labels {
			s := Sample{Family: f, Value: v, Labels: certInfoValues(f, ls)}
			got, err := appendLine(nil, &s)
			if err != nil {
				t.Fatal(err)
			}
			if want := expfmtLine(t, s); string(got) != want {
				t.Errorf("value %v labels %q:\n got %q\nwant %q", v, ls, got, want)
			}
		}
	}
}

// certInfoValues spreads three values over all of f's labels.
func certInfoValues(f *Family, three []string) []string {
	out := make([]string, len(f.Labels))
	for i := range out {
		out[i] = three[i%3]
	}
	return out
}

func expfmtLine(t *testing.T, s Sample) string {
	t.Helper()
	var pb dto.Metric
	if err := s.Write(&pb); err != nil {
		t.Fatal(err)
	}
	name, typ := s.Family.Name, dto.MetricType_GAUGE
	var b bytes.Buffer
	if _, err := expfmt.MetricFamilyToText(&b, &dto.MetricFamily{Name: &name, Type: &typ, Metric: []*dto.Metric{&pb}}); err != nil {
		t.Fatal(err)
	}
	_, line, _ := strings.Cut(b.String(), "\n")
	return line
}

// What a registry would refuse, the cache refuses too, rather than writing
// an invalid exposition.
func TestAppendLineRejectsWhatRegistriesReject(t *testing.T) {
	for name, labels := range map[string][]string{
		"too few labels":  {"x"},
		"too many labels": {"x", "y", "z"},
	} {
		s := Sample{Family: ProbeError, Value: 1, Labels: labels}
		if _, err := appendLine(nil, &s); err == nil {
			t.Errorf("%s: no error", name)
		}
		if err := s.Write(&dto.Metric{}); err == nil {
			t.Errorf("%s: the const metric path accepts what the cache refuses", name)
		}
	}
}

// Label values from outside are made valid at the one place they leave,
// the same way on both paths: escaped, never dropped, never failing the
// scrape.
func TestLabelValuesAreMadeValid(t *testing.T) {
	long := strings.Repeat("é", 3000) // 6000 bytes
	cases := map[string]string{
		"plain":                 "plain",
		"x\xff.pem":             `x\xff.pem`,
		"\xc3\x28 \xed\xa0\x80": `\xc3( \xed\xa0\x80`,
		long:                    strings.Repeat("é", (4096-len(cutMark))/2) + cutMark,
	}
	for in, want := range cases {
		cuts := LabelCuts()
		s := Sample{Family: ProbeSuccess, Value: 1, Labels: []string{in}}
		line, err := appendLine(nil, &s)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		got := metricstest.Parse(t, string(ProbeSuccess.Header())+string(line))
		if v := got.One(t, "ssl_probe_success", map[string]string{"target": want}); v != 1 {
			t.Errorf("%q: value %v", in, v)
		}
		var pb dto.Metric
		if err := s.Write(&pb); err != nil || pb.Label[0].GetValue() != want {
			t.Errorf("%q: const metric path wrote %q, %v; want %q", in, pb.Label[0].GetValue(), err, want)
		}
		// Both paths cut, and each cut is counted, so that it is reported.
		if wantCuts := 2 * uint64(strings.Count(want, cutMark)); LabelCuts()-cuts != wantCuts {
			t.Errorf("%q: counted %d cuts, want %d", in, LabelCuts()-cuts, wantCuts)
		}
	}
}

// Each family's header comes once, fixed values and countdowns of one
// family are written together, and a countdown is computed at write time.
func TestRenderTextGroupsFamilies(t *testing.T) {
	deadline := time.Now().Add(time.Hour)
	e := Render(func(ch *Samples) {
		ch.Gauge(ProbeSuccess, 1, "a")
		*ch = append(*ch, Sample{Family: CertExpiry, Labels: []string{"c", "", "", "leaf", "", "", "1"}, Deadline: deadline})
		ch.Gauge(ProbeError, 1, "a", "TIMEOUT")
		ch.Gauge(ProbeSuccess, 0, "b")
	})
	if e.Err() != nil {
		t.Fatal(e.Err())
	}
	var b bytes.Buffer
	if err := Write(&b, []*Exposition{e}, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	if n := strings.Count(text, "# TYPE ssl_probe_success gauge\n"); n != 1 {
		t.Errorf("%d TYPE lines of ssl_probe_success:\n%s", n, text)
	}
	got := metricstest.Parse(t, text)
	for k, want := range map[string]float64{"a": 1, "b": 0} {
		if v := got.One(t, "ssl_probe_success", map[string]string{"target": k}); v != want {
			t.Errorf("ssl_probe_success %s = %v, want %v", k, v, want)
		}
	}
	if v := got.One(t, "ssl_certificate_expiry_seconds", map[string]string{"target": "c"}); v < 3590 || v > 3600 {
		t.Errorf("countdown = %v, want about 3600", v)
	}
}

// Every catalogued family's header is what expfmt writes for it.
func TestCatalogHeadersMatchExpfmt(t *testing.T) {
	for _, f := range All() {
		m := &dto.Metric{Gauge: &dto.Gauge{}}
		typ := dto.MetricType_GAUGE
		switch f.Type {
		case Counter:
			m, typ = &dto.Metric{Counter: &dto.Counter{}}, dto.MetricType_COUNTER
		case Histogram:
			m, typ = &dto.Metric{Histogram: &dto.Histogram{}}, dto.MetricType_HISTOGRAM
		}
		var b bytes.Buffer
		mf := &dto.MetricFamily{Name: &f.Name, Help: &f.Help, Type: &typ, Metric: []*dto.Metric{m}}
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
		if want := b.String()[:len(f.Header())]; want != string(f.Header()) {
			t.Errorf("%s:\n got %q\nwant %q", f.Name, f.Header(), want)
		}
	}
}

// The cached text keeps samples as compact records (names left out, label
// blocks written once); what Write writes from them must be exactly the
// lines appendLine writes, which match expfmt's: family by family in name
// order, fixed values before countdowns, countdowns computed at now.
func TestCompactRecordsWriteEveryLine(t *testing.T) {
	now := time.Now()
	cert := func(role string) []string { return []string{"ep", "", "endpoint", role, "CN", "Issuer", "0A"} }
	far := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) // "no well-defined expiration" (RFC 5280)
	tests := map[string][]func(*Samples){
		"shared heads": {func(ch *Samples) {
			for _, role := range []string{"leaf", "root"} {
				*ch = append(*ch, Sample{Family: CertExpiry, Labels: cert(role), Deadline: now.Add(time.Hour + 123456789)})
				ch.Gauge(CertNotAfter, 1.8e9, cert(role)...)
				ch.Gauge(CertNotBefore, 1.7e9, cert(role)...)
			}
			ch.Gauge(ProbeSuccess, 1, "ep")
			ch.Gauge(ProbeError, 1, "ep", "TIMEOUT")
			ch.Gauge(InsecureSkip, 0, "ep")
		}},
		"short heads and no labels": {func(ch *Samples) {
			ch.Gauge(ProbeSuccess, 0, "")
			ch.Gauge(ProbeSuccess, 1, "a")
			ch.Gauge(InsecureSkip, 1, "a")
		}},
		"histogram": {func(ch *Samples) {
			ch.Histogram(RefreshDuration, []float64{0.1, 1}, []uint64{3, 0, 2}, 7.5, "endpoint")
			ch.Gauge(ProbeSuccess, 1, "endpoint")
		}},
		"far and past deadlines": {func(ch *Samples) {
			*ch = append(*ch, Sample{Family: CertExpiry, Labels: cert("leaf"), Deadline: far},
				Sample{Family: CertExpiry, Labels: cert("root"), Deadline: time.Unix(0, 1)})
		}},
		"heads too long for a reference": {func(ch *Samples) {
			long := strings.Repeat("x", 10000) // 7 of them: over maxRefHead
			ls := []string{long, long, long, long, long, long, long}
			ch.Gauge(CertNotAfter, 1.8e9, ls...)
			ch.Gauge(CertNotBefore, 1.7e9, ls...)
		}},
		"parts": {
			func(ch *Samples) { ch.Gauge(ProbeSuccess, 1, "ep"); ch.Gauge(CertNotAfter, 1.8e9, cert("leaf")...) },
			func(ch *Samples) { ch.Gauge(CertNotAfter, 1.9e9, cert("leaf")...); ch.Gauge(InsecureSkip, 0, "ep") },
			func(ch *Samples) {
				ch.Gauge(InsecureSkip, 1, "b")
				ch.Gauge(CertVerified, 1, "b")
				ch.Gauge(ProbeSuccess, 0, "b")
			},
		},
	}
	SetLabelLength(10000)
	defer SetLabelLength(config.DefaultLimits.LabelLength)
	for name, renders := range tests {
		t.Run(name, func(t *testing.T) {
			var parts []*Exposition
			var all Samples
			for _, r := range renders {
				parts = append(parts, Render(r))
				r(&all)
			}
			want := linesOf(t, all, now)
			// One joined exposition, and the parts as a scrape merges many.
			for _, exps := range [][]*Exposition{{Join(parts...)}, parts} {
				var got bytes.Buffer
				if err := Write(&got, exps, nil, now); err != nil {
					t.Fatal(err)
				}
				if got.String() != want {
					t.Errorf("%d expositions: got\n%s\nwant\n%s", len(exps), got.String(), want)
				}
			}
		})
	}
}

// linesOf is what the cache must write for ss: appendLine's lines, grouped
// as Write groups them.
func linesOf(t *testing.T, ss Samples, now time.Time) string {
	t.Helper()
	var fams []*Family
	for _, s := range ss {
		if !slices.Contains(fams, s.Family) {
			fams = append(fams, s.Family)
		}
	}
	slices.SortFunc(fams, func(a, b *Family) int { return strings.Compare(a.Name, b.Name) })
	var b []byte
	for _, f := range fams {
		b = append(b, f.Header()...)
		for _, countdowns := range []bool{false, true} {
			for _, s := range ss {
				if s.Family != f || s.Deadline.IsZero() == countdowns {
					continue
				}
				if countdowns {
					s.Value = s.Deadline.Sub(now).Seconds()
				}
				var err error
				if b, err = appendLine(b, &s); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return string(b)
}

// appendLine writes a sample as one text line, name{label="value",...}
// value, from the head the cache keeps: checked against expfmt here, it
// is what Write must reproduce from the compact records.
func appendLine(b []byte, s *Sample) ([]byte, error) {
	b = append(b, s.Family.Name...)
	b, err := appendHead(b, s, new(uint32))
	if err != nil {
		return b, err
	}
	return appendValue(append(b, ' '), s.Value), nil
}

// Most targets render no posture text at each refresh: rendering nothing
// allocates nothing, so it adds neither garbage nor a live object per target.
func TestRenderingNothingAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Render(func(*Samples) {}) }); n != 0 {
		t.Errorf("rendering no samples made %v allocations", n)
	}
}
