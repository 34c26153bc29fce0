// Command loadtest measures the exporter against N local TLS 1.3 listeners
// with an ECDSA P-256 chain, and prints its CPU per endpoint refresh
// against the bare verified crypto/tls handshake measured in the same run,
// the refresh wall time, scrape latency while refreshes run, and memory,
// goroutines and file descriptors per cycle. BENCHMARKS.md shows its output.
//
//	go run ./loadtest -n 1000
//
// The listeners run in a child process, so the exporter's CPU is counted
// apart from theirs; the exporter (collector, scheduler and metrics
// handler, wired as main wires them) runs in this process and is scraped
// over HTTP. With -blackbox, blackbox_exporter probes the same listeners
// and its CPU is read from /proc the same way.
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/collector"
	"github.com/mcpcert/mcp_cert_exporter/probe"
)

type options struct {
	n              int
	concurrency    int
	cycles         int
	scrapes        int
	scrapeEvery    time.Duration
	scrapers       []int
	floorMin       int
	blackbox       string
	blackboxProbes int
	cpuProfile     string
	memProfile     string
	files          int
	rescans        int
	perAddress     int
	perProcess     int
	interval       time.Duration
	countOnly      string
	ops            int
	verifyCache    bool
	posture        time.Duration
	postureFor     time.Duration
	probe          bool
	floorBeside    bool
}

// pace says how the floor's handshakes are started.
func (o options) pace() string {
	if schedule(1, 1, o.interval) == nil {
		return "back to back"
	}
	tick := collector.StartTick(o.interval)
	if !spreadFloor {
		return fmt.Sprintf("paced as the exporter's first rounds: each listener every %s ±10%%, one round within the window, starts on %s ticks", o.interval, tick)
	}
	return fmt.Sprintf("paced as the exporter: each listener every %s ±10%%, spread over the interval, starts on %s ticks", o.interval, tick)
}

