package followup_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
)

// clock is a followup.Clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// dispatcher answers with the attempts in script, in order, then the last one
// forever, and counts calls.
type dispatcher struct {
	mu     sync.Mutex
	script []followup.Attempt
	calls  []int // attempt numbers seen
}

func (d *dispatcher) Dispatch(_ context.Context, _ *followup.Followup, attempt int) followup.Attempt {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, attempt)
	a := d.script[min(len(d.calls), len(d.script))-1]
	return a
}

func (d *dispatcher) Calls() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.calls...)
}

var (
	ok        = followup.Attempt{Outcome: followup.OutcomeSuccess, HTTPStatus: 201}
	gone      = followup.Attempt{Outcome: followup.OutcomeDrop, DropReason: followup.DropThreadNotFound, HTTPStatus: 404, Error: "thread API answered 404 Not Found"}
	flaky     = followup.Attempt{Outcome: followup.OutcomeRetryableError, HTTPStatus: 503, Error: "thread API answered 503 Service Unavailable"}
	throttled = followup.Attempt{Outcome: followup.OutcomeRetryableError, HTTPStatus: 429, Error: "thread API answered 429", RetryAfter: 30 * time.Minute}
)

type fixture struct {
	svc    *followup.Service
	store  *inmem.Store
	sched  *inmem.Scheduler
	queues *inmem.Queues
	disp   *dispatcher
	clock  *clock
}

func newFixture(t *testing.T, script ...followup.Attempt) *fixture {
	t.Helper()
	fx := &fixture{
		store:  inmem.NewStore(),
		sched:  inmem.NewScheduler(),
		queues: &inmem.Queues{},
		clock:  &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)},
	}
	cfg := followup.Config{
		Store: fx.store, Scheduler: fx.sched, Queues: fx.queues, Clock: fx.clock,
		Retry: followup.RetryPolicy{MaxAttempts: 4, Base: 2 * time.Second, Max: time.Minute},
	}
	if len(script) > 0 {
		fx.disp = &dispatcher{script: script}
		cfg.Dispatcher = fx.disp
	}
	fx.svc = mustService(t, cfg)
	return fx
}

func mustService(t *testing.T, cfg followup.Config) *followup.Service {
	t.Helper()
	svc, err := followup.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return svc
}

// message is the fire-queue message of f.
func message(f *followup.Followup) []byte {
	return []byte(`{"followup_id":"` + f.ID + `","thread_id":"` + f.ThreadID + `"}`)
}

// deliver hands body to the fire consumer as its first receive.
func (fx *fixture) deliver(body []byte) followup.Verdict {
	return fx.svc.Fire(context.Background(), followup.Delivery{Body: body, ReceiveCount: 1})
}

// deadLetter hands body and attrs to the dead-letter consumer.
func (fx *fixture) deadLetter(body []byte, attrs map[string]string) followup.Verdict {
	return fx.svc.DeadLetter(context.Background(), followup.Delivery{Body: body, Attributes: attrs, ReceiveCount: 1})
}

func (fx *fixture) create(t *testing.T, body, key string) followup.Created {
	t.Helper()
	req, err := followup.ParseCreate([]byte(body))
	if err != nil {
		t.Fatalf("ParseCreate: %v", err)
	}
	c, err := fx.svc.Create(context.Background(), req, key)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return c
}

// due moves the clock to f's next attempt and fires its message.
func (fx *fixture) fire(t *testing.T, f *followup.Followup) followup.Verdict {
	t.Helper()
	cur := fx.get(t, f.ID)
	if d := cur.NextAttemptAt.Sub(fx.clock.Now()); d > 0 {
		fx.clock.Advance(d)
	}
	return fx.deliver(message(f))
}

func (fx *fixture) get(t *testing.T, id string) *followup.Followup {
	t.Helper()
	f, err := fx.store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return f
}

const body = `{"thread_id":"t-1","prompt":"check the build","delay_seconds":60}`

