package collector

import (
	"context"
	"sync"
	"sync/atomic"
)

// workers run the scheduler's jobs on goroutines that outlive one job. A
// TLS handshake grows a new goroutine's stack from 8 KB to 32 KB, copying
// it twice, which cost about 4% of an endpoint refresh's CPU; a worker's
// stack has already grown. The scheduler's semaphore still bounds how many
// jobs run at once; workers only carry them.
type workers struct {
	tasks chan func()
	once  sync.Once
	n     atomic.Int64 // workers started and not yet gone
	wg    sync.WaitGroup
}

// do runs task on an idle worker, or on a new one while there are fewer
// than max, or else on the first that becomes idle. With max above the
// number of jobs allowed at once, some worker is always about to be idle.
// It reports false when ctx ended before a worker took the task.
func (w *workers) do(ctx context.Context, max int, task func()) bool {
	w.once.Do(func() { w.tasks = make(chan func()) })
	select {
	case w.tasks <- task:
		return true
	default:
	}
	if w.n.Load() < int64(max) {
		w.n.Add(1)
		w.wg.Add(1)
		go w.work(ctx, task)
		return true
	}
	select {
	case w.tasks <- task:
		return true
	case <-ctx.Done():
		return false
	}
}

// work runs tasks until ctx ends.
func (w *workers) work(ctx context.Context, task func()) {
	defer w.wg.Done()
	defer w.n.Add(-1)
	for {
		task()
		select {
		case task = <-w.tasks:
		case <-ctx.Done():
			return
		}
	}
}

// wait returns once every worker is gone, after ctx ended.
func (w *workers) wait() { w.wg.Wait() }
