package metrics

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
)

// Every family has a unique valid name, HELP, a known type and unique
// valid labels; promtool's rules for names by type hold.
func TestCatalog(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range All() {
		switch {
		case seen[f.Name]:
			t.Errorf("%s is defined twice", f.Name)
		case !model.LegacyValidation.IsValidMetricName(f.Name):
			t.Errorf("%s is not a valid metric name", f.Name)
		case f.Help == "":
			t.Errorf("%s has no HELP", f.Name)
		case (f.Type == Counter) != strings.HasSuffix(f.Name, "_total"):
			t.Errorf("%s: a counter, and only a counter, ends in _total", f.Name)
		case strings.HasSuffix(f.Name, "_info") && f.Type != Gauge:
			t.Errorf("%s: an _info metric is a gauge", f.Name)
		}
		seen[f.Name] = true
		for _, l := range f.Labels {
			if !model.LegacyValidation.IsValidLabelName(l) || strings.HasPrefix(l, "__") {
				t.Errorf("%s: label %q is not valid", f.Name, l)
			}
		}
		if len(slices.Compact(sorted(f.Labels))) != len(f.Labels) {
			t.Errorf("%s repeats a label: %q", f.Name, f.Labels)
		}
	}
	if len(seen) < 40 {
		t.Errorf("the catalog holds %d families; it should hold every one the exporter serves", len(seen))
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Families are ordered by their rank wherever the text format wants name
// order: the ranks must order them exactly as their names do.
func TestByNameIsNameOrder(t *testing.T) {
	for _, a := range all {
		for _, b := range all {
			if got, want := byName(a, b), strings.Compare(a.Name, b.Name); got != want {
				t.Fatalf("byName(%s, %s) = %d, names compare %d", a.Name, b.Name, got, want)
			}
		}
	}
}
