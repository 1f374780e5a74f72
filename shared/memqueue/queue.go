package memqueue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Defaults of QueueOptions.
const (
	// DefaultWorkers is high because a fire spends most of its time waiting
	// on fsyncs that concurrent writes share (group commit): the more calls
	// wait together, the more each fsync serves. BenchmarkQueueBurst has
	// 10,000 fires of two such writes each finish within about 0.1 s with
	// 1000 workers, and within about 1 s with 64. Workers come and go with
	// the work, so an idle queue costs none.
	DefaultWorkers = 1000
	// DefaultDeadLetterWorkers is enough for the rare dead letter.
	DefaultDeadLetterWorkers = 4
)

// ErrStopped is returned by a send to a Queue that is shutting down, and by
// a schedule on a stopped Timer.
var ErrStopped = errors.New("queue or timer stopped")

// Handler consumes one delivery and says what becomes of the message: Ack
// deletes it, RetryAfter hides it for a while.
type Handler func(ctx context.Context, d Delivery) followup.Verdict

// Delivery is one receive of a message, as an SQS consumer sees it. Each
// delivery has its own copy of the body and attributes.
type Delivery struct {
	// MessageID names the message, the same on every receive and on the
	// dead-letter side, and unique across restarts of the process.
	MessageID string
	// Body is the message as sent: a followup.Message in JSON from Send,
	// or whatever SendRaw or SendDeadLetter was given.
	Body []byte
	// Attributes are those given to SendRaw or SendDeadLetter.
	Attributes map[string]string
	// ReceiveCount counts the receives of the message, this one included,
	// from 1. It goes on counting on the dead-letter side.
	ReceiveCount int
}

// Followup is d as the followup consumers take it.
func (d Delivery) Followup() followup.Delivery {
	return followup.Delivery{Body: d.Body, Attributes: d.Attributes, ReceiveCount: d.ReceiveCount}
}

// QueueOptions configures a Queue. Zero values take the defaults.
type QueueOptions struct {
	// Handler consumes the queue (the fire logic). Without one, messages
	// wait where Stats counts them.
	Handler Handler
	// DeadLetter consumes the dead-letter side (the dlq logic). Without
	// one, dead letters wait where Stats counts them.
	DeadLetter Handler
	// MaxReceiveCount is the redrive limit: a message that has been
	// received this many times moves to the dead-letter side when it next
	// becomes visible, instead of reaching Handler again, as SQS's redrive
	// policy does. Zero keeps every message until Handler deletes it.
	MaxReceiveCount int
	// Workers is how many Handler calls may run at once: one goroutine
	// each, started when a message becomes visible and none is free, gone
	// when nothing is visible.
	Workers int
	// DeadLetterWorkers is how many DeadLetter calls may run at once.
	DeadLetterWorkers int
	// VisibilityTimeout hides a received message while its handler runs.
	// A call that is still running when it ends has its context cancelled
	// and the message becomes visible again (or moves to the dead-letter
	// side); the call's verdict then no longer counts. A call that panics
	// leaves its message hidden until then, like a consumer that crashed.
	// Set it above the longest handler call (followup.Timing.Visibility);
	// zero means that of the default dispatch timeout.
	VisibilityTimeout time.Duration
	// Clock tells the time; default SystemClock.
	Clock Clock
	// Logger hears about handlers that panic; default slog.Default().
	Logger *slog.Logger
}

// QueueStats is a Queue's depth, for metrics, in the terms of SQS.
type QueueStats struct {
	// Visible messages wait for a Handler worker.
	Visible int
	// InFlight messages have been received and not deleted: a Handler
	// call has them, or they wait out a retry.
	InFlight int
	// Delayed messages were sent with a delay that has not passed.
	Delayed int
	// DeadLetter counts the messages of the dead-letter side, whatever
	// their state.
	DeadLetter int
}

