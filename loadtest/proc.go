package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on Linux.
const clockTick = 10 * time.Millisecond

// selfCPU is this process's user and system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(fmt.Sprintf("getrusage: %v", err)) // cannot fail for RUSAGE_SELF
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is another process's user and system CPU time, from
// /proc/<pid>/stat, in clock ticks: the way any process is measured from
// outside, blackbox_exporter included.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading CPU time of process %d: %w", pid, err)
	}
	// The command name may hold spaces; fields count from after its ')'.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}

// memory is a snapshot of this process's footprint.
type memory struct {
	rss        int64 // bytes
	heap       uint64
	goroutines int
	fds        int
}

func snapshot() (memory, error) {
	var m memory
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return m, fmt.Errorf("reading RSS: %w", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			v, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
			if err != nil {
				return m, fmt.Errorf("parsing VmRSS %q: %w", kb, err)
			}
			m.rss = v << 10
		}
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return m, fmt.Errorf("counting fds: %w", err)
	}
	// The live heap as of the last collection: no forced GC, which would
	// change what the next cycle costs.
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	m.heap, m.goroutines, m.fds = live[0].Value.Uint64(), runtime.NumGoroutine(), len(fds)
	return m, nil
}

func (m memory) String() string {
	return fmt.Sprintf("RSS %s, live heap %s, %d goroutines, %d fds", mib(m.rss), mib(int64(m.heap)), m.goroutines, m.fds)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// raiseFDLimit lifts the open-file soft limit towards want (one listener
// or connection is one descriptor), but no further than the hard limit,
// which not even root may raise everywhere; it returns the limit reached.
func raiseFDLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= want || lim.Cur >= lim.Max {
		return lim.Cur, nil
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raising the open-file limit to %d (ulimit -n): %w", lim.Cur, err)
	}
	return lim.Cur, nil
}
