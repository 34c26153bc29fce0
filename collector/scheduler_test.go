package collector

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

type countJob struct {
	k       string
	every   time.Duration
	runs    atomic.Int64
	block   chan struct{}
	active  *atomic.Int64
	maxSeen *atomic.Int64
}

func (j *countJob) key() string             { return j.k }
func (j *countJob) interval() time.Duration { return j.every }
func (j *countJob) run(ctx context.Context) {
	if j.active != nil {
		n := j.active.Add(1)
		for {
			m := j.maxSeen.Load()
			if n <= m || j.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		defer j.active.Add(-1)
	}
	if j.block != nil {
		select {
		case <-j.block:
		case <-ctx.Done():
		}
	}
	j.runs.Add(1)
}

// eventually polls cond; it bounds the wait, it does not time anything.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, what, cond)
}

func eventuallyWithin(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startScheduler(t *testing.T, limit int, jobs ...job) (*scheduler, context.CancelFunc) {
	s := newScheduler(limit)
	s.set(jobs, limit)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, cancel
}

func TestSchedulerRunsEveryJobAtStartAndAgain(t *testing.T) {
	fast := &countJob{k: "fast", every: 20 * time.Millisecond}
	slow := &countJob{k: "slow", every: time.Hour}
	startScheduler(t, 4, fast, slow)
	eventually(t, "first refresh of both at startup", func() bool { return fast.runs.Load() >= 1 && slow.runs.Load() == 1 })
	eventually(t, "fast job refreshed on its own interval", func() bool { return fast.runs.Load() >= 3 })
	if n := slow.runs.Load(); n != 1 {
		t.Fatalf("hourly job ran %d times; want exactly the startup run", n)
	}
}

func TestSchedulerBoundsConcurrency(t *testing.T) {
	var active, maxSeen atomic.Int64
	block := make(chan struct{})
	var jobs []job
	var all []*countJob
	for i := range 10 {
		j := &countJob{k: string(rune('a' + i)), every: time.Hour, block: block, active: &active, maxSeen: &maxSeen}
		jobs, all = append(jobs, j), append(all, j)
	}
	startScheduler(t, 3, jobs...)
	eventually(t, "three jobs in flight", func() bool { return active.Load() == 3 })
	close(block)
	eventually(t, "all jobs ran", func() bool {
		for _, j := range all {
			if j.runs.Load() != 1 {
				return false
			}
		}
		return true
	})
	if m := maxSeen.Load(); m != 3 {
		t.Fatalf("max in flight = %d, want 3", m)
	}
}

func TestSchedulerSetKeepsScheduleAndDropsRemoved(t *testing.T) {
	kept := &countJob{k: "kept", every: time.Hour}
	gone := &countJob{k: "gone", every: 10 * time.Millisecond}
	s, _ := startScheduler(t, 2, kept, gone)
	eventually(t, "startup runs", func() bool { return kept.runs.Load() == 1 && gone.runs.Load() >= 1 })
	added := &countJob{k: "added", every: time.Hour}
	keptAgain := &countJob{k: "kept", every: time.Hour}
	s.set([]job{keptAgain, added}, 2)
	eventually(t, "new job runs at once", func() bool { return added.runs.Load() == 1 })
	n := gone.runs.Load()
	time.Sleep(50 * time.Millisecond) // give a removed 10ms job the chance to misbehave
	if gone.runs.Load() > n+1 {
		t.Fatalf("removed job kept running: %d runs after removal", gone.runs.Load()-n)
	}
	if keptAgain.runs.Load() != 0 || kept.runs.Load() != 1 {
		t.Fatalf("kept job re-ran on set: old %d new %d", kept.runs.Load(), keptAgain.runs.Load())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byKey) != 2 {
		t.Fatalf("scheduler tracks %d keys, want 2", len(s.byKey))
	}
}

func TestJitterStaysWithinTenPercent(t *testing.T) {
	for range 1000 {
		d := jittered(time.Minute)
		if d < 54*time.Second || d > 66*time.Second {
			t.Fatalf("jittered(1m) = %s, outside ±10%%", d)
		}
	}
}

func TestSchedulerStopsRunningJobsOnCancel(t *testing.T) {
	stuck := &countJob{k: "stuck", every: time.Hour, block: make(chan struct{})}
	s := newScheduler(1)
	s.set([]job{stuck}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	eventually(t, "job started", func() bool { return true })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// Jobs run on reused workers: however many runs, no more workers than jobs
// allowed at once plus one, and none left once the scheduler stopped.
func TestSchedulerReusesWorkersAndStopsThem(t *testing.T) {
	var jobs []job
	var all []*countJob
	for i := range 20 {
		j := &countJob{k: string(rune('a' + i)), every: time.Millisecond}
		jobs, all = append(jobs, j), append(all, j)
	}
	s := newScheduler(3)
	s.set(jobs, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	var most int64
	eventually(t, "every job ran ten times", func() bool {
		most = max(most, s.workers.n.Load())
		for _, j := range all {
			if j.runs.Load() < 10 {
				return false
			}
		}
		return true
	})
	cancel()
	<-done
	if most > 4 {
		t.Errorf("%d workers for 3 jobs at once", most)
	}
	if n := s.workers.n.Load(); n != 0 {
		t.Errorf("%d workers left after the scheduler stopped", n)
	}
}

// Jobs that start together run their second time spread over a whole
// interval, then keep their interval ±10%; delayed jobs (posture scans),
// already spread by their first delay, are only jittered.
func TestSchedulerSpreadsJobsStartedTogether(t *testing.T) {
	const n = 200
	var jobs []job
	for i := range n {
		jobs = append(jobs, &countJob{k: fmt.Sprint("ep", i), every: time.Hour})
	}
	scan := delayedJob{&countJob{k: "posture", every: time.Hour}}
	s, _ := startScheduler(t, 8, append(jobs, scan)...)
	start := time.Now()
	eventually(t, "every first run done", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.byKey {
			if !e.ran || e.index < 0 {
				return false
			}
		}
		return true
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	var tenths [10]int
	for _, j := range jobs {
		gap := s.byKey[j.key()].next.Sub(start)
		if gap < 29*time.Minute || gap > 91*time.Minute {
			t.Fatalf("%s runs again in %s, outside [30m, 90m)", j.key(), gap)
		}
		tenths[min(int((gap-30*time.Minute)/(6*time.Minute)), 9)]++
	}
	for i, c := range tenths {
		if c < n/40 { // n/10 expected in each
			t.Errorf("only %d of %d second runs in tenth %d of the interval: %v", c, n, i, tenths)
		}
	}
	if gap := s.byKey[scan.key()].next.Sub(start); gap < 53*time.Minute || gap > 67*time.Minute {
		t.Errorf("posture scan runs again in %s, want the interval ±10%%", gap)
	}
}

// delayedJob is a job with a first delay, as posture scans have.
type delayedJob struct{ *countJob }

func (delayedJob) firstDelay() time.Duration { return 0 }

func TestSpreadGapCoversAnInterval(t *testing.T) {
	lo, hi := time.Hour, time.Duration(0)
	for range 1000 {
		d := spreadGap(time.Minute)
		if d < 30*time.Second || d >= 90*time.Second {
			t.Fatalf("spreadGap(1m) = %s, outside [30s, 90s)", d)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo > 33*time.Second || hi < 87*time.Second {
		t.Errorf("1000 gaps only spanned %s to %s", lo, hi)
	}
}

// Jobs are queued on their interval's tick, the nearest to when they are
// due, so those due within one tick start from one wake of the dispatcher.
func TestSchedulerQueuesJobsOnTicks(t *testing.T) {
	cases := []struct {
		every, tick time.Duration
	}{
		{time.Hour, time.Second},
		{5 * time.Minute, time.Second},
		{time.Minute, 600 * time.Millisecond},
		{10 * time.Second, 100 * time.Millisecond},
		{20 * time.Millisecond, 200 * time.Microsecond},
	}
	for _, c := range cases {
		if got := StartTick(c.every); got != c.tick {
			t.Errorf("StartTick(%s) = %s, want %s", c.every, got, c.tick)
		}
		s := newScheduler(1)
		byAt := map[time.Duration]int{}
		for i := range 50 {
			e := &entry{job: &countJob{k: fmt.Sprint(i), every: c.every}, next: s.epoch.Add(time.Duration(i) * c.tick / 10)}
			s.push(e)
			at := s.queue[e.index].at
			if at%c.tick != 0 || (at-e.next.Sub(s.epoch)).Abs() > c.tick/2 {
				t.Fatalf("interval %s: due at +%s, queued at +%s, want the nearest multiple of %s", c.every, e.next.Sub(s.epoch), at, c.tick)
			}
			byAt[at]++
		}
		if len(byAt) != 6 { // 0 to 4.9 ticks: the nearest of six ticks
			t.Errorf("interval %s: 50 jobs due over 5 ticks queued at %d moments, want 6: %v", c.every, len(byAt), byAt)
		}
	}
}
