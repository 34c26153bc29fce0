// Package alerts renders the shipped alert rules from
// mcp_cert_exporter.rules.tmpl and thresholds.yml. Tests outside this
// directory use it too: the stack test renders the rules with every duration
// divided by one factor, so minutes of pending and windows pass in seconds.
package alerts

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// File names in this directory.
const (
	TemplateFile   = "mcp_cert_exporter.rules.tmpl"
	ThresholdsFile = "thresholds.yml"
	RulesFile      = "mcp_cert_exporter.rules.yml"
)

// Thresholds are the settings in thresholds.yml.
type Thresholds struct {
	ExporterJob             string         `yaml:"exporter_job"`
	JobSelector             string         `yaml:"job_selector"`
	ExpiryWarningDays       int            `yaml:"expiry_warning_days"`
	ExpiryCriticalDays      int            `yaml:"expiry_critical_days"`
	StaleIntervals          int            `yaml:"stale_intervals"`
	CertificateChangeWindow model.Duration `yaml:"certificate_change_window"`
	Availability            Availability   `yaml:"availability"`
	RunbookBaseURL          string         `yaml:"runbook_base_url"`
}

// Availability sets the windowed availability alerts.
type Availability struct {
	// MinSuccessRatio: below this share of successful probes in the window
	// an endpoint (or its MCP exchange) pages.
	MinSuccessRatio float64 `yaml:"min_success_ratio"`
	// Tiers by probe interval, shortest first; the last one also takes
	// every longer interval.
	Tiers []Tier `yaml:"tiers"`
}

// Tier is the window and for: used for targets whose probe interval is at
// most MaxInterval (and above the previous tier's).
type Tier struct {
	MaxInterval model.Duration `yaml:"max_interval"`
	Window      model.Duration `yaml:"window"`
	For         model.Duration `yaml:"for"`
}

// Selector is the label matcher every rule puts on the exporter's series.
func (th *Thresholds) Selector() string {
	if th.JobSelector != "" {
		return th.JobSelector
	}
	return fmt.Sprintf("job=%q", th.ExporterJob)
}

// Validate reports the first setting that cannot make sense.
func (th *Thresholds) Validate() error {
	av := th.Availability
	switch {
	case th.ExporterJob == "" || th.RunbookBaseURL == "":
		return fmt.Errorf("exporter_job and runbook_base_url are required")
	case th.ExpiryCriticalDays <= 0 || th.ExpiryWarningDays <= th.ExpiryCriticalDays:
		return fmt.Errorf("need 0 < expiry_critical_days < expiry_warning_days, got %d and %d",
			th.ExpiryCriticalDays, th.ExpiryWarningDays)
	case th.StaleIntervals < 1:
		return fmt.Errorf("stale_intervals must be at least 1, got %d", th.StaleIntervals)
	case th.CertificateChangeWindow <= 0:
		return fmt.Errorf("certificate_change_window must be positive")
	case av.MinSuccessRatio <= 0 || av.MinSuccessRatio >= 1:
		return fmt.Errorf("availability.min_success_ratio must be between 0 and 1, got %v", av.MinSuccessRatio)
	case len(av.Tiers) == 0:
		return fmt.Errorf("availability.tiers: at least one tier is required")
	}
	var prev model.Duration
	for i, t := range av.Tiers {
		// One failed probe is held for one interval: it must stay below
		// the failure share that pages, or a single failure pages.
		oneFailure := float64(t.MaxInterval) / float64(t.Window)
		switch {
		case t.MaxInterval <= prev:
			return fmt.Errorf("availability.tiers[%d]: max_interval %v must be above the previous tier's %v", i, t.MaxInterval, prev)
		case t.For <= 0:
			return fmt.Errorf("availability.tiers[%d]: for must be positive", i)
		case oneFailure >= 1-av.MinSuccessRatio:
			return fmt.Errorf("availability.tiers[%d]: window %v is too short: one failed probe at interval %v is %.0f%% of it, and more than %.0f%% failing pages",
				i, t.Window, t.MaxInterval, 100*oneFailure, 100*(1-av.MinSuccessRatio))
		}
		prev = t.MaxInterval
	}
	return nil
}