func TestCreateSchedules(t *testing.T) {
	fx := newFixture(t, ok)
	c := fx.create(t, `{"thread_id":"t-1","prompt":"p","delay_seconds":90,"reason":"ci","originating_run_id":"r1","metadata":{"k":"v"}}`, "")
	f := c.Followup
	if f.Status != followup.StatusScheduled || f.Attempts != 0 || len(f.Runs) != 0 {
		t.Fatalf("new followup: %+v", f)
	}
	if want := fx.clock.Now().Add(90 * time.Second); !f.RunAt.Equal(want) || *f.DelaySecondsRequested != 90 {
		t.Fatalf("run_at %v delay %v", f.RunAt, *f.DelaySecondsRequested)
	}
	if !strings.HasPrefix(f.ID, "fu_") || len(f.ID) > 60 {
		t.Fatalf("id %q", f.ID)
	}
	sc, ok := fx.sched.Pending(f.ID)
	if !ok || !sc.At.Equal(f.RunAt) || sc.Message.ThreadID != "t-1" {
		t.Fatalf("schedule %+v %v", sc, ok)
	}
}

func TestCreateSchedulerDownCreatesNothing(t *testing.T) {
	fx := newFixture(t, ok)
	fx.sched.Fail = errors.New("scheduler down")
	req, _ := followup.ParseCreate([]byte(body))
	_, err := fx.svc.Create(context.Background(), req, "k1")
	if followup.ErrorCode(err) != followup.CodeUnavailable {
		t.Fatalf("err %v, want unavailable", err)
	}
	page, _, _ := fx.store.List(context.Background(), followup.ListQuery{ThreadID: "t-1", Limit: 10})
	if len(page) != 0 {
		t.Fatalf("a failed create left %d records", len(page))
	}
}

func TestIdempotency(t *testing.T) {
	fx := newFixture(t, ok)
	first := fx.create(t, body, "key-1")
	again := fx.create(t, `{ "delay_seconds":60, "prompt":"check the build", "thread_id":"t-1" }`, "key-1")
	if !again.Replayed || again.Followup.ID != first.Followup.ID || again.Followup.ReplacedPrevious != nil {
		t.Fatalf("replay: %+v", again)
	}
	req, _ := followup.ParseCreate([]byte(`{"thread_id":"t-1","prompt":"other","delay_seconds":60}`))
	_, err := fx.svc.Create(context.Background(), req, "key-1")
	if followup.ErrorCode(err) != followup.CodeIdempotencyConflict {
		t.Fatalf("err %v, want idempotency_conflict", err)
	}
	// The replay shows the original as it stands now.
	if _, err := fx.svc.Cancel(context.Background(), first.Followup.ID); err != nil {
		t.Fatal(err)
	}
	if c := fx.create(t, body, "key-1"); c.Followup.Status != followup.StatusCancelled {
		t.Fatalf("replay status %s, want cancelled", c.Followup.Status)
	}
}

func TestReplacePerRun(t *testing.T) {
	fx := newFixture(t, ok)
	const withRun = `{"thread_id":"t-1","prompt":"p","delay_seconds":60,"originating_run_id":"run-42"}`
	old := fx.create(t, withRun, "").Followup
	c := fx.create(t, withRun, "")
	if c.Followup.ReplacedPrevious == nil || c.Followup.ReplacedPrevious.ID != old.ID || c.Followup.ReplacedPrevious.Status != followup.StatusCancelled {
		t.Fatalf("replaced_previous: %+v", c.Followup.ReplacedPrevious)
	}
	if _, still := fx.sched.Pending(old.ID); still {
		t.Fatal("replaced followup is still scheduled to fire")
	}
	if v := fx.fire(t, old); v != followup.Ack || len(fx.disp.Calls()) != 0 {
		t.Fatalf("a replaced followup fired: %+v %v", v, fx.disp.Calls())
	}

	// An old one already dispatching is shown, not stopped.
	fx2 := newFixture(t, ok)
	busy := fx2.create(t, withRun, "").Followup
	fx2.clock.Advance(time.Minute)
	if _, err := fx2.store.Apply(context.Background(), busy.ID, followup.Claim(fx2.clock.Now(), time.Minute, 4)); err != nil {
		t.Fatal(err)
	}
	c2 := fx2.create(t, withRun, "")
	if p := c2.Followup.ReplacedPrevious; p == nil || p.ID != busy.ID || p.Status != followup.StatusDispatching {
		t.Fatalf("replaced_previous of a dispatching one: %+v", p)
	}
}

