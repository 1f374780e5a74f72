package followup_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
)

// failingStore is a store whose every call fails while down is set, as a
// full disk or a database that is down would.
type failingStore struct {
	*inmem.Store
	down  atomic.Bool
	calls atomic.Int64
}

var errDown = errors.New("no space left on device")

func (s *failingStore) fail() error {
	s.calls.Add(1)
	if s.down.Load() {
		return errDown
	}
	return nil
}

func (s *failingStore) Apply(ctx context.Context, id string, t followup.Transition) (*followup.Followup, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.Apply(ctx, id, t)
}

func (s *failingStore) Get(ctx context.Context, id string) (*followup.Followup, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, id)
}

// A receive that finds the store failing makes no attempt and waits
// longer each time; once the store is back the followup is delivered on
// its first attempt.
func TestStoreOutageSpendsNoAttempt(t *testing.T) {
	fx := newFixture(t, ok)
	store := &failingStore{Store: fx.store}
	fx.svc = mustService(t, followup.Config{Store: store, Scheduler: fx.sched, Queues: fx.queues, Dispatcher: fx.disp, Clock: fx.clock,
		Retry: followup.RetryPolicy{Float64: func() float64 { return 0.999 }}})
	f := fx.create(t, body, "").Followup
	fx.clock.Advance(time.Minute)
	store.down.Store(true)
	var last time.Duration
	for receive := 1; receive <= 12; receive++ {
		v := fx.svc.Fire(context.Background(), followup.Delivery{Body: message(f), ReceiveCount: receive})
		if !v.Retry || v.After < last || v.After > followup.StoreRetryMax {
			t.Fatalf("receive %d during the outage: verdict %+v after a wait of %s", receive, v, last)
		}
		last = v.After
	}
	if last < time.Minute {
		t.Fatalf("after 12 receives the wait is %s; it should have grown to minutes", last)
	}
	if n := len(fx.disp.Calls()); n != 0 {
		t.Fatalf("dispatched %d times while the store was down", n)
	}
	store.down.Store(false)
	if v := fx.svc.Fire(context.Background(), followup.Delivery{Body: message(f), ReceiveCount: 13}); v != followup.Ack {
		t.Fatalf("after the outage: %+v", v)
	}
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusDelivered || got.Attempts != 1 || len(got.Runs) != 1 {
		t.Fatalf("after the outage: %+v", got)
	}
}

// The queue gives up on a message (redrive after its receive limit) while
// the followup still has attempts: the dead-letter consumer sends it back
// to the fire queue, and it is delivered.
func TestQueueGiveUpSendsBack(t *testing.T) {
	fx := newFixture(t, ok)
	f := fx.create(t, body, "").Followup
	fx.clock.Advance(time.Minute)
	if v := fx.deadLetter(message(f), nil); v != followup.Ack {
		t.Fatalf("dead letter verdict %+v", v)
	}
	back := fx.queues.Take()
	if len(back) != 1 || back[0].Queue != followup.FireQueue || back[0].Attributes[followup.ReturnsAttribute] != "1" || back[0].Delay != 0 {
		t.Fatalf("sent %+v, want the message back on the fire queue, returned once, at once", back)
	}
	if got := fx.get(t, f.ID); got.Status != followup.StatusScheduled {
		t.Fatalf("a followup with attempts left was settled: %+v", got)
	}
	if v := fx.svc.Fire(context.Background(), followup.Delivery{Body: back[0].Body, Attributes: back[0].Attributes, ReceiveCount: 1}); v != followup.Ack {
		t.Fatalf("fire of the message sent back: %+v", v)
	}
	if got := fx.get(t, f.ID); got.Status != followup.StatusDelivered || got.Attempts != 1 {
		t.Fatalf("after the send back: %+v", got)
	}
}

