package alerts

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestValidateRefusesTiersWhereOneFailurePages(t *testing.T) {
	m := func(d time.Duration) model.Duration { return model.Duration(d) }
	base := func() *Thresholds {
		return &Thresholds{ExporterJob: "j", RunbookBaseURL: "u", ExpiryWarningDays: 30, ExpiryCriticalDays: 7,
			StaleIntervals: 3, CertificateChangeWindow: m(time.Hour),
			Availability: Availability{MinSuccessRatio: 0.5, Tiers: []Tier{
				{MaxInterval: m(time.Minute), Window: m(10 * time.Minute), For: m(2 * time.Minute)},
				{MaxInterval: m(15 * time.Minute), Window: m(45 * time.Minute), For: m(10 * time.Minute)},
			}}}
	}
	for _, tc := range []struct {
		name   string
		change func(*Thresholds)
		want   string // part of the error; empty for valid
	}{
		{"shipped shape", func(*Thresholds) {}, ""},
		// One failed probe at 15m is half of a 30m window: it would page.
		{"window of two intervals", func(th *Thresholds) { th.Availability.Tiers[1].Window = m(30 * time.Minute) },
			"window 30m is too short"},
		{"tiers out of order", func(th *Thresholds) { th.Availability.Tiers[1].MaxInterval = m(time.Minute) },
			"must be above the previous tier's"},
		{"no tiers", func(th *Thresholds) { th.Availability.Tiers = nil }, "at least one tier"},
		{"ratio of 1", func(th *Thresholds) { th.Availability.MinSuccessRatio = 1 }, "between 0 and 1"},
		{"no for", func(th *Thresholds) { th.Availability.Tiers[0].For = 0 }, "for must be positive"},
		{"critical above warning", func(th *Thresholds) { th.ExpiryCriticalDays = 40 }, "expiry_critical_days"},
	} {
		th := base()
		tc.change(th)
		err := th.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestRenderScalesEveryDuration(t *testing.T) {
	th := &Thresholds{ExporterJob: "j", CertificateChangeWindow: model.Duration(time.Hour),
		Availability: Availability{Tiers: []Tier{{MaxInterval: model.Duration(time.Minute), Window: model.Duration(10 * time.Minute), For: model.Duration(2 * time.Minute)}}}}
	src := `[[ dur "15m" ]] [[ dur .CertificateChangeWindow ]][[ range .AvailabilityTiers ]] [[ dur .Window ]] [[ dur .For ]][[ end ]] [[ seconds "1m" ]] [[ .Selector ]]`
	for scale, want := range map[int]string{1: `15m 1h 10m 2m 60 job="j"`, 60: `15s 1m 10s 2s 1 job="j"`} {
		got, err := Render([]byte(src), th, scale)
		if err != nil || string(got) != want {
			t.Errorf("scale %d: %q, %v; want %q", scale, got, err, want)
		}
	}
	if _, err := Render([]byte(`[[ dur "1s" ]]`), th, 10000); err == nil {
		t.Error("a duration scaled below 1ms rendered")
	}
}