func TestFireDelivers(t *testing.T) {
	fx := newFixture(t, ok)
	f := fx.create(t, body, "").Followup
	fx.clock.Advance(61 * time.Second)
	if v := fx.fire(t, f); v != followup.Ack {
		t.Fatalf("verdict %+v", v)
	}
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusDelivered || got.Attempts != 1 || len(got.Runs) != 1 || got.Runs[0].Outcome != followup.OutcomeSuccess ||
		got.Runs[0].HTTPStatus != 201 || got.SettledAt == nil || got.DropReason != "" {
		t.Fatalf("delivered followup: %+v", got)
	}
	// Invariant 2: a duplicate delivery after a success never dispatches again.
	if v := fx.fire(t, f); v != followup.Ack {
		t.Fatalf("duplicate verdict %+v", v)
	}
	if calls := fx.disp.Calls(); len(calls) != 1 {
		t.Fatalf("dispatched %d times", len(calls))
	}
}

func TestFireNonRetryableDropsAtOnce(t *testing.T) {
	fx := newFixture(t, gone)
	f := fx.create(t, body, "").Followup
	if v := fx.fire(t, f); v != followup.Ack {
		t.Fatalf("verdict %+v", v)
	}
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropThreadNotFound || got.Attempts != 1 ||
		got.Runs[0].Outcome != followup.OutcomeDrop || got.LastError != gone.Error {
		t.Fatalf("dropped followup: %+v", got)
	}
}

func TestFireUnconfigured(t *testing.T) {
	fx := newFixture(t) // no dispatcher
	f := fx.create(t, body, "").Followup
	fx.fire(t, f)
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropDispatcherUnconfigured || got.Attempts != 1 ||
		len(got.Runs) != 1 || got.Runs[0].Outcome != followup.OutcomeDrop {
		t.Fatalf("unconfigured: %+v", got)
	}
}

