package memqueue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Timer is followupd's EventBridge Scheduler: it keeps one one-shot schedule
// per followup and, when a schedule's time comes, sends the followup's
// Message to the Queue and forgets the schedule.
//
// It is memory only: at start the runner rebuilds it from the store, with
// Load for every pending followup (Store.Pending(ctx, timer.Load)).
// Schedules wait in one min-heap watched by one goroutine with one alarm,
// on the Queue's clock.
type Timer struct {
	queue *Queue
	poke  chan struct{}
	quit  chan struct{}
	loop  sync.WaitGroup

	mu        sync.Mutex
	schedules map[string]*timerEntry // by followup id
	due       dueHeap[*timerEntry]
	started   bool
	stopped   bool
}

// NewTimer returns a Timer that sends to q, keeping time with q's clock.
// Schedules are taken at once and fire once Start is called, except those
// already due, which are sent to q straight away.
func NewTimer(q *Queue) *Timer {
	return &Timer{
		queue:     q,
		poke:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		schedules: make(map[string]*timerEntry),
	}
}

// Start starts firing schedules. It does nothing the second time, or after
// Stop.
func (t *Timer) Start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started || t.stopped {
		return
	}
	t.started = true
	t.loop.Go(func() { waitLoop(t.queue.clock, t.poke, t.quit, t.fireDue) })
}

// Stop stops firing schedules and waits for the Timer's goroutine to end.
// Later schedules return ErrStopped.
func (t *Timer) Stop() {
	t.mu.Lock()
	if !t.stopped {
		t.stopped = true
		close(t.quit)
	}
	t.mu.Unlock()
	t.loop.Wait()
}

// Schedule arranges for f's Message to reach the queue at f.NextAttemptAt
// (f.RunAt when that is unset), replacing f's earlier schedule if any. A
// time that has come sends the message at once. It returns ErrStopped after
// Stop, or the queue's error.
func (t *Timer) Schedule(ctx context.Context, f *followup.Followup) error {
	if f.ID == "" {
		return errors.New("schedule followup: no id")
	}
	at := f.NextAttemptAt
	if at.IsZero() {
		at = f.RunAt
	}
	return t.Load(followup.MessageFor(f), at)
}

// Load schedules m for due, replacing the schedule of m.FollowupID if any:
// Schedule without a record, for rebuilding the Timer from the store.
func (t *Timer) Load(m followup.Message, due time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return ErrStopped
	}
	if !due.After(t.queue.clock.Now()) {
		t.remove(m.FollowupID)
		return t.queue.Send(m, 0)
	}
	e, ok := t.schedules[m.FollowupID]
	if !ok {
		e = &timerEntry{index: -1}
		t.schedules[m.FollowupID] = e
	}
	e.msg = m
	e.due = t.queue.epoch.offset(due)
	if t.due.place(e) {
		wake(t.poke)
	}
	return nil
}

// Unschedule removes the schedule of followup id; once it returns, the
// schedule does not fire. An id without one is not an error.
func (t *Timer) Unschedule(ctx context.Context, id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.remove(id)
	return nil
}

// Len returns how many schedules wait.
func (t *Timer) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.schedules)
}

func (t *Timer) remove(id string) {
	if e, ok := t.schedules[id]; ok {
		t.due.remove(e)
		delete(t.schedules, id)
	}
}

// fireDue sends every schedule due by now and returns when the next one is
// due. It is waitLoop's release. Sending under the lock is what lets
// Unschedule promise that a schedule it removed never fires.
func (t *Timer) fireDue(now time.Time) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	off := t.queue.epoch.offset(now)
	for {
		e, ok := t.due.popDue(off)
		if !ok {
			break
		}
		delete(t.schedules, e.msg.FollowupID)
		// The only error is a queue shutting down, which drops its
		// messages anyway; the store still has the followup, and the next
		// start schedules it again.
		_ = t.queue.Send(e.msg, 0)
	}
	next, ok := t.due.next()
	return t.queue.epoch.time(next), ok
}

// timerEntry is one schedule.
type timerEntry struct {
	msg   followup.Message
	due   int64 // epoch offset
	index int   // in Timer.due; -1 when not there
}

func (e *timerEntry) dueOffset() int64 { return e.due }
func (e *timerEntry) heapIndex() int   { return e.index }
func (e *timerEntry) setIndex(i int)   { e.index = i }

var _ followup.Scheduler = (*Timer)(nil)