func main() {
	if isChild() {
		childMain()
	}
	if isBesideChild() {
		besideMain()
	}
	var o options
	var scrapers, groups string
	flag.IntVar(&o.n, "n", 1000, "endpoints, each its own TLS listener")
	flag.IntVar(&o.concurrency, "concurrency", 32, "refreshes in flight, for the exporter and the floor alike")
	flag.IntVar(&o.cycles, "cycles", 5, "full refresh cycles measured after the first")
	flag.IntVar(&o.scrapes, "scrapes", 20, "scrapes made while refreshes run, for each number of scrapers")
	flag.StringVar(&scrapers, "scrapers", "1,4", "numbers of concurrent scrapers to try, comma-separated")
	flag.DurationVar(&o.scrapeEvery, "scrape-every", 0, "start a scrape this often, as Prometheus does at its scrape_interval, so that refreshes change the text between scrapes (0: back to back)")
	flag.IntVar(&o.floorMin, "floor-min", 3000, "at least this many bare handshakes for the floor")
	flag.StringVar(&o.blackbox, "blackbox", "", "path of blackbox_exporter to run against the same listeners")
	flag.IntVar(&o.blackboxProbes, "blackbox-probes", 0, "probes through blackbox_exporter (default: as many as floor handshakes)")
	flag.IntVar(&o.files, "files", 0, "also read this many certificate files as one group: first read and rescans")
	flag.IntVar(&o.rescans, "rescans", 10, "rescans of the files measured")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the refresh cycles after the first to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile after the last refresh cycle to this file")
	flag.IntVar(&o.perAddress, "per-address", 30000, "listeners per loopback address (127.0.0.2, 127.0.0.3, ...), on ports outside the ephemeral range")
	flag.IntVar(&o.perProcess, "per-process", 15000, "listeners per child process, each listener a descriptor (capped below the open-file hard limit)")
	flag.DurationVar(&o.interval, "interval", time.Millisecond, "the exporter's refresh interval; the floor is paced to n handshakes per interval too (1ms: back to back)")
	flag.StringVar(&o.countOnly, "count-only", "", "floor or exporter: make -ops paced operations of that kind and exit, for counting instructions under valgrind")
	flag.IntVar(&o.ops, "ops", 1000, "operations made with -count-only")
	flag.BoolVar(&o.verifyCache, "verify-cache", true, "use the probe's verification cache")
	flag.DurationVar(&o.posture, "posture", 0, "measure posture scans instead, every endpoint scanned at this posture_interval: connections per scan, scan start times per tenth of the interval, a reload halfway, CPU and RSS")
	flag.DurationVar(&o.postureFor, "posture-for", 0, "how long the -posture run lasts (default 1.2 posture intervals)")
	flag.BoolVar(&o.floorBeside, "floor-beside", false, "also run the paced floor in a child process during the exporter's cycles, for a ratio measured over the same minutes (needs -interval of 2ms or more)")
	flag.BoolVar(&o.probe, "probe", false, "also measure /probe: as many requests as floor handshakes, over the listeners, at -concurrency")
	flag.BoolVar(&spreadFloor, "floor-spread", true, "pace the floor (and /probe, blackbox_exporter) spread over the whole interval, as the exporter's refreshes are from their second on; false: within one ±10% window, denser")
	flag.StringVar(&groups, "floor-groups", "default", "what the floor's handshakes offer: default (Go's, the hybrid first) or classical (X25519, P-256, P-384, P-521, as the exporter's certificate probe)")
	flag.Parse()
	if !o.verifyCache {
		probe.SetVerifyCacheSize(0)
	}
	var err error
	floorGroups, err = parseGroups(groups)
	if err == nil {
		o.scrapers, err = parseInts(scrapers)
	}
	switch {
	case err != nil:
	case o.countOnly != "":
		err = countOnly(o)
	case o.posture > 0:
		err = runPosture(o, os.Stdout)
	default:
		err = run(o, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// classical is what the exporter's certificate probe offers.
var classical = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}

func parseGroups(s string) ([]tls.CurveID, error) {
	switch s {
	case "default":
		return nil, nil
	case "classical":
		return classical, nil
	}
	return nil, fmt.Errorf("-floor-groups %q: want default or classical", s)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("-scrapers %q: want positive numbers separated by commas", s)
		}
		out = append(out, v)
	}
	return out, nil
}

func run(o options, w io.Writer) error {
	o.interval = max(o.interval, time.Millisecond)
	if o.n < 1 || o.concurrency < 1 || o.cycles < 1 || o.perAddress < 1 {
		return errors.New("-n, -concurrency, -cycles and -per-address must be at least 1")
	}
	fmt.Fprintln(w, machine())
	b, err := startBench(o)
	if err != nil {
		return err
	}
	defer b.close()
	p, l := b.p, b.l
	fmt.Fprintf(w, "%d TLS 1.3 listeners (ECDSA P-256 leaf signed by a P-256 root) %s\n", o.n, b.describe())
	fmt.Fprintf(w, "interval %s, floor %s\n\n", o.interval, o.pace())

	r := &report{w: w, o: o}
	floorOps := max(o.n, o.floorMin)
	if r.floor[0], err = measureFloor(l.addrs, p.roots, o.concurrency, floorOps, o.interval, l.pids()); err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	r.line("floor, before", r.floor[0], "bare verified crypto/tls handshakes")
	if err := r.exporter(p, l); err != nil {
		return err
	}
	if r.floor[1], err = measureFloor(l.addrs, p.roots, o.concurrency, floorOps, o.interval, l.pids()); err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	r.line("floor, after", r.floor[1], "the same, again")
	if o.files > 0 {
		if err := measureFiles(w, p.dir, o.files, max(o.rescans, 1)); err != nil {
			return fmt.Errorf("files: %w", err)
		}
	}
	if o.probe {
		c, err := measureProbe(p, l, o.concurrency, floorOps, o.interval)
		if err != nil {
			return fmt.Errorf("/probe: %w", err)
		}
		r.line("/probe", c, "GET /probe in this process, the HTTP client's CPU included")
		r.probe = &c
	}
	if o.blackbox != "" {
		probes := o.blackboxProbes
		if probes == 0 {
			probes = floorOps
		}
		bb, err := measureBlackbox(o.blackbox, p, l.addrs, o.concurrency, probes, o.interval, l.pids())
		if err != nil {
			return fmt.Errorf("blackbox_exporter: %w", err)
		}
		r.line("blackbox_exporter", bb, "tls_connect module, /probe over HTTP, CPU from /proc")
		r.blackbox = &bb
	}
	r.summary()
	fmt.Fprintf(w, "\n%s\n", loadavg())
	return nil
}