// Queue is an in-process message queue with the SQS semantics the fire and
// dlq logic rely on, so followupd runs the code path of the Lambda
// functions: delivery delays, at-least-once delivery with a receive count, a
// visibility timeout that a verdict sets (RetryAfter) or that runs out (a
// handler that hangs or panics), and redrive to a dead-letter side after
// MaxReceiveCount receives.
//
// It is memory only. Shutdown drops the messages still queued: the store is
// the source of truth, and the runner rebuilds the queue from it at start
// (through the Timer, which sends what is due).
//
// Messages that wait for a time (delayed, received, or hidden for a retry)
// sit in one min-heap watched by one goroutine with one alarm; none costs a
// goroutine, and each costs about 64 bytes plus its body and a heap slot.
type Queue struct {
	// fire and dead are the queue itself and its dead-letter side.
	fire, dead  side
	maxReceives int
	visibility  time.Duration
	clock       Clock
	epoch       epoch
	log         *slog.Logger
	idPrefix    string

	// base is the parent of every handler call's context; abort cancels
	// it when Shutdown runs out of time.
	base       context.Context
	abort      context.CancelFunc
	poke       chan struct{}
	quit       chan struct{}
	goroutines sync.WaitGroup

	mu       sync.Mutex
	waiting  dueHeap[*envelope]
	calls    map[receipt]context.CancelFunc // running handler calls
	seq      uint64
	started  bool
	stopping bool
}

// side is the queue itself or its dead-letter side: a handler, its
// workers and its messages. Fields after handler are guarded by the
// queue's mu.
type side struct {
	name    string
	handler Handler
	workers int // the most handler calls at once
	ready   readyList
	active  int            // workers running
	counts  [msgStates]int // messages per state, for Stats
}

// NewQueue returns a Queue that takes messages at once and delivers them
// once Start is called.
func NewQueue(opts QueueOptions) *Queue {
	clock := opts.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	base, abort := context.WithCancel(context.Background())
	return &Queue{
		fire:        side{name: "fire", handler: opts.Handler, workers: positiveOr(opts.Workers, DefaultWorkers)},
		dead:        side{name: "dead_letter", handler: opts.DeadLetter, workers: positiveOr(opts.DeadLetterWorkers, DefaultDeadLetterWorkers)},
		maxReceives: max(opts.MaxReceiveCount, 0),
		visibility:  positiveOr(opts.VisibilityTimeout, followup.NewTiming(0).Visibility),
		clock:       clock,
		epoch:       epoch{zero: clock.Now()},
		log:         log,
		idPrefix:    fmt.Sprintf("%016x-", rand.Uint64()),
		base:        base,
		abort:       abort,
		poke:        make(chan struct{}, 1),
		quit:        make(chan struct{}),
		calls:       make(map[receipt]context.CancelFunc),
	}
}

// Start starts delivering: the workers and the goroutine that makes
// waiting messages visible. It does nothing the second time, or after
// Shutdown.
func (q *Queue) Start() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started || q.stopping {
		return
	}
	q.started = true
	q.goroutines.Go(func() { waitLoop(q.clock, q.poke, q.quit, q.releaseDue) })
	for _, s := range []*side{&q.fire, &q.dead} {
		for range s.ready.len() {
			q.addWorker(s)
		}
	}
}

// Shutdown stops taking messages and waits for the running handler calls
// to return. When ctx ends first it cancels their contexts and returns
// ctx's error without waiting further. Messages still queued are dropped.
func (q *Queue) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	if !q.stopping {
		q.stopping = true
		close(q.quit)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() {
		q.goroutines.Wait()
		close(done)
	}()
	defer q.abort()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shut down queue: %w", ctx.Err())
	}
}

// Send queues m's JSON, visible after delay.
func (q *Queue) Send(m followup.Message, delay time.Duration) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("send followup %s: %w", m.FollowupID, err)
	}
	return q.send(body, nil, delay, false)
}

// SendFire queues any body with attributes, visible after delay: a fire
// message sent again by a consumer, or what a test puts on the queue. It
// implements followup.Queues.
func (q *Queue) SendFire(_ context.Context, body []byte, attrs map[string]string, delay time.Duration) error {
	return q.send(bytes.Clone(body), maps.Clone(attrs), delay, false)
}

