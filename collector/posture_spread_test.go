package collector

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
)

// The first scans of targets that are new together are spread over
// min(posture_interval, n × firstScanGap), not started at once.
func TestFirstScanWindow(t *testing.T) {
	for _, c := range []struct {
		n     int
		every time.Duration
		want  time.Duration
	}{
		{0, time.Hour, 0},
		{1, time.Hour, firstScanGap},
		{10_000, time.Hour, 10_000 * firstScanGap},
		{100_000, time.Hour, time.Hour},
		{10_000, time.Minute, time.Minute},
	} {
		ts := make([]*target, c.n)
		for i := range ts {
			ts[i] = &target{id: fmt.Sprintf("endpoint/%d", i)}
		}
		if got := spreadFirstScans(ts, c.every); got != c.want {
			t.Errorf("%d targets at posture_interval %s: window %s, want %s", c.n, c.every, got, c.want)
		}
	}
}

// A start with 10,000 endpoints: every first scan's offset is inside the
// window, each tenth of the window holds about a tenth of the scans, a
// reload of the same config keeps every scan's schedule (and result), and
// an endpoint added by a reload is scanned within the window of one. Only
// computed offsets are checked, never how long anything took.
func TestFirstScansSpreadAndReloadKeepsThem(t *testing.T) {
	const n = 10_000
	cfg := func(extra int) *config.Config {
		c := &config.Config{PostureInterval: config.Duration(time.Hour)}
		for i := range n + extra {
			c.Endpoints = append(c.Endpoints, config.Endpoint{Name: fmt.Sprintf("ep-%05d", i), Address: fmt.Sprintf("127.0.0.2:%d", 1024+i)})
		}
		return c
	}
	c := New(slog.New(slog.DiscardHandler))
	now := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	c.sched.now = func() time.Time { return now }
	applyConfig(t, c, cfg(0))
	window := n * firstScanGap
	var tenths [10]int
	next := map[string]time.Time{}
	for _, j := range scanJobs(c) {
		e := c.sched.byKey[j.key()]
		off := e.next.Sub(now)
		if off < 0 || off >= window {
			t.Fatalf("%s: first scan at +%s, outside [0, %s)", j.key(), off, window)
		}
		tenths[off*10/window]++
		next[j.key()] = e.next
	}
	for k, got := range tenths {
		if got < n/10*85/100 || got > n/10*115/100 {
			t.Errorf("tenth %d of the window holds %d first scans, want about %d: %v", k, got, n/10, tenths)
		}
	}

	now = now.Add(10 * time.Minute) // a reload, later
	applyConfig(t, c, cfg(1))
	added := 0
	for _, j := range scanJobs(c) {
		e := c.sched.byKey[j.key()]
		if was, ok := next[j.key()]; ok {
			if !e.next.Equal(was) {
				t.Fatalf("%s: reload moved its scan from %s to %s", j.key(), was, e.next)
			}
			continue
		}
		added++
		if off := e.next.Sub(now); off < 0 || off >= firstScanGap {
			t.Errorf("endpoint added by the reload is first scanned at +%s, want within %s", off, firstScanGap)
		}
	}
	if added != 1 {
		t.Fatalf("%d posture jobs added by the reload, want 1", added)
	}
}

// scanJobs are the posture schedules of the collector's targets.
func scanJobs(c *Collector) []scanJob {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []scanJob
	for _, t := range c.targets {
		if t.kind.scans() {
			out = append(out, scanJob{t})
		}
	}
	return out
}

// The same key lands at the same offset every time.
func TestFirstScanOffsetIsDeterministic(t *testing.T) {
	for _, key := range []string{"posture/endpoint/a", "posture/endpoint/b"} {
		if a, b := offsetIn(key, time.Hour), offsetIn(key, time.Hour); a != b {
			t.Fatalf("%s: offsets %s and %s", key, a, b)
		}
	}
	if offsetIn("posture/endpoint/a", time.Hour) == offsetIn("posture/endpoint/b", time.Hour) {
		t.Fatal("two keys at the same offset")
	}
}
