package collector

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/config"
	"github.com/mcpcert/mcp_cert_exporter/internal/testpki"
)

// Margins over the baseline after 100 refresh cycles of 9 endpoints and a
// file group: more than 900 refreshes, so that one goroutine, descriptor or
// KiB kept per refresh exceeds them.
const (
	goroutineMargin = 2
	fdMargin        = 2
	heapMargin      = 512 << 10
)

type usage struct {
	goroutines, fds int
	heap            uint64 // live heap after a GC
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, %d KiB heap", u.goroutines, u.fds, u.heap>>10)
}

// openFiles counts the process's file descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting open files: %v", err)
	}
	return len(fds)
}

// quiet is how long goroutines and open files must stay unchanged to count
// as settled: longer than a peer takes to notice that its client left.
const quiet = 300 * time.Millisecond

// settled measures once goroutines and open files stop changing, so that
// connections still closing are not counted. Files are counted before the
// GC that measures the heap: a forced GC would let finalizers close
// connections that the code left open.
func settled(t *testing.T, what string) usage {
	t.Helper()
	var u usage
	var since time.Time
	eventually(t, what, func() bool {
		prev := u
		u = usage{goroutines: runtime.NumGoroutine(), fds: openFiles(t)}
		if u != prev {
			since = time.Now()
		}
		return time.Since(since) >= quiet
	})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u.heap = ms.HeapAlloc
	return u
}

func apply(t *testing.T, c *Collector, yml string) {
	t.Helper()
	cfg, err := config.Parse([]byte(yml), "test.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(cfg); err != nil {
		t.Fatal(err)
	}
}

// cycles waits until every peer has been probed n more times.
func cycles(t *testing.T, peers []*peer, n int64) {
	t.Helper()
	from := make([]int64, len(peers))
	for i, p := range peers {
		from[i] = p.conns.Load()
	}
	eventuallyWithin(t, 2*time.Minute, fmt.Sprintf("%d refresh cycles", n), func() bool {
		for i, p := range peers {
			if p.conns.Load()-from[i] < n {
				return false
			}
		}
		return true
	})
}

// After 100 refresh cycles against good and hostile peers and a file group,
// and then a reload that removes them all, goroutines, open files and the
// live heap are back to the baseline taken after one warm-up cycle.
func TestNoLeaksAfter100RefreshCycles(t *testing.T) {
	caFile, peers := startPeers(t)
	dir := t.TempDir()
	testpki.WriteFile(t, dir, "certs/ok.pem", testpki.NewCA("Leak Root").PEM())
	// Posture scans run once per apply on their hourly schedule, on the
	// scheduler's reused workers, so a scan still running at the last apply
	// would hold sockets no goroutine count reveals; they are left out here.
	mix := strings.ReplaceAll(peersConfig(caFile, peers, "20ms", "50ms"), "address:", "posture: false, address:") +
		"files:\n  - {name: certs, paths: [\"" + dir + "/certs/*.pem\", \"" + dir + "/missing/*.pem\"]}\n"
	const empty = "interval: 20ms\n"
	c := startCollector(t, empty)

	// The warm-up builds what lives for the process: the x509 and TLS
	// tables, the self-metrics' series, the connection pools of the peers.
	apply(t, c, mix)
	cycles(t, peers, 1)
	apply(t, c, empty)
	base := settled(t, "the warm-up settles")

	apply(t, c, mix)
	cycles(t, peers, 100)
	apply(t, c, empty)
	now := settled(t, "the last refreshes settle")
	t.Logf("baseline %v; after 100 cycles %v", base, now)
	if now.goroutines > base.goroutines+goroutineMargin || now.fds > base.fds+fdMargin || now.heap > base.heap+heapMargin {
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Errorf("not back to the baseline within %d goroutines, %d fds and %d KiB of heap; goroutines:\n%s",
			goroutineMargin, fdMargin, heapMargin>>10, stacks.String())
	}
}