// exporter runs the collector: the first refresh, the measured cycles, the
// scrapes, and the stop.
func (r *report) exporter(p *pki, l *listeners) error {
	cfg, err := configFor(p, l.addrs, r.o.concurrency, r.o.interval, 0)
	if err != nil {
		return err
	}
	runtime.GC()
	debug.FreeOSMemory()
	if r.base, err = snapshot(); err != nil {
		return err
	}
	e, err := startExporter(cfg)
	if err != nil {
		return err
	}
	if r.o.floorBeside && schedule(1, 1, r.o.interval) != nil {
		r.startBeside = func() (*besideFloor, error) { return startBesideFloor(p, l.addrs, r.o) }
	}
	fmt.Fprintf(r.w, "\n%-22s %s\n", "exporter, idle", r.base)
	err = r.measure(e, selfMeter(l.pids()))
	if r.beside != nil {
		r.beside.stop()
	}
	if stopErr := e.stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return err
	}
	debug.FreeOSMemory()
	after, err := snapshot()
	fmt.Fprintf(r.w, "%-22s %s\n\n", "exporter, stopped", after)
	return err
}

// measure runs the first refresh and the cycles, then the scrapes.
func (r *report) measure(e *exporter, m meter) error {
	if r.startBeside != nil {
		// Started with the first refresh, so that its own start is over
		// before the first measured cycle; it is read from cycle 1 on.
		var err error
		if r.beside, err = r.startBeside(); err != nil {
			return err
		}
	}
	for k := 0; k <= r.o.cycles; k++ {
		c, err := r.cycle(e, m, k)
		if err != nil {
			return err
		}
		if k > 0 {
			r.steady = r.steady.add(c)
			continue
		}
		r.first = c
		if n, first := e.failing(); n > 0 {
			return fmt.Errorf("%d endpoints failed their refresh, so the run measures nothing; first: %s", n, first)
		}
		if err := r.startProfile(); err != nil {
			return err
		}
	}
	if err := r.stopProfile(); err != nil {
		return err
	}
	for _, s := range r.o.scrapers {
		if r.o.scrapes < 1 {
			break
		}
		res, err := e.scrape(m, s, r.o.scrapes, r.o.scrapeEvery)
		if err != nil {
			return fmt.Errorf("scraping: %w", err)
		}
		r.scrapes = append(r.scrapes, res)
	}
	var err error
	if r.afterScrapes, err = snapshot(); err != nil {
		return err
	}
	fmt.Fprintf(r.w, "%-22s %s\n", "after the scrapes", r.afterScrapes)
	return e.checkScrape()
}

func (r *report) startProfile() error {
	if r.o.cpuProfile == "" {
		return nil
	}
	f, err := os.Create(r.o.cpuProfile)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	r.profile = f
	return nil
}

