package main

import (
	"os"
	"strings"
	"testing"
)

// TestMain lets the test binary serve as the listeners' child process.
func TestMain(m *testing.M) {
	if isChild() {
		childMain()
	}
	os.Exit(m.Run())
}

// The documented command keeps working: a small run goes through every
// phase, every endpoint verifies, and a scrape shows them all.
func TestHarnessRunsEveryPhase(t *testing.T) {
	var out strings.Builder
	o := options{n: 20, concurrency: 4, cycles: 2, scrapes: 3, scrapers: []int{1, 2}, floorMin: 20, files: 30, rescans: 2}
	if err := run(o, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		"floor, before", "first refresh", "refresh cycle 2", "after the scrapes", "floor, after",
		"exporter, per endpoint refresh:", "scrapes during refresh, 2 at once", "goroutines",
		"files, first read", "files, rescan",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
