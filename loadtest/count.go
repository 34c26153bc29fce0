package main

import (
	"fmt"
	"os"
	"time"
)

// countOnly makes o.ops operations of one kind, paced as in a measured run,
// and exits: the process to run under `valgrind --tool=callgrind`, whose
// instruction counts do not depend on the load of a shared machine. The
// listeners' child is not traced. Two runs with different -ops, subtracted,
// give the instructions per operation without the fixed cost of starting.
func countOnly(o options) error {
	o.interval = max(o.interval, time.Millisecond)
	if o.n < 1 || o.concurrency < 1 || o.ops < 1 || o.perAddress < 1 {
		return fmt.Errorf("-n, -concurrency, -ops and -per-address must be at least 1")
	}
	if o.countOnly != "floor" && o.countOnly != "exporter" {
		return fmt.Errorf("-count-only %q: want floor or exporter", o.countOnly)
	}
	b, err := startBench(o)
	if err != nil {
		return err
	}
	defer b.close()
	p, l := b.p, b.l
	start := time.Now()
	if o.countOnly == "floor" {
		_, err = measureFloor(l.addrs, p.roots, o.concurrency, o.ops, o.interval, nil)
	} else {
		err = refreshes(p, l, o)
	}
	fmt.Fprintf(os.Stderr, "loadtest: %d %s operations over %d listeners (%s) in %s, interval %s, floor %s\n",
		o.ops, o.countOnly, o.n, l.span(), time.Since(start).Round(time.Millisecond), o.interval, o.pace())
	return err
}

// refreshes runs the exporter until it has refreshed o.ops times, the first
// o.n of them at once at startup.
func refreshes(p *pki, l *listeners, o options) error {
	cfg, err := configFor(p, l.addrs, o.concurrency, o.interval, 0)
	if err != nil {
		return err
	}
	e, err := startExporter(cfg)
	if err != nil {
		return err
	}
	e.run()
	err = e.waitRefreshes(uint64(o.ops), max(30*time.Minute, 3*o.interval*time.Duration(o.ops/o.n+1)))
	if stopErr := e.stop(); err == nil {
		err = stopErr
	}
	if n, first := e.failing(); err == nil && n > 0 {
		err = fmt.Errorf("%d endpoints failed, the first: %s", n, first)
	}
	return err
}

// span names the listeners' first and last address.
func (l *listeners) span() string {
	return l.addrs[0] + " to " + l.addrs[len(l.addrs)-1]
}