// SendDeadLetter puts a message straight on the dead-letter side, as the
// fire path does when a followup's attempts ran out, and as a producer
// with its own dead-letter target (EventBridge Scheduler) does. It
// implements followup.Queues.
func (q *Queue) SendDeadLetter(_ context.Context, body []byte, attrs map[string]string) error {
	return q.send(bytes.Clone(body), maps.Clone(attrs), 0, true)
}

// Stats returns the queue's depth.
func (q *Queue) Stats() QueueStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	c, dead := q.fire.counts, q.dead.counts
	return QueueStats{
		Visible:    c[msgVisible],
		InFlight:   c[msgReceived] + c[msgHidden],
		Delayed:    c[msgDelayed],
		DeadLetter: dead[msgDelayed] + dead[msgVisible] + dead[msgReceived] + dead[msgHidden],
	}
}

func (q *Queue) send(body []byte, attrs map[string]string, delay time.Duration, dead bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopping {
		return ErrStopped
	}
	q.seq++
	e := &envelope{body: body, attrs: attrs, seq: q.seq, index: -1, dead: dead}
	if delay <= 0 {
		q.makeVisible(e)
		return nil
	}
	q.move(e, msgDelayed)
	q.hide(e, q.clock.Now().Add(delay))
	return nil
}

// addWorker starts a worker for side s, unless the queue is not running,
// s has no handler, or it has all the workers it may have.
func (q *Queue) addWorker(s *side) {
	if !q.started || q.stopping || s.handler == nil || s.active >= s.workers {
		return
	}
	s.active++
	q.goroutines.Go(func() { q.work(s) })
}

// work is one worker of side s: it receives visible messages one at a time
// until none is left or the queue shuts down.
func (q *Queue) work(s *side) {
	q.mu.Lock()
	defer q.mu.Unlock()
	defer func() { s.active-- }()
	for s.ready.len() > 0 && !q.stopping {
		e := s.ready.pop()
		r, ctx, cancel := q.receive(e)
		q.mu.Unlock()
		// body, attrs and seq never change once sent: no lock needed.
		v, ok := q.call(ctx, s, Delivery{
			MessageID:    q.idPrefix + strconv.FormatUint(e.seq, 10),
			Body:         bytes.Clone(e.body),
			Attributes:   maps.Clone(e.attrs),
			ReceiveCount: int(r.n),
		})
		cancel()
		q.mu.Lock()
		q.finish(r, v, ok)
	}
}

// receive hands e to a handler call: it counts the receive and hides e for
// the visibility timeout.
func (q *Queue) receive(e *envelope) (receipt, context.Context, context.CancelFunc) {
	e.receives++
	q.move(e, msgReceived)
	q.hide(e, q.clock.Now().Add(q.visibility))
	ctx, cancel := context.WithCancel(q.base)
	r := receipt{e: e, n: e.receives}
	q.calls[r] = cancel
	return r, ctx, cancel
}

// call runs side s's handler. A panic is recovered and logged (ok false):
// one bad message must not stop the process.
func (q *Queue) call(ctx context.Context, s *side, d Delivery) (v followup.Verdict, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			q.log.Error("queue handler panicked; the message returns after its visibility timeout",
				"queue", s.name, "message_id", d.MessageID, "receive_count", d.ReceiveCount,
				"panic", describePanic(p), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	return s.handler(ctx, d), true
}

// describePanic says what a panic was without its value, which may carry a
// message body or a prompt: only the runtime's own errors are shown.
func describePanic(p any) string {
	if err, ok := p.(runtime.Error); ok {
		return err.Error()
	}
	return fmt.Sprintf("%T", p)
}

// finish applies the verdict of receipt r's call (ok false: it panicked).
func (q *Queue) finish(r receipt, v followup.Verdict, ok bool) {
	delete(q.calls, r)
	e := r.e
	if e.state != msgReceived || e.receives != r.n {
		// The call outlived the visibility timeout and the message went
		// back to the queue: only the latest receive may settle it.
		return
	}
	switch {
	case !ok:
		q.move(e, msgHidden) // until the visibility timeout set at receive
	case v.Retry:
		q.move(e, msgHidden)
		q.hide(e, q.clock.Now().Add(v.After))
	default:
		q.waiting.remove(e)
		q.move(e, msgGone)
	}
}

// releaseDue makes visible every waiting message due by now and returns
// when the next one is due. It is waitLoop's release.
func (q *Queue) releaseDue(now time.Time) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	off := q.epoch.offset(now)
	for {
		e, ok := q.waiting.popDue(off)
		if !ok {
			break
		}
		if e.state == msgReceived {
			// The handler call outlived the visibility timeout. Cancel it,
			// so a handler that watches its context gives up, and let
			// another receive have the message, as SQS would.
			if cancel := q.calls[receipt{e: e, n: e.receives}]; cancel != nil {
				cancel()
			}
		}
		q.makeVisible(e)
	}
	next, ok := q.waiting.next()
	return q.epoch.time(next), ok
}