// After the third return, the fourth give-up settles queue_exhausted,
// saying how many receives and attempts there were.
func TestQueueExhausted(t *testing.T) {
	fx := newFixture(t, flaky)
	f := fx.create(t, body, "").Followup
	fx.fire(t, f) // one attempt, a retry pending
	fx.clock.Advance(time.Minute)
	d := followup.Delivery{Body: message(f), ReceiveCount: 1}
	for n := 1; n <= followup.MaxReturns; n++ {
		if v := fx.svc.DeadLetter(context.Background(), d); v != followup.Ack {
			t.Fatalf("give-up %d: %+v", n, v)
		}
		sent := fx.queues.Take()
		if len(sent) != 1 || sent[0].Queue != followup.FireQueue {
			t.Fatalf("give-up %d sent %+v", n, sent)
		}
		d = followup.Delivery{Body: sent[0].Body, Attributes: sent[0].Attributes, ReceiveCount: 1}
	}
	if v := fx.svc.DeadLetter(context.Background(), d); v != followup.Ack {
		t.Fatalf("fourth give-up: %+v", v)
	}
	if sent := fx.queues.Take(); len(sent) != 0 {
		t.Fatalf("a fourth give-up sent %+v", sent)
	}
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropQueueExhausted || got.Attempts != 1 {
		t.Fatalf("after the fourth give-up: %+v", got)
	}
	for _, part := range []string{"4 times", "80 receives", "1 of 4 attempts", flaky.Error} {
		if !strings.Contains(got.LastError, part) {
			t.Errorf("last_error %q does not say %q", got.LastError, part)
		}
	}
}

// EventBridge Scheduler's documented dead letter for an SQS target wraps
// the input in MessageBody; both forms settle schedule_delivery_failed.
func TestSchedulerDeadLetterWrapped(t *testing.T) {
	fx := newFixture(t, ok)
	f := fx.create(t, body, "").Followup
	wrapped := `{"MessageBody":"{\"followup_id\":\"` + f.ID + `\",\"thread_id\":\"t-1\"}","QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/fire"}`
	attrs := map[string]string{"ERROR_CODE": "AWS.SQS.KmsAccessDenied", "ERROR_MESSAGE": "key disabled"}
	if v := fx.deadLetter([]byte(wrapped), attrs); v != followup.Ack {
		t.Fatalf("verdict %+v", v)
	}
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropScheduleDeliveryFailed || !strings.Contains(got.LastError, "AWS.SQS.KmsAccessDenied") {
		t.Fatalf("wrapped scheduler dead letter: %+v", got)
	}
	if len(fx.store.DeadLetters) != 0 {
		t.Fatalf("a wrapped dead letter was kept as invalid: %+v", fx.store.DeadLetters)
	}
}

// An early message (a schedule a minute ahead of run_at) goes back for the
// rest as a new message and dispatches nothing.
func TestEarlyMessageRequeued(t *testing.T) {
	fx := newFixture(t, ok)
	f := fx.create(t, `{"thread_id":"t-1","prompt":"p","delay_seconds":3600}`, "").Followup
	fx.clock.Advance(3600*time.Second - 70*time.Second)
	if v := fx.deliver(message(f)); v != followup.Ack {
		t.Fatalf("verdict %+v", v)
	}
	sent := fx.queues.Take()
	if len(sent) != 1 || sent[0].Queue != followup.FireQueue || sent[0].Delay != 70*time.Second {
		t.Fatalf("sent %+v, want one fire-queue message delayed by 70s", sent)
	}
	if len(fx.disp.Calls()) != 0 {
		t.Fatal("an early message dispatched")
	}
	fx.clock.Advance(70 * time.Second)
	if v := fx.deliver(sent[0].Body); v != followup.Ack || len(fx.disp.Calls()) != 1 {
		t.Fatalf("on time: %+v, %d dispatches", v, len(fx.disp.Calls()))
	}
}

// A send that fails leaves the message for a later receive.
func TestFailedSendKeepsTheMessage(t *testing.T) {
	fx := newFixture(t, flaky)
	f := fx.create(t, body, "").Followup
	for range 3 {
		fx.fire(t, f)
	}
	fx.queues.Fail = errors.New("queue throttled")
	if v := fx.fire(t, f); !v.Retry {
		t.Fatalf("verdict %+v: the message must stay when its move fails", v)
	}
	fx.queues.Fail = nil
	if v := fx.deliver(message(f)); v != followup.Ack {
		t.Fatalf("next receive: %+v", v)
	}
	if sent := fx.queues.Take(); len(sent) != 1 || sent[0].Queue != followup.DeadLetterQueue {
		t.Fatalf("sent %+v", sent)
	}
	if n := len(fx.disp.Calls()); n != 4 {
		t.Fatalf("dispatched %d times, want 4", n)
	}
}
