// Package metricstest reads Prometheus text output in tests, so assertions
// are about samples and labels rather than substrings.
package metricstest

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families is parsed exposition text by metric name.
type Families map[string]*dto.MetricFamily

// Parse parses the text format and fails the test on a syntax error.
func Parse(t testing.TB, text string) Families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing metrics: %v\n%s", err, text)
	}
	return fams
}

// Sample is one series: its labels and value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Samples returns the series of a metric whose labels include want.
func (f Families) Samples(name string, want map[string]string) []Sample {
	fam := f[name]
	if fam == nil {
		return nil
	}
	var out []Sample
	for _, m := range fam.Metric {
		labels := map[string]string{}
		for _, lp := range m.Label {
			labels[lp.GetName()] = lp.GetValue()
		}
		if !matches(labels, want) {
			continue
		}
		out = append(out, Sample{Labels: labels, Value: value(m)})
	}
	return out
}

// One returns the value of the single series matching want, failing the test
// when there is none or more than one.
func (f Families) One(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	s := f.Samples(name, want)
	if len(s) != 1 {
		t.Fatalf("%s%v: want exactly one series, got %d: %v", name, want, len(s), s)
	}
	return s[0].Value
}

// Absent fails the test when any series of name matches want.
func (f Families) Absent(t testing.TB, name string, want map[string]string) {
	t.Helper()
	if s := f.Samples(name, want); len(s) > 0 {
		t.Fatalf("%s%v: want no series, got %v", name, want, s)
	}
}

// LabelValues lists the distinct values of one label across a metric's series matching want.
func (f Families) LabelValues(name, label string, want map[string]string) []string {
	seen := map[string]bool{}
	for _, s := range f.Samples(name, want) {
		seen[s.Labels[label]] = true
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func matches(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Summary != nil:
		return float64(m.Summary.GetSampleCount())
	}
	panic(fmt.Sprintf("metric with no value: %v", m))
}
