package followup_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// redriven records the sweep's redrives.
type redriven struct {
	followup.NopObserver
	mu  sync.Mutex
	ids []string
}

func (o *redriven) Redriven(f followup.OverdueFollowup) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ids = append(o.ids, f.ID)
}

// A followup whose message was lost (the schedule never fired) is found by
// the sweep past its grace, sent again once, counted, and delivered.
func TestSweepRedrivesALostMessage(t *testing.T) {
	fx := newFixture(t, ok)
	obs := &redriven{}
	fx.svc = mustService(t, followup.Config{Store: fx.store, Scheduler: fx.sched, Queues: fx.queues, Dispatcher: fx.disp, Clock: fx.clock, Observer: obs})
	lost := fx.create(t, body, "").Followup
	later := fx.create(t, `{"thread_id":"t-2","prompt":"p","delay_seconds":600}`, "").Followup

	fx.clock.Advance(time.Minute + followup.SweepGrace - time.Second)
	if n, err := fx.svc.Sweep(context.Background()); err != nil || n != 0 {
		t.Fatalf("sweep within the grace: %d, %v", n, err)
	}
	fx.clock.Advance(time.Second)
	n, err := fx.svc.Sweep(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("sweep past the grace: %d, %v", n, err)
	}
	sent := fx.queues.Take()
	if len(sent) != 1 || sent[0].Queue != followup.FireQueue || string(sent[0].Body) != string(message(lost)) {
		t.Fatalf("sweep sent %+v, want the lost followup's message", sent)
	}
	if len(obs.ids) != 1 || obs.ids[0] != lost.ID {
		t.Fatalf("redriven %v", obs.ids)
	}
	// At most once an hour: the next runs send nothing, until an hour has
	// passed.
	fx.clock.Advance(followup.RedriveEvery - time.Second)
	if n, _ := fx.svc.Sweep(context.Background()); n != 1 {
		// later is overdue by now too; lost is not sent again.
		t.Fatalf("sweep within the hour sent %d, want only the other one", n)
	}
	if again := fx.queues.Take(); len(again) != 1 || string(again[0].Body) != string(message(later)) {
		t.Fatalf("sweep within the hour sent %+v", again)
	}
	if v := fx.deliver(sent[0].Body); v != followup.Ack {
		t.Fatalf("the redriven message: %+v", v)
	}
	if got := fx.get(t, lost.ID); got.Status != followup.StatusDelivered || got.Attempts != 1 {
		t.Fatalf("after the redrive: %+v", got)
	}
	fx.clock.Advance(2 * followup.RedriveEvery)
	if n, _ := fx.svc.Sweep(context.Background()); n != 1 {
		t.Fatalf("a delivered followup is never swept again; sent %d", n)
	}
}

// A dispatching followup whose worker vanished is found past its lease and
// grace; its message sent again records the lost attempt and delivers.
func TestSweepFindsAnAbandonedClaim(t *testing.T) {
	fx := newFixture(t, ok)
	f := fx.create(t, body, "").Followup
	fx.clock.Advance(time.Minute)
	lease := followup.NewTiming(0).Lease
	if _, err := fx.store.Apply(context.Background(), f.ID, followup.Claim(fx.clock.Now(), lease, 4)); err != nil {
		t.Fatal(err)
	}
	fx.clock.Advance(lease + followup.SweepGrace)
	if n, err := fx.svc.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	sent := fx.queues.Take()
	if v := fx.deliver(sent[0].Body); v != followup.Ack {
		t.Fatalf("verdict %+v", v)
	}
	got := fx.get(t, f.ID)
	if got.Status != followup.StatusDelivered || got.Attempts != 2 || got.Runs[0].Error != followup.AttemptInterrupted {
		t.Fatalf("after the sweep: %+v", got)
	}
}