// stopProfile ends the CPU profile and writes the heap profile, if asked.
func (r *report) stopProfile() error {
	if r.profile != nil {
		pprof.StopCPUProfile()
		if err := r.profile.Close(); err != nil {
			return err
		}
	}
	if r.o.memProfile == "" {
		return nil
	}
	f, err := os.Create(r.o.memProfile)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cycle waits for the k-th full refresh of every endpoint to complete.
func (r *report) cycle(e *exporter, m meter, k int) (cost, error) {
	before := e.coll.Refreshes()
	if k == 0 {
		before = 0
	}
	gcBefore := gcCPU()
	var besideBefore besideReading
	if r.beside != nil && k > 0 {
		var err error
		if besideBefore, err = r.beside.read(); err != nil {
			return cost{}, err
		}
	}
	stop, err := m.start()
	if err != nil {
		return cost{}, err
	}
	if k == 0 {
		e.run()
	}
	if err := e.waitRefreshes(uint64((k+1)*r.o.n), max(30*time.Minute, 3*r.o.interval)); err != nil {
		return cost{}, err
	}
	c, err := stop(int(e.coll.Refreshes() - before))
	if err != nil {
		return c, err
	}
	beside := ""
	if r.beside != nil && k > 0 {
		now, err := r.beside.read()
		if err != nil {
			return c, err
		}
		f := now.sub(besideBefore)
		r.besideSteady = r.besideSteady.add(f)
		beside = "; beside: no handshakes yet"
		if f.ops > 0 {
			beside = fmt.Sprintf("; beside: floor %.0f µs over %d, %.2fx", us(f.perOp()), f.ops, ratio(c.perOp(), f.perOp()))
		}
	}
	mem, err := snapshot()
	if err != nil {
		return c, err
	}
	r.mems = append(r.mems, mem)
	name := fmt.Sprintf("refresh cycle %d", k)
	if k == 0 {
		name = "first refresh"
	}
	gc := gcCPU() - gcBefore
	fmt.Fprintf(r.w, "%-22s %6.0f µs CPU/endpoint (%.2fx floor, GC %2.0f%% of it), wall %8s, listeners %3.0f%% of CPU; %s%s\n",
		name, us(c.perOp()), ratio(c.perOp(), r.floor[0].perOp()), 100*float64(gc)/float64(max(c.cpu, 1)),
		c.wall.Round(time.Millisecond), 100*c.serverShare(), mem, beside)
	return c, nil
}

// gcCPU is the CPU time this process (the exporter's, in the harness) has
// spent collecting garbage, as the runtime estimates it: marking a large
// live heap is a cost a bare handshake in a small process does not pay.
func gcCPU() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

// report gathers the phases and prints them.
type report struct {
	w            io.Writer
	o            options
	floor        [2]cost
	base         memory
	first        cost
	steady       cost
	mems         []memory // after each cycle
	afterScrapes memory
	scrapes      []scrapeResult
	blackbox     *cost
	probe        *cost
	profile      *os.File
	startBeside  func() (*besideFloor, error) // nil without -floor-beside
	beside       *besideFloor
	besideSteady cost // the floor beside over the measured cycles
}

func (r *report) line(name string, c cost, what string) {
	fmt.Fprintf(r.w, "%-22s %6.0f µs CPU each over %d, listeners %.0f µs each, wall %s (%s)\n",
		name, us(c.perOp()), c.ops, us(c.serverPerOp()), c.wall.Round(time.Millisecond), what)
}

func (r *report) floorPerOp() time.Duration { return (r.floor[0].perOp() + r.floor[1].perOp()) / 2 }

func (r *report) summary() {
	w, floor := r.w, r.floorPerOp()
	perRefresh := r.steady.perOp()
	fmt.Fprintf(w, "\nSummary, %d endpoints, concurrency %d\n", r.o.n, r.o.concurrency)
	fmt.Fprintf(w, "  floor (bare verified handshake):   %6.0f µs CPU per handshake (mean of before %.0f and after %.0f)\n",
		us(floor), us(r.floor[0].perOp()), us(r.floor[1].perOp()))
	fmt.Fprintf(w, "  exporter, per endpoint refresh:    %6.0f µs CPU = %.2fx the floor (%d cycles of %d; metrics rendered at store time included)\n",
		us(perRefresh), ratio(perRefresh, floor), r.o.cycles, r.o.n)
	if f := r.besideSteady; f.ops > 0 {
		fmt.Fprintf(w, "  floor beside, same minutes:        %6.0f µs CPU per handshake over %d; exporter %.2fx that (listeners shared)\n",
			us(f.perOp()), f.ops, ratio(perRefresh, f.perOp()))
	}
	fmt.Fprintf(w, "  exporter, first refresh:           %6.0f µs CPU = %.2fx the floor, %s wall for all %d endpoints\n",
		us(r.first.perOp()), ratio(r.first.perOp(), floor), r.first.wall.Round(time.Millisecond), r.o.n)
	fmt.Fprintf(w, "  refresh wall time, %d endpoints:  %s per cycle, interval %s (listeners took %.0f%% of the CPU)\n",
		r.o.n, (r.steady.wall / time.Duration(r.o.cycles)).Round(time.Millisecond), r.o.interval, 100*r.steady.serverShare())
	for _, s := range r.scrapes {
		extra := s.window.cpu - time.Duration(s.refreshes)*perRefresh
		pace := "back to back"
		if r.o.scrapeEvery > 0 {
			pace = "one started every " + r.o.scrapeEvery.String()
		}
		fmt.Fprintf(w, "  scrapes during refresh, %d at once, %s: median %s, p90 %s over %d, %s gzip; about %s CPU each\n",
			s.scrapers, pace, s.quantile(0.5).Round(100*time.Microsecond), s.quantile(0.9).Round(100*time.Microsecond),
			len(s.latencies), kib(s.bytes), (extra / time.Duration(len(s.latencies))).Round(100*time.Microsecond))
	}
	if n := len(r.mems); n > 0 {
		first, last := r.mems[0], r.mems[n-1]
		peak := first.rss
		for _, m := range r.mems {
			peak = max(peak, m.rss)
		}
		fmt.Fprintf(w, "  memory: idle %s; first refresh %s, live heap %s; cycle %d %s, live heap %s; peak RSS over the cycles %s\n",
			mib(r.base.rss), mib(first.rss), mib(int64(first.heap)), n-1, mib(last.rss), mib(int64(last.heap)), mib(peak))
		fmt.Fprintf(w, "  goroutines %d -> %d, fds %d -> %d from the first refresh to cycle %d; after the scrapes RSS %s\n",
			first.goroutines, last.goroutines, first.fds, last.fds, n-1, mib(r.afterScrapes.rss))
	}
	if c := r.probe; c != nil {
		fmt.Fprintf(w, "  /probe, per request:               %6.0f µs CPU = %.2fx the floor, %.0f requests/s at concurrency %d\n",
			us(c.perOp()), ratio(c.perOp(), floor), float64(c.ops)/c.wall.Seconds(), r.o.concurrency)
	}
	if bb := r.blackbox; bb != nil {
		fmt.Fprintf(w, "  blackbox_exporter, per probe:      %6.0f µs CPU = %.2fx the floor (%.2fx this exporter)\n",
			us(bb.perOp()), ratio(bb.perOp(), floor), ratio(bb.perOp(), perRefresh))
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(max(b, 1)) }

func kib(n int) string { return fmt.Sprintf("%.0f KiB", float64(n)/1024) }

// machine names what the numbers were measured on.
func machine() string {
	model := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("loadtest: %s, %d CPUs (%s), GOMAXPROCS %d, %s", runtime.Version(), runtime.NumCPU(), model,
		runtime.GOMAXPROCS(0), loadavg())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load average unknown: " + err.Error()
	}
	f := strings.Fields(string(b))
	return "load average " + strings.Join(f[:min(3, len(f))], " ")
}
