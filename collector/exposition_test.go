package collector

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/mcpcert/mcp_cert_exporter/internal/metricstest"
)

// The cache writes samples itself; each line must be byte for byte what
// expfmt writes for the same const metric.
func TestAppendLineMatchesExpfmt(t *testing.T) {
	d := prometheus.NewDesc("test_line_seconds", "Test.", []string{"zeta", "alpha", "mid"}, nil)
	values := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1.7e9, -3.25e-7, math.NaN(), math.Inf(1), math.Inf(-1), 31536000.123456789}
	labels := [][]string{
		{"plain", "", "x"},
		{`back\slash`, `"quoted"`, "new\nline"},
		{"ünïcødé ✓", "tab\there", `\"\n`},
	}
	for _, v := range values {
		for _, ls := range labels {
			s := sample{d, v, ls}
			f, err := familyOf(s)
			if err != nil {
				t.Fatal(err)
			}
			if !f.direct {
				t.Fatal("a gauge with legacy names is not written directly")
			}
			got, err := appendLine(nil, f, s)
			if err != nil {
				t.Fatal(err)
			}
			if want := expfmtLine(t, s); string(got) != want {
				t.Errorf("value %v labels %q:\n got %q\nwant %q", v, ls, got, want)
			}
		}
	}
}

func expfmtLine(t *testing.T, m prometheus.Metric) string {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	name, typ := "test_line_seconds", dto.MetricType_GAUGE
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
	d := prometheus.NewDesc("test_reject_seconds", "Test.", []string{"a", "b"}, nil)
	f, err := familyOf(sample{d, 1, []string{"x", "y"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, labels := range map[string][]string{
		"too few labels":  {"x"},
		"too many labels": {"x", "y", "z"},
	} {
		if _, err := appendLine(nil, f, sample{d, 1, labels}); err == nil {
			t.Errorf("%s: no error", name)
		}
		if err := (sample{d, 1, labels}).Write(&dto.Metric{}); err == nil {
			t.Errorf("%s: the const metric path accepts what the cache refuses", name)
		}
	}
}

// Label values from outside are made valid at the one place they leave,
// the same way on both paths: escaped, never dropped, never failing the
// scrape.
func TestLabelValuesAreMadeValid(t *testing.T) {
	d := prometheus.NewDesc("test_label_value_info", "Test.", []string{"a"}, nil)
	f, err := familyOf(sample{d, 1, []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 3000) // 6000 bytes
	cases := map[string]string{
		"plain":                 "plain",
		"x\xff.pem":             `x\xff.pem`,
		"\xc3\x28 \xed\xa0\x80": `\xc3( \xed\xa0\x80`,
		long:                    strings.Repeat("é", (4096-len(cutMark))/2) + cutMark,
	}
	for in, want := range cases {
		line, err := appendLine(nil, f, sample{d, 1, []string{in}})
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		got := metricstest.Parse(t, string(line))
		if v := got.One(t, "test_label_value_info", map[string]string{"a": want}); v != 1 {
			t.Errorf("%q: value %v", in, v)
		}
		var pb dto.Metric
		if err := (sample{d, 1, []string{in}}).Write(&pb); err != nil || pb.Label[0].GetValue() != want {
			t.Errorf("%q: const metric path wrote %q, %v; want %q", in, pb.Label[0].GetValue(), err, want)
		}
	}
}

// Render functions may send any Metric: samples are written directly,
// anything else through expfmt, and each family's header comes once.
func TestRenderTextKeepsAnyMetric(t *testing.T) {
	counter := prometheus.NewDesc("test_any_total", "Test counter.", []string{"k"}, prometheus.Labels{"const": "c"})
	gaugeDesc := prometheus.NewDesc("test_any_gauge", "Test gauge.", []string{"k"}, nil)
	deadline := time.Now().Add(time.Hour)
	e := renderText(func(ch chan<- prometheus.Metric) {
		ch <- prometheus.MustNewConstMetric(counter, prometheus.CounterValue, 3, "a")
		ch <- sample{gaugeDesc, 2, []string{"b"}}
		ch <- countdown{sample{gaugeDesc, 0, []string{"c"}}, deadline}
		ch <- prometheus.MustNewConstMetric(gaugeDesc, prometheus.GaugeValue, 4, "d")
	})
	if e.err != nil {
		t.Fatal(e.err)
	}
	var b bytes.Buffer
	fams, groups := textFamilies([]*exposition{e})
	for _, f := range fams {
		b.Write(f.header)
		for _, r := range groups[f] {
			r.e.writeTo(&b, r.g, time.Now())
		}
	}
	got := metricstest.Parse(t, b.String())
	if v := got.One(t, "test_any_total", map[string]string{"k": "a", "const": "c"}); v != 3 {
		t.Errorf("counter = %v", v)
	}
	for k, want := range map[string]float64{"b": 2, "d": 4} {
		if v := got.One(t, "test_any_gauge", map[string]string{"k": k}); v != want {
			t.Errorf("gauge %s = %v, want %v", k, v, want)
		}
	}
	if v := got.One(t, "test_any_gauge", map[string]string{"k": "c"}); v < 3590 || v > 3600 {
		t.Errorf("countdown = %v, want about 3600", v)
	}
}
