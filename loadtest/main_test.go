package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/collector"
)

// TestMain lets the test binary serve as the listeners' child process.
func TestMain(m *testing.M) {
	if isChild() {
		childMain()
	}
	if isBesideChild() {
		besideMain()
	}
	os.Exit(m.Run())
}

// The documented command keeps working: a small run goes through every
// phase, every endpoint verifies, and a scrape shows them all. Eight
// listeners per address put the twenty on 127.0.0.2 to 127.0.0.4, served
// by three processes of at most seven, whose CPU is the listeners'; the
// floor is paced to twenty handshakes per interval, and runs beside the
// cycles too.
func TestHarnessRunsEveryPhase(t *testing.T) {
	var out strings.Builder
	o := options{n: 20, concurrency: 4, cycles: 2, scrapes: 3, scrapers: []int{1, 2}, floorMin: 20, files: 30, rescans: 2,
		perAddress: 8, perProcess: 7, interval: 200 * time.Millisecond, probe: true, floorBeside: true}
	if err := run(o, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		"floor, before", "first refresh", "refresh cycle 2", "after the scrapes", "floor, after",
		"exporter, per endpoint refresh:", "scrapes during refresh, 2 at once", "goroutines",
		"files, first read", "files, rescan", "/probe, per request:", "in 3 processes", "each listener every 200ms ±10%",
		"; beside: floor", "floor beside, same minutes:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	// Three addresses in a row; which three depends on the ports another
	// harness on the machine holds.
	m := regexp.MustCompile(`on 127\.0\.0\.(\d+):\d+ to 127\.0\.0\.(\d+):`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("report names no listener addresses:\n%s", out.String())
	}
	if from, to := atoi(t, m[1]), atoi(t, m[2]); from < 2 || to != from+2 {
		t.Errorf("listeners on 127.0.0.%d to 127.0.0.%d, want three addresses from 127.0.0.2 on", from, to)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The mode run under valgrind makes its operations of either kind and
// stops; an unknown kind is an error.
func TestCountOnly(t *testing.T) {
	for _, kind := range []string{"floor", "exporter"} {
		o := options{n: 5, concurrency: 2, ops: 12, perAddress: 30000, perProcess: 3, interval: 100 * time.Millisecond, countOnly: kind}
		if err := countOnly(o); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
	}
	if err := countOnly(options{n: 1, concurrency: 1, ops: 1, perAddress: 1, perProcess: 1, countOnly: "both"}); err == nil {
		t.Fatal("-count-only both was accepted")
	}
}

// -posture counts the connections each scan costs at the listeners and
// reports every scan's start by tenth of the interval. Twenty endpoints are
// first scanned within 20 × 50ms; the run reloads at half the interval.
func TestPostureMode(t *testing.T) {
	var out strings.Builder
	// Second scans come from 0.9 × posture on; the run (and its last poll,
	// late on a loaded machine) must end well before, or a scan in flight
	// adds connections without a start.
	o := options{n: 20, concurrency: 4, perAddress: 30000, perProcess: 15000, interval: time.Hour, posture: 8 * time.Second, postureFor: 5 * time.Second}
	if err := runPosture(o, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		"(20 targets scanned at least once)", "connections per scan at the listeners: 9.00 (6.00 handshakes completed, 3.00 refused)",
		"scans starting in the 10s after the reload", "  0% to  10%", "peak RSS",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if err := runPosture(options{n: 1, concurrency: 1, perAddress: 1, interval: time.Millisecond, posture: time.Second}, &out); err == nil {
		t.Fatal("-posture with back-to-back probes was accepted")
	}
}

// -floor-groups: the floor offers Go's defaults, or the exporter's
// classical groups; anything else is refused.
func TestFloorGroups(t *testing.T) {
	for in, want := range map[string]int{"default": 0, "classical": 4} {
		if g, err := parseGroups(in); err != nil || len(g) != want {
			t.Errorf("%s: %v, %v", in, g, err)
		}
	}
	if _, err := parseGroups("hybrid"); err == nil {
		t.Error("-floor-groups hybrid was accepted")
	}
}

// -floor-spread spreads one round of handshakes over the whole interval
// (and its ±10%);
// without it, one round falls within the ±10% window. Either way each
// start is on one of the exporter's ticks.
func TestFloorSpread(t *testing.T) {
	defer func() { spreadFloor = true }()
	tick := collector.StartTick(time.Minute)
	for _, spread := range []bool{false, true} {
		spreadFloor = spread
		due := schedule(1000, 1000, time.Minute)
		span := due[len(due)-1] - due[0]
		if spread != (span > 30*time.Second) || span > 72*time.Second {
			t.Errorf("spread %v: one round spans %s", spread, span)
		}
		for _, at := range due {
			if at%tick != 0 {
				t.Fatalf("spread %v: a start at +%s, off the exporter's %s ticks", spread, at, tick)
			}
		}
	}
}
