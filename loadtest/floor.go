package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpcert/mcp_cert_exporter/collector"
)

// cost is what a phase took: wall time, this process's CPU and the
// listeners' CPU, for ops operations.
type cost struct {
	ops       int
	wall      time.Duration
	cpu       time.Duration
	serverCPU time.Duration
}

func (c cost) perOp() time.Duration       { return c.cpu / time.Duration(max(c.ops, 1)) }
func (c cost) serverPerOp() time.Duration { return c.serverCPU / time.Duration(max(c.ops, 1)) }

// serverShare is the listeners' part of all the CPU the phase used.
func (c cost) serverShare() float64 {
	return float64(c.serverCPU) / float64(max(c.cpu+c.serverCPU, 1))
}

func (c cost) add(o cost) cost {
	return cost{c.ops + o.ops, c.wall + o.wall, c.cpu + o.cpu, c.serverCPU + o.serverCPU}
}

// meter reads a phase's cost. cpu reads the CPU time of the process whose
// work is measured; serverPIDs are the listeners' processes, none for none.
type meter struct {
	serverPIDs []int
	cpu        func() (time.Duration, error)
}

func (m meter) start() (func(ops int) (cost, error), error) {
	wall := time.Now()
	cpu, err := m.cpu()
	if err != nil {
		return nil, err
	}
	server, err := m.server()
	if err != nil {
		return nil, err
	}
	return func(ops int) (cost, error) {
		c := cost{ops: ops, wall: time.Since(wall)}
		cpuNow, err := m.cpu()
		if err != nil {
			return c, err
		}
		serverNow, err := m.server()
		c.cpu, c.serverCPU = cpuNow-cpu, serverNow-server
		return c, err
	}, nil
}

// server is the listeners' CPU time: all their processes together.
func (m meter) server() (time.Duration, error) {
	var sum time.Duration
	for _, pid := range m.serverPIDs {
		cpu, err := procCPU(pid)
		if err != nil {
			return 0, err
		}
		sum += cpu
	}
	return sum, nil
}

func selfMeter(serverPIDs []int) meter {
	return meter{serverPIDs: serverPIDs, cpu: func() (time.Duration, error) { return selfCPU(), nil }}
}

// measureFloor makes total bare verified handshakes with crypto/tls, at the
// exporter's concurrency and pace, over the listeners in turn: the least any
// client that checks certificates pays.
// floorGroups is what the floor's handshakes offer: nil for Go's defaults,
// the post-quantum hybrid first (-floor-groups classical: the groups the
// exporter's certificate probe offers, for a like-for-like client).
var floorGroups []tls.CurveID

func measureFloor(addrs []string, roots *x509.CertPool, concurrency, total int, interval time.Duration, serverPIDs []int) (cost, error) {
	return runConcurrently(selfMeter(serverPIDs), addrs, concurrency, schedule(len(addrs), total, interval), total,
		floorHandshake(floorDialer(roots)))
}

// floorHandshake is the floor's operation: connect, handshake, verify, close.
func floorHandshake(d *tls.Dialer) func(addr string) error {
	return func(addr string) error {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// spreadFloor (-floor-spread, the default) starts each listener's rounds
// at a random point of one interval, as the exporter's refreshes are
// spread from their second one on (collector/scheduler.go, spreadGap);
// without it one round falls within the ±10% window, denser than the
// exporter's.
var spreadFloor = true

// schedule is when the exporter starts its refreshes of n endpoints after
// the first round, which starts them all at once: spread over an interval
// (spreadFloor), then each endpoint again interval ±10% after its previous
// start, on the nearest of the scheduler's ticks (collector/scheduler.go).
// The first total of these moments, counted from the earliest, pace the floor
// and blackbox_exporter as the exporter's measured cycles are paced. nil,
// back to back, for an interval under 2ms.
func schedule(n, total int, interval time.Duration) []time.Duration {
	if interval < 2*time.Millisecond {
		return nil
	}
	rounds := (total + n - 1) / n
	tick := collector.StartTick(interval)
	due := make([]time.Duration, 0, rounds*n)
	for range n {
		var at time.Duration
		if spreadFloor {
			at = time.Duration(rand.Int64N(int64(interval)))
		}
		for range rounds {
			at += interval + time.Duration((rand.Float64()*0.2-0.1)*float64(interval))
			due = append(due, collector.OnTick(at, tick))
		}
	}
	slices.Sort(due)
	due = due[:total]
	first := due[0]
	for i := range due {
		due[i] -= first
	}
	return due
}

// runConcurrently calls op on total addresses, cycling through addrs, from
// concurrency workers, and measures it. The first error fails the phase.
// With due times, the k-th op starts at the k-th (or as soon as a worker
// is free, if that is later); without, back to back.
func runConcurrently(m meter, addrs []string, concurrency int, due []time.Duration, total int, op func(addr string) error) (cost, error) {
	work := make(chan string, concurrency)
	var (
		wg       sync.WaitGroup
		failures atomic.Int64
		first    atomic.Value
	)
	stop, err := m.start()
	if err != nil {
		return cost{}, err
	}
	for range concurrency {
		wg.Go(func() {
			for addr := range work {
				if err := op(addr); err != nil {
					failures.Add(1)
					first.CompareAndSwap(nil, fmt.Sprintf("%s: %v", addr, err))
				}
			}
		})
	}
	start := time.Now()
	for i := range total {
		if due != nil {
			time.Sleep(time.Until(start.Add(due[i])))
		}
		work <- addrs[i%len(addrs)]
	}
	close(work)
	wg.Wait()
	c, err := stop(total)
	if err != nil {
		return c, err
	}
	if n := failures.Load(); n > 0 {
		return c, fmt.Errorf("%d of %d operations failed, the first: %v", n, total, first.Load())
	}
	return c, nil
}