func TestFireRetriesThenDelivers(t *testing.T) {
	fx := newFixture(t, flaky, flaky, ok)
	f := fx.create(t, body, "").Followup
	v := fx.fire(t, f)
	if !v.Retry || v.After < time.Second || v.After > 2*time.Second {
		t.Fatalf("first retry verdict %+v, want a wait in [1s, 2s]", v)
	}
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusScheduled || got.Attempts != 1 || got.LastError != flaky.Error {
		t.Fatalf("after a retryable failure: %+v", got)
	}
	// A duplicate that arrives during the wait neither dispatches nor
	// counts: it goes back as a new message for the rest of the wait.
	if dv := fx.deliver(message(f)); dv != followup.Ack {
		t.Fatalf("early duplicate verdict %+v", dv)
	}
	if sent := fx.queues.Take(); len(sent) != 1 || sent[0].Queue != followup.FireQueue || sent[0].Delay <= 0 || sent[0].Delay > v.After {
		t.Fatalf("early duplicate sent %+v, want one fire-queue message delayed by at most %v", sent, v.After)
	}
	if len(fx.disp.Calls()) != 1 || fx.get(t, f.ID).Attempts != 1 {
		t.Fatal("an early duplicate dispatched or counted an attempt")
	}
	if v := fx.fire(t, f); !v.Retry || v.After < 2*time.Second || v.After > 4*time.Second {
		t.Fatalf("second retry verdict %+v, want a wait in [2s, 4s]", v)
	}
	if v := fx.fire(t, f); v != followup.Ack {
		t.Fatalf("third verdict %+v", v)
	}
	got = fx.get(t, f.ID)
	if got.Status != followup.StatusDelivered || got.Attempts != 3 || len(got.Runs) != 3 {
		t.Fatalf("delivered after retries: %+v", got)
	}
	if calls := fx.disp.Calls(); len(calls) != 3 || calls[2] != 3 {
		t.Fatalf("attempt numbers %v", calls)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	fx := newFixture(t, throttled)
	f := fx.create(t, body, "").Followup
	if v := fx.fire(t, f); v.After != 30*time.Minute {
		t.Fatalf("verdict %+v, want the 30m Retry-After above retry_max", v)
	}
}

func TestRetriesExhaustedThroughDeadLetter(t *testing.T) {
	fx := newFixture(t, flaky)
	f := fx.create(t, body, "").Followup
	for i := 1; i <= 4; i++ {
		v := fx.fire(t, f)
		if i < 4 && !v.Retry {
			t.Fatalf("attempt %d verdict %+v", i, v)
		}
		if i == 4 && v != followup.Ack {
			t.Fatalf("last attempt verdict %+v, want Ack: the message moves to the dead-letter queue", v)
		}
	}
	moved := fx.queues.Take()
	if len(moved) != 1 || moved[0].Queue != followup.DeadLetterQueue || string(moved[0].Body) != string(message(f)) {
		t.Fatalf("after the last attempt sent %+v, want the message on the dead-letter queue", moved)
	}
	// A stray fifth delivery must not dispatch a fifth time: it goes the
	// same way.
	fx.deliver(message(f))
	if calls := fx.disp.Calls(); len(calls) != 4 {
		t.Fatalf("dispatched %d times, want 4", len(calls))
	}
	if stray := fx.queues.Take(); len(stray) != 1 || stray[0].Queue != followup.DeadLetterQueue {
		t.Fatalf("a stray delivery sent %+v, want it on the dead-letter queue", stray)
	}
	// The dead-letter consumer settles it, with the last concrete error.
	if v := fx.deadLetter(moved[0].Body, moved[0].Attributes); v != followup.Ack {
		t.Fatalf("dead letter verdict %+v", v)
	}
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropRetriesExhausted || got.Attempts != 4 ||
		got.LastError != flaky.Error || len(got.Runs) != 4 || got.Runs[3].Outcome != followup.OutcomeRetryableError {
		t.Fatalf("retries exhausted: %+v", got)
	}
	fx.deadLetter(moved[0].Body, nil) // the stray copy
	if again := fx.get(t, f.ID); again.Version != got.Version {
		t.Fatal("a second dead letter changed a settled followup")
	}
}

// Invariant 3: after a crash mid-dispatch the redelivery dispatches again
// (the thread deduplicates on the Idempotency-Key, the followup id), and the
// lost attempt counts.
func TestInvariant3RedeliveryAfterCrash(t *testing.T) {
	fx := newFixture(t, ok)
	f := fx.create(t, body, "").Followup
	fx.clock.Advance(time.Minute)
	// A worker claims and dies mid-dispatch.
	lease := followup.NewTiming(0).Lease
	if _, err := fx.store.Apply(context.Background(), f.ID, followup.Claim(fx.clock.Now(), lease, 4)); err != nil {
		t.Fatal(err)
	}
	// Its duplicate while the lease lives neither dispatches nor waits forever.
	if v := fx.fire(t, f); !v.Retry || v.After > lease {
		t.Fatalf("live-lease verdict %+v", v)
	}
	fx.clock.Advance(lease)
	if v := fx.fire(t, f); v != followup.Ack {
		t.Fatalf("verdict %+v", v)
	}
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusDelivered || got.Attempts != 2 || len(got.Runs) != 2 ||
		got.Runs[0].Error != followup.AttemptInterrupted || got.Runs[0].Outcome != followup.OutcomeRetryableError {
		t.Fatalf("after an interrupted attempt: %+v", got)
	}
}

func TestCancel(t *testing.T) {
	fx := newFixture(t, ok)
	f := fx.create(t, body, "").Followup
	c, err := fx.svc.Cancel(context.Background(), f.ID)
	if err != nil || c.Status != followup.StatusCancelled || c.SettledAt == nil {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if _, err := fx.svc.Cancel(context.Background(), f.ID); followup.ErrorCode(err) != followup.CodeConflict || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("second cancel: %v", err)
	}
	if _, err := fx.svc.Cancel(context.Background(), "fu_nope"); followup.ErrorCode(err) != followup.CodeNotFound {
		t.Fatalf("unknown: %v", err)
	}
	if v := fx.fire(t, f); v != followup.Ack || len(fx.disp.Calls()) != 0 {
		t.Fatal("a cancelled followup was dispatched")
	}
}

// Invariant 4: cancel and fire race to exactly one winner.
func TestInvariant4CancelFireRace(t *testing.T) {
	for i := range 200 {
		fx := newFixture(t, ok)
		f := fx.create(t, body, "").Followup
		fx.clock.Advance(time.Minute)
		var cancelled atomic.Bool
		var wg sync.WaitGroup
		wg.Go(func() { fx.deliver(message(f)) })
		wg.Go(func() {
			if _, err := fx.svc.Cancel(context.Background(), f.ID); err == nil {
				cancelled.Store(true)
			}
		})
		wg.Wait()
		got := fx.get(t, f.ID)
		dispatched := len(fx.disp.Calls())
		switch {
		case cancelled.Load() && (dispatched != 0 || got.Status != followup.StatusCancelled):
			t.Fatalf("run %d: cancel won but dispatched %d, status %s", i, dispatched, got.Status)
		case !cancelled.Load() && (dispatched != 1 || got.Status != followup.StatusDelivered):
			t.Fatalf("run %d: fire won but dispatched %d, status %s", i, dispatched, got.Status)
		}
	}
}

// Invariant 2: concurrent duplicates never dispatch in parallel.
func TestInvariant2ConcurrentDuplicatesDispatchOnce(t *testing.T) {
	fx := newFixture(t, ok)
	f := fx.create(t, body, "").Followup
	fx.clock.Advance(time.Minute)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { fx.deliver(message(f)) })
	}
	wg.Wait()
	if n := len(fx.disp.Calls()); n != 1 {
		t.Fatalf("dispatched %d times", n)
	}
}

