package collector

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// job is one schedule of a target: its refresh (a probe or a read) or its
// posture scan (target.go). run must honour ctx and store its own result.
type job interface {
	key() string
	interval() time.Duration
	run(ctx context.Context)
}

// delayed is a job whose first run waits: posture scans, spread so that a
// start, or a reload that adds many targets, does not scan them all at once.
type delayed interface {
	firstDelay() time.Duration
}

// jitterFraction keeps refreshes from falling into step again once
// spread (spreadGap): each gap is the interval ±10%.
const jitterFraction = 0.1

// scheduler runs each job on its interval, at most `limit` at once, from one
// timer: idle targets cost a heap entry, not a goroutine.
type scheduler struct {
	mu      sync.Mutex
	queue   entryHeap
	byKey   map[string]*entry
	sem     chan struct{}
	wake    chan struct{}
	running sync.WaitGroup
	workers workers
	now     func() time.Time
	epoch   time.Time // queued.at counts from it
}

type entry struct {
	job     job
	next    time.Time
	index   int // in the heap; -1 while running or removed
	removed bool
	ran     bool // has run once: its next gaps are jittered
}

func newScheduler(limit int) *scheduler {
	return &scheduler{
		byKey: map[string]*entry{},
		sem:   make(chan struct{}, limit),
		wake:  make(chan struct{}, 1),
		now:   time.Now,
		epoch: time.Now(),
	}
}

// set replaces the job set. Jobs whose key is new run at once, or after
// their first delay; kept jobs keep their schedule but take the new
// definition from their next run.
func (s *scheduler) set(jobs []job, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cap(s.sem) != limit {
		// Running jobs release into the channel they took from.
		s.sem = make(chan struct{}, limit)
	}
	keep := make(map[string]bool, len(jobs))
	now := s.now()
	for _, j := range jobs {
		keep[j.key()] = true
		if e, ok := s.byKey[j.key()]; ok {
			e.job = j
			continue
		}
		e := &entry{job: j, next: now, index: -1}
		if d, ok := j.(delayed); ok {
			e.next = now.Add(d.firstDelay())
		}
		s.byKey[j.key()] = e
		s.push(e)
	}
	for k, e := range s.byKey {
		if !keep[k] {
			e.removed = true
			if e.index >= 0 {
				heap.Remove(&s.queue, e.index)
			}
			delete(s.byKey, k)
		}
	}
	s.signal()
}

func (s *scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run dispatches due jobs until ctx ends, then waits for running ones.
func (s *scheduler) run(ctx context.Context) {
	defer s.workers.wait()
	defer s.running.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e, j, sem := s.nextDue(ctx, timer)
		if e == nil {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		s.running.Add(1)
		if !s.workers.do(ctx, cap(sem)+1, func() { s.execute(ctx, e, j, sem) }) {
			<-sem
			s.running.Done()
			return
		}
	}
}

func (s *scheduler) execute(ctx context.Context, e *entry, j job, sem chan struct{}) {
	defer s.running.Done()
	defer func() { <-sem }()
	start := s.now()
	j.run(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.removed || ctx.Err() != nil {
		return
	}
	gap := jittered(e.job.interval())
	if _, delayed := e.job.(delayed); !e.ran && !delayed {
		gap = spreadGap(e.job.interval())
	}
	e.ran = true
	e.next = start.Add(gap)
	s.push(e)
	if e.index == 0 {
		// Due before the one the dispatcher waits for. Otherwise its timer
		// stands: waking it after every run would cost a paced refresh a
		// goroutine switch (measured in BENCHMARKS.md).
		s.signal()
	}
}

// spreadGap is the gap after a new job's first run, made at once so that
// its metrics come without waiting: anywhere in [d/2, 3d/2). Jobs added
// together (a start, a reload that adds thousands) then run spread over a
// whole interval, where ±10% jitter alone would leave them in one burst
// for dozens of intervals (measured: 100,000 endpoints every 5 minutes
// still ran in 2-minute bursts after 5 cycles).
func spreadGap(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Float64()*float64(d))
}

func jittered(d time.Duration) time.Duration {
	spread := float64(d) * jitterFraction
	return d + time.Duration((rand.Float64()*2-1)*spread)
}

// nextDue blocks until the earliest job is due and pops it, waiting on
// timer (one for all the dispatches: reset, not made anew for each).
func (s *scheduler) nextDue(ctx context.Context, timer *time.Timer) (*entry, job, chan struct{}) {
	for {
		s.mu.Lock()
		wait := time.Hour
		if len(s.queue) > 0 {
			wait = s.queue[0].at - s.now().Sub(s.epoch)
			if wait <= 0 {
				e := heap.Pop(&s.queue).(*entry)
				j, sem := e.job, s.sem
				s.mu.Unlock()
				return e, j, sem
			}
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil, nil, nil
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// push queues e at e.next, on the nearest tick of its interval.
func (s *scheduler) push(e *entry) {
	heap.Push(&s.queue, queued{at: OnTick(e.next.Sub(s.epoch), StartTick(e.job.interval())), e: e})
}

// StartTick is how finely the starts of jobs on interval d are placed in
// time: a hundredth of d, at most startTickMax. The jobs due within one
// tick start together, from one wake of the dispatcher. Started alone,
// each paced refresh found the process idle, and its connect, its reads
// and its dispatch each woke a thread: about as much CPU as its
// handshake's cryptography (BENCHMARKS.md, "Session 8: starts on ticks").
// A tick is a tenth of an interval's ±10% jitter, and the concurrency limit
// still bounds a tick's starts. The load harness paces its floor on the same
// ticks.
func StartTick(d time.Duration) time.Duration { return max(min(startTickMax, d/100), time.Nanosecond) }

const startTickMax = time.Second

// OnTick rounds at to the nearest multiple of tick, so that ticks add no
// drift to a job's interval on average.
func OnTick(at, tick time.Duration) time.Duration {
	if at <= 0 {
		return at
	}
	return (at + tick/2) / tick * tick
}

// entryHeap orders entries by next run time, kept beside each pointer so
// that comparisons read the heap's array only: with 100,000 entries each
// pointer followed was a cache miss (0.9% of the CPU in a profile).
type entryHeap []queued

// queued is an entry and its next run, from the scheduler's epoch on the
// monotonic clock, as time.Time.Before compares.
type queued struct {
	at time.Duration
	e  *entry
}

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].e.index, h[j].e.index = i, j
}
func (h *entryHeap) Push(x any) {
	q := x.(queued)
	q.e.index = len(*h)
	*h = append(*h, q)
}
func (h *entryHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = queued{}
	*h = old[:len(old)-1]
	q.e.index = -1
	return q.e
}