// makeVisible queues e for a worker of its side, first moving it to the
// dead-letter side when it has used up its receives.
func (q *Queue) makeVisible(e *envelope) {
	if !e.dead && q.maxReceives > 0 && int(e.receives) >= q.maxReceives {
		q.move(e, msgGone)
		e.dead = true
	}
	q.move(e, msgVisible)
	s := q.sideOf(e)
	s.ready.push(e)
	q.addWorker(s)
}

// hide keeps e in the waiting heap until the given time.
func (q *Queue) hide(e *envelope, until time.Time) {
	e.due = q.epoch.offset(until)
	if q.waiting.place(e) {
		wake(q.poke)
	}
}

// move changes e's state and the counts Stats reads (those of msgGone mean
// nothing).
func (q *Queue) move(e *envelope, to msgState) {
	s := q.sideOf(e)
	s.counts[e.state]--
	e.state = to
	s.counts[to]++
}

// sideOf returns the side e is on.
func (q *Queue) sideOf(e *envelope) *side {
	if e.dead {
		return &q.dead
	}
	return &q.fire
}

// msgState is where a message is in its life on the queue.
type msgState uint8

const (
	msgGone     msgState = iota // not sent yet, or deleted
	msgDelayed                  // sent with a delay that has not passed
	msgVisible                  // waiting for a worker
	msgReceived                 // a handler call has it
	msgHidden                   // received, then hidden for a retry or after a panic
	msgStates
)

// envelope is one message on the Queue, kept to 64 bytes (plus its body)
// since a hundred thousand may wait at once.
type envelope struct {
	body     []byte
	attrs    map[string]string
	seq      uint64 // numbers the MessageID
	due      int64  // epoch offset when delayed, received or hidden: when it becomes visible
	receives int32
	index    int32 // in Queue.waiting; -1 when not there
	state    msgState
	dead     bool // on the dead-letter side
}

func (e *envelope) dueOffset() int64 { return e.due }
func (e *envelope) heapIndex() int   { return int(e.index) }
func (e *envelope) setIndex(i int)   { e.index = int32(i) }

// receipt names one receive of a message, as an SQS receipt handle does.
type receipt struct {
	e *envelope
	n int32
}

// readyList is the visible messages of one side, oldest first.
type readyList struct {
	items []*envelope
	head  int
}

func (l *readyList) len() int { return len(l.items) - l.head }

func (l *readyList) push(e *envelope) {
	if len(l.items) == cap(l.items) && l.head >= len(l.items)/2 {
		// Reuse the popped half before growing.
		n := copy(l.items, l.items[l.head:])
		clear(l.items[n:])
		l.items, l.head = l.items[:n], 0
	}
	l.items = append(l.items, e)
}

func (l *readyList) pop() *envelope {
	e := l.items[l.head]
	l.items[l.head] = nil
	l.head++
	if l.head == len(l.items) {
		l.items, l.head = l.items[:0], 0
	}
	return e
}

func positiveOr[T ~int | ~int64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

var _ followup.Queues = (*Queue)(nil)