func TestRecordMissingNeverDispatches(t *testing.T) {
	fx := newFixture(t, ok)
	if v := fx.deliver([]byte(`{"followup_id":"fu_orphan","thread_id":"t-1"}`)); v != followup.Ack {
		t.Fatalf("verdict %+v", v)
	}
	got := fx.get(t, "fu_orphan")
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropRecordMissing || len(fx.disp.Calls()) != 0 {
		t.Fatalf("orphan: %+v", got)
	}
}

func TestInvalidMessages(t *testing.T) {
	fx := newFixture(t, ok)
	for _, b := range []string{`not json`, `{}`, `{"thread_id":"t-1"}`, `[1]`} {
		if v := fx.deliver([]byte(b)); v != followup.Ack {
			t.Fatalf("%s: verdict %+v", b, v)
		}
	}
	if n := len(fx.store.DeadLetters); n != 4 {
		t.Fatalf("kept %d dead letters, want 4", n)
	}
	f := fx.create(t, body, "").Followup
	fx.deliver([]byte(`{"followup_id":"` + f.ID + `"}`))
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropInvalidMessage || len(fx.disp.Calls()) != 0 {
		t.Fatalf("message without thread: %+v", got)
	}
}

func TestSchedulerDeadLetter(t *testing.T) {
	fx := newFixture(t, ok)
	f := fx.create(t, body, "").Followup
	attrs := map[string]string{"ERROR_CODE": "AWS.SQS.AccessDenied", "ERROR_MESSAGE": "not allowed", "RETRY_ATTEMPTS": "185"}
	if v := fx.deadLetter(message(f), attrs); v != followup.Ack {
		t.Fatalf("verdict %+v", v)
	}
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropScheduleDeliveryFailed ||
		!strings.Contains(got.LastError, "AWS.SQS.AccessDenied") || !strings.Contains(got.LastError, "not allowed") || got.Attempts != 0 {
		t.Fatalf("scheduler dead letter: %+v", got)
	}
	// Unparsable dead letters are kept.
	fx.deadLetter([]byte(`garbage`), attrs)
	if len(fx.store.DeadLetters) != 1 || fx.store.DeadLetters[0].Body != "garbage" {
		t.Fatalf("dead letters %+v", fx.store.DeadLetters)
	}
}

