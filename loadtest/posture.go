package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// postureRun is -posture: the exporter with posture scans on, every
// endpoint scanned every -posture, for -posture-for. It counts the
// connections the scans cost at the listeners (TLS 1.2 and 1.3 with Go's
// default suites, as a Go server answers), records when each scan started
// (ssl_posture_last_run_timestamp_seconds, polled), reloads the same config
// halfway, and reads the exporter's CPU and RSS as it goes. Counts and
// start times do not depend on the machine's load; CPU does.
type postureRun struct {
	o       options
	e       *exporter
	l       *listeners
	t0      time.Time
	reload  time.Time
	starts  map[string]map[float64]bool // target: scan start times seen
	buckets []postureBucket             // per tenth of the interval
	peakRSS int64
	conns   connCounts    // the scans' connections: the listeners' less one per probe
	probed  time.Duration // when the first probe of every endpoint had finished
	probes  uint64
}

// postureBucket is what happened in one tenth of posture_interval.
type postureBucket struct {
	scans int
	cpu   time.Duration
	wall  time.Duration
}

func runPosture(o options, w io.Writer) error {
	if o.interval < time.Second {
		return fmt.Errorf("with -posture, set -interval to the probes' interval (e.g. -interval 10m), not %s", o.interval)
	}
	duration := o.postureFor
	if duration == 0 {
		duration = o.posture * 12 / 10
	}
	fmt.Fprintln(w, machine())
	b, err := startBench(o, childTLS12Env+"=1")
	if err != nil {
		return err
	}
	defer b.close()
	p, l := b.p, b.l
	fmt.Fprintf(w, "%d TLS 1.2+1.3 listeners (Go's default suites) %s; probes every %s, posture_interval %s, concurrency %d, run %s, reload at half the interval\n",
		o.n, b.describe(), o.interval, o.posture, o.concurrency, duration)
	cfg, err := configFor(p, l.addrs, o.concurrency, o.interval, o.posture)
	if err != nil {
		return err
	}
	e, err := startExporter(cfg)
	if err != nil {
		return err
	}
	r := &postureRun{o: o, e: e, l: l, starts: map[string]map[float64]bool{}}
	err = r.measure(duration, func() error {
		again, err := configFor(p, l.addrs, o.concurrency, o.interval, o.posture)
		if err == nil {
			err = e.coll.Apply(again)
		}
		return err
	})
	if stopErr := e.stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return err
	}
	return r.report(w)
}

// measure runs the exporter for d, polling every tick, and reloads once.
func (r *postureRun) measure(d time.Duration, reload func() error) error {
	before, err := r.l.counts()
	if err != nil {
		return err
	}
	m := selfMeter(nil)
	r.t0 = time.Now()
	r.e.run()
	tick := min(max(r.o.posture/100, time.Second), 10*time.Second)
	r.buckets = make([]postureBucket, int(d*10/r.o.posture)+1)
	for elapsed := time.Duration(0); elapsed < d; elapsed = time.Since(r.t0) {
		stop, err := m.start()
		if err != nil {
			return err
		}
		time.Sleep(tick)
		if r.reload.IsZero() && time.Since(r.t0) >= r.o.posture/2 {
			r.reload = time.Now()
			if err := reload(); err != nil {
				return fmt.Errorf("reload: %w", err)
			}
		}
		if err := r.poll(); err != nil {
			return err
		}
		c, err := stop(0)
		if err != nil {
			return err
		}
		if r.probed == 0 && r.e.coll.Refreshes() >= uint64(r.o.n) {
			r.probed = time.Since(r.t0)
		}
		b := &r.buckets[min(int(elapsed*10/r.o.posture), len(r.buckets)-1)]
		b.cpu, b.wall = b.cpu+c.cpu, b.wall+c.wall
	}
	r.probes = r.e.coll.Refreshes()
	after, err := r.l.counts()
	if err != nil {
		return err
	}
	// An address endpoint's probe is one handshake.
	r.conns = after.sub(before)
	r.conns.conns -= int64(r.probes)
	r.conns.ok -= int64(r.probes)
	return nil
}

// poll scrapes the start times of the last scans and the RSS.
func (r *postureRun) poll() error {
	mem, err := snapshot()
	if err != nil {
		return err
	}
	r.peakRSS = max(r.peakRSS, mem.rss)
	resp, err := http.Get(r.e.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	const prefix = `ssl_posture_last_run_timestamp_seconds{target="`
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		target, value, ok := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			return fmt.Errorf("parsing %q", sc.Text())
		}
		if r.starts[target] == nil {
			r.starts[target] = map[float64]bool{}
		}
		r.starts[target][v] = true
	}
	return sc.Err()
}

func (r *postureRun) report(w io.Writer) error {
	scans, first := 0, 0
	reloadWindow := 0
	for _, times := range r.starts {
		for t := range times {
			at := time.Unix(0, int64(t*1e9))
			scans++
			k := min(int(at.Sub(r.t0)*10/r.o.posture), len(r.buckets)-1)
			r.buckets[max(k, 0)].scans++
			if d := at.Sub(r.reload); d >= 0 && d < 10*time.Second {
				reloadWindow++
			}
		}
		first++
	}
	fmt.Fprintf(w, "\n%d scans started (%d targets scanned at least once) over %s\n", scans, first, time.Since(r.t0).Round(time.Second))
	fmt.Fprintf(w, "connections per scan at the listeners: %.2f (%.2f handshakes completed, %.2f refused), probes' own handshakes taken out\n",
		per(r.conns.conns, scans), per(r.conns.ok, scans), per(r.conns.failed, scans))
	fmt.Fprintf(w, "scans starting in the 10s after the reload: %d (the steady rate is %.1f per 10s)\n",
		reloadWindow, float64(r.o.n)/r.o.posture.Seconds()*10)
	probed := "not within the run"
	if r.probed > 0 {
		probed = "by " + r.probed.Round(time.Second).String()
	}
	fmt.Fprintf(w, "first probe of all %d endpoints done %s (polled every second or more)\n", r.o.n, probed)
	var cpu, wall time.Duration
	for _, b := range r.buckets {
		cpu, wall = cpu+b.cpu, wall+b.wall
	}
	fmt.Fprintf(w, "exporter CPU %s over %s (%.0f%% of one core) for %d scans and %d probes: at most %.1f ms per scan\n",
		cpu.Round(time.Second), wall.Round(time.Second), 100*float64(cpu)/float64(max(wall, 1)), scans, r.probes,
		float64(cpu)/float64(max(scans, 1))/1e6)
	fmt.Fprintf(w, "\n%-14s %8s %10s\n", "interval part", "scans", "CPU")
	for k, b := range r.buckets {
		if b.wall == 0 {
			continue
		}
		fmt.Fprintf(w, "%3d%% to %3d%%   %8d %9.0f%%\n", 10*k, 10*(k+1), b.scans, 100*float64(b.cpu)/float64(b.wall))
	}
	fmt.Fprintf(w, "\npeak RSS %s (CPU in %% of one core; the exporter, its scrapes and this harness's polls)\n%s\n", mib(r.peakRSS), loadavg())
	return nil
}

func per(n int64, d int) float64 { return float64(n) / float64(max(d, 1)) }
