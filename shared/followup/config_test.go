package followup_test

import (
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
)

func TestNewRefusesWhatCannotWork(t *testing.T) {
	store := inmem.NewStore()
	tests := []struct {
		name string
		cfg  followup.Config
		want string
	}{
		{"no store", followup.Config{}, "no store"},
		{"lease shorter than an attempt", followup.Config{Store: store, Timing: followup.Timing{Dispatch: 10 * time.Second, Lease: 12 * time.Second, Visibility: time.Minute}}, "lease 12s is shorter than one attempt"},
		{"visibility not above the lease", followup.Config{Store: store, Timing: followup.Timing{Dispatch: 10 * time.Second, Lease: time.Minute, Visibility: time.Minute}}, "not longer than the lease"},
		{"receive limit below AWS's minimum", followup.Config{Store: store, MaxReceives: 4}, "below 5"},
		{"receive limit leaves no room above the attempts", followup.Config{Store: store, MaxReceives: 8, Retry: followup.RetryPolicy{MaxAttempts: 8}}, "below 9"},
		{"min delay above max delay", followup.Config{Store: store, Limits: followup.Limits{MinDelay: time.Hour, MaxDelay: time.Minute}}, "delay limits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := followup.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, %v; want an error saying %q", svc, err, tt.want)
			}
		})
	}
}

// Defaults fill one field at a time: a policy that sets only MaxAttempts
// keeps it, and gets the default waits.
func TestRetryDefaultsFieldByField(t *testing.T) {
	fx := newFixture(t, flaky)
	fx.svc = mustService(t, followup.Config{Store: fx.store, Scheduler: fx.sched, Queues: fx.queues, Dispatcher: fx.disp, Clock: fx.clock,
		Retry: followup.RetryPolicy{MaxAttempts: 1}})
	f := fx.create(t, body, "").Followup
	if v := fx.fire(t, f); v != followup.Ack {
		t.Fatalf("the only attempt failed: %+v, want the message moved to the dead-letter queue", v)
	}
	if sent := fx.queues.Take(); len(sent) != 1 || sent[0].Queue != followup.DeadLetterQueue {
		t.Fatalf("sent %+v", sent)
	}

	fx2 := newFixture(t, flaky)
	fx2.svc = mustService(t, followup.Config{Store: fx2.store, Scheduler: fx2.sched, Queues: fx2.queues, Dispatcher: fx2.disp, Clock: fx2.clock,
		Retry: followup.RetryPolicy{Base: 10 * time.Second}})
	g := fx2.create(t, body, "").Followup
	v := fx2.fire(t, g)
	if !v.Retry || v.After < 5*time.Second || v.After > 10*time.Second {
		t.Fatalf("first retry after %+v, want 5s to 10s from the base given", v)
	}
	for range 3 {
		fx2.fire(t, g)
	}
	if n := len(fx2.disp.Calls()); n != followup.DefaultMaxAttempts {
		t.Fatalf("%d attempts, want the default %d", n, followup.DefaultMaxAttempts)
	}
}

func TestTiming(t *testing.T) {
	tm := followup.NewTiming(10 * time.Second)
	if err := tm.Validate(); err != nil {
		t.Fatal(err)
	}
	if tm.Lease != 40*time.Second || tm.Visibility != 70*time.Second || tm.AttemptTime() != 15*time.Second {
		t.Fatalf("timing for 10s: %+v, attempt %s", tm, tm.AttemptTime())
	}
	if d := followup.NewTiming(0); d.Dispatch != followup.DefaultDispatchTimeout {
		t.Fatalf("zero dispatch timeout: %+v", d)
	}
}