func TestDeadLetterLeavesDeliveredAlone(t *testing.T) {
	fx := newFixture(t, ok)
	f := fx.create(t, body, "").Followup
	fx.fire(t, f)
	fx.deadLetter(message(f), nil)
	if got := fx.get(t, f.ID); got.Status != followup.StatusDelivered {
		t.Fatalf("dead letter overwrote a delivery: %s", got.Status)
	}
}

func TestCancelThread(t *testing.T) {
	fx := newFixture(t, ok)
	a := fx.create(t, body, "").Followup
	b := fx.create(t, body, "").Followup
	other := fx.create(t, `{"thread_id":"t-10","prompt":"p","delay_seconds":60}`, "").Followup
	busy := fx.create(t, body, "").Followup
	fx.clock.Advance(time.Minute)
	if _, err := fx.store.Apply(context.Background(), busy.ID, followup.Claim(fx.clock.Now(), time.Minute, 4)); err != nil {
		t.Fatal(err)
	}
	got, err := fx.svc.CancelThread(context.Background(), "t-1")
	if err != nil || len(got) != 2 {
		t.Fatalf("cancelled %d, %v", len(got), err)
	}
	for _, f := range []*followup.Followup{a, b} {
		if fx.get(t, f.ID).Status != followup.StatusCancelled {
			t.Errorf("%s not cancelled", f.ID)
		}
	}
	if fx.get(t, other.ID).Status != followup.StatusScheduled || fx.get(t, busy.ID).Status != followup.StatusDispatching {
		t.Error("cancel by thread touched another thread or a dispatching followup")
	}
}

// failingCreate wraps a store whose first Create fails; landed says whether
// the write happened anyway (an error after commit, as a timeout can be).
type failingCreate struct {
	*inmem.Store
	landed bool
	failed bool
}

func (s *failingCreate) Create(ctx context.Context, c followup.Creation) (followup.Created, error) {
	if s.failed {
		return s.Store.Create(ctx, c)
	}
	s.failed = true
	if s.landed {
		if _, err := s.Store.Create(ctx, c); err != nil {
			return followup.Created{}, err
		}
	}
	return followup.Created{}, errors.New("connection reset")
}

// Invariant 5: create is all-or-nothing for the client. An error means the
// followup is never delivered; an orphan schedule settles record_missing.
func TestInvariant5CreateIsAllOrNothing(t *testing.T) {
	for _, landed := range []bool{false, true} {
		t.Run(fmt.Sprintf("write landed %v", landed), func(t *testing.T) {
			store := &failingCreate{Store: inmem.NewStore(), landed: landed}
			sched := inmem.NewScheduler()
			disp := &dispatcher{script: []followup.Attempt{ok}}
			clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
			svc := mustService(t, followup.Config{Store: store, Scheduler: sched, Dispatcher: disp, Clock: clk,
				NewID: func() string { return "fu_fixed" }})
			req, _ := followup.ParseCreate([]byte(body))
			if _, err := svc.Create(context.Background(), req, ""); followup.ErrorCode(err) != followup.CodeUnavailable {
				t.Fatalf("err %v, want unavailable", err)
			}
			if _, scheduled := sched.Pending("fu_fixed"); scheduled {
				t.Fatal("the schedule of a failed create is still there")
			}
			f, err := store.Get(context.Background(), "fu_fixed")
			switch {
			case landed && (err != nil || f.Status != followup.StatusCancelled):
				t.Fatalf("a record that landed must end cancelled: %+v %v", f, err)
			case !landed && !errors.Is(err, followup.ErrNotFound):
				t.Fatalf("no record expected: %+v %v", f, err)
			}
			// Even if the schedule had fired, nothing would be dispatched.
			clk.Advance(time.Hour)
			svc.Fire(context.Background(), followup.Delivery{Body: []byte(`{"followup_id":"fu_fixed","thread_id":"t-1"}`), ReceiveCount: 1})
			if n := len(disp.Calls()); n != 0 {
				t.Fatalf("dispatched %d times", n)
			}
			if f, _ := store.Get(context.Background(), "fu_fixed"); !f.Status.Terminal() {
				t.Fatalf("orphan left %s", f.Status)
			}
		})
	}
}