// LoadThresholds reads and validates a thresholds.yml; unknown keys are
// errors.
func LoadThresholds(path string) (*Thresholds, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var th Thresholds
	if err := dec.Decode(&th); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	if err := th.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &th, nil
}

// Render executes the rules template with th. scale divides every duration
// the rules contain (for:, range windows, the tiers' interval bounds); 1
// renders the shipped rules. Thresholds that are not durations (expiry days,
// ratios, stale_intervals, which counts the exporter's own intervals) stay.
//
// The template uses [[ ]] as delimiters: the rules carry Prometheus' own {{ }}
// templates, which must pass through untouched.
func Render(src []byte, th *Thresholds, scale int) ([]byte, error) {
	if scale < 1 {
		return nil, fmt.Errorf("scale must be at least 1, got %d", scale)
	}
	tmpl, err := template.New(TemplateFile).Delims("[[", "]]").Option("missingkey=error").
		Funcs(durationFuncs(scale)).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", TemplateFile, err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, th); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", TemplateFile, err)
	}
	return buf.Bytes(), nil
}

// RenderDir renders the rules from the template and thresholds.yml in dir.
func RenderDir(dir string, scale int) ([]byte, error) {
	th, err := LoadThresholds(filepath.Join(dir, ThresholdsFile))
	if err != nil {
		return nil, err
	}
	src, err := os.ReadFile(filepath.Join(dir, TemplateFile))
	if err != nil {
		return nil, err
	}
	return Render(src, th, scale)
}

// durationFuncs are the template's only ways to write a duration, so none
// escapes the scale: dur prints one in Prometheus' notation, seconds as a
// number of seconds for comparisons with ssl_probe_interval_seconds.
func durationFuncs(scale int) template.FuncMap {
	scaled := func(v any) (time.Duration, error) {
		var d time.Duration
		switch v := v.(type) {
		case model.Duration:
			d = time.Duration(v)
		case string:
			md, err := model.ParseDuration(v)
			if err != nil {
				return 0, err
			}
			d = time.Duration(md)
		default:
			return 0, fmt.Errorf("not a duration: %v (%T)", v, v)
		}
		d /= time.Duration(scale)
		if d < time.Millisecond {
			return 0, fmt.Errorf("duration %v divided by %d is below Prometheus' 1ms resolution", v, scale)
		}
		return d, nil
	}
	return template.FuncMap{
		// dict passes several values to a nested template.
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict needs key and value pairs")
			}
			m := map[string]any{}
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"dur": func(v any) (string, error) {
			d, err := scaled(v)
			return model.Duration(d).String(), err
		},
		"seconds": func(v any) (string, error) {
			d, err := scaled(v)
			return strconv.FormatFloat(d.Seconds(), 'f', -1, 64), err
		},
	}
}

// MaxFailureRatio is the share of failed probes in the window above which
// the availability alerts fire.
func (a Availability) MaxFailureRatio() float64 { return math.Round((1-a.MinSuccessRatio)*1e9) / 1e9 }

// TierBounds is one availability tier with the interval range it covers:
// Lower is zero for the first tier, Upper zero for the last, which takes
// every longer interval.
type TierBounds struct {
	Lower, Upper model.Duration
	Window, For  model.Duration
}

// AvailabilityTiers are the tiers with their interval ranges.
func (th *Thresholds) AvailabilityTiers() []TierBounds {
	tiers := th.Availability.Tiers
	out := make([]TierBounds, len(tiers))
	for i, t := range tiers {
		out[i] = TierBounds{Window: t.Window, For: t.For}
		if i > 0 {
			out[i].Lower = tiers[i-1].MaxInterval
		}
		if i < len(tiers)-1 {
			out[i].Upper = t.MaxInterval
		}
	}
	return out
}
