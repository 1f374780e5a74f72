package followup_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// TestDecide holds every case of what a consumer does with a delivery, as
// a table of (situation, now) → step.
func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	rules := followup.Rules{
		Retry:       followup.RetryPolicy{MaxAttempts: 4, Base: 2 * time.Second, Max: time.Minute, Float64: func() float64 { return 0.5 }},
		Timing:      followup.NewTiming(0),
		MaxReceives: 20,
	}
	msg := followup.Message{FollowupID: "fu_1", ThreadID: "t-1"}
	stored := func(status followup.Status, attempts int, mod ...func(*followup.Followup)) *followup.Followup {
		f := &followup.Followup{ID: "fu_1", ThreadID: "t-1", Status: status, Attempts: attempts, Version: 3,
			RunAt: now.Add(-time.Minute), NextAttemptAt: now.Add(-time.Second), LastError: "HTTP 503", UpdatedAt: now.Add(-time.Minute)}
		for _, m := range mod {
			m(f)
		}
		return f
	}
	nextAt := func(d time.Duration) func(*followup.Followup) {
		return func(f *followup.Followup) { f.NextAttemptAt = now.Add(d) }
	}
	leaseUntil := func(d time.Duration) func(*followup.Followup) {
		return func(f *followup.Followup) { f.LeaseUntil = now.Add(d) }
	}
	claimed := stored(followup.StatusDispatching, 2, leaseUntil(40*time.Second))
	attempted := func(a followup.Attempt, n int) *followup.Attempted {
		return &followup.Attempted{Attempt: a, Run: followup.Run{Attempt: n, StartedAt: now.Add(-time.Second), FinishedAt: now,
			DurationMS: 1000, Outcome: a.Outcome, HTTPStatus: a.HTTPStatus, Error: a.Error}}
	}
	scheduler := map[string]string{followup.SchedulerErrorCode: "AWS.SQS.AccessDenied", followup.SchedulerErrorMessage: "no"}
	returned := func(n string) map[string]string { return map[string]string{followup.ReturnsAttribute: n} }

	type want struct {
		then       followup.Action
		write      string // the transition's name, "" for none
		to         followup.Status
		reason     followup.DropReason
		wait, upTo time.Duration // Step.Wait in [wait, upTo]; upTo 0 means exactly wait
		why        string        // a part of Step.Why
	}
	tests := []struct {
		name string
		s    followup.Situation
		want want
	}{
		// Messages that name no followup.
		{"fire: not a followup message", followup.Situation{Invalid: "not JSON"},
			want{then: followup.KeepDeadLetter, why: "not JSON"}},
		{"dead letter: not a followup message", followup.Situation{Queue: followup.DeadLetterQueue, Invalid: "no id"},
			want{then: followup.KeepDeadLetter}},

		// The store failed: no attempt, a wait that grows with the receives.
		{"store failed, first receive", followup.Situation{Message: msg, StoreErr: errors.New("disk full"), Delivery: followup.Delivery{ReceiveCount: 1}},
			want{then: followup.Hide, wait: 750 * time.Millisecond, why: "disk full"}},
		{"store failed, fifth receive", followup.Situation{Message: msg, StoreErr: errors.New("disk full"), Delivery: followup.Delivery{ReceiveCount: 5}},
			want{then: followup.Hide, wait: 12 * time.Second}},
		{"store failed, twentieth receive: capped", followup.Situation{Message: msg, StoreErr: errors.New("disk full"), Delivery: followup.Delivery{ReceiveCount: 20}},
			want{then: followup.Hide, wait: 90 * time.Second}},
		{"dead letter, store failed", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, StoreErr: errors.New("down"), Delivery: followup.Delivery{ReceiveCount: 2}},
			want{then: followup.Hide, wait: 1500 * time.Millisecond}},

		// Fire queue: the claim succeeded.
		{"claimed: dispatch", followup.Situation{Message: msg, Stored: claimed, Claimed: true},
			want{then: followup.Dispatch}},
		{"claimed for another thread", followup.Situation{Message: followup.Message{FollowupID: "fu_1", ThreadID: "t-2"}, Stored: claimed, Claimed: true},
			want{then: followup.Acknowledge, write: "settle invalid_message", to: followup.StatusFailedDropped, reason: followup.DropInvalidMessage}},
		{"attempt delivered", followup.Situation{Message: msg, Stored: claimed, Claimed: true, Attempt: attempted(ok, 2)},
			want{then: followup.Acknowledge, write: "settle delivered", to: followup.StatusDelivered}},
		{"attempt dropped: thread gone", followup.Situation{Message: msg, Stored: claimed, Claimed: true, Attempt: attempted(gone, 2)},
			want{then: followup.Acknowledge, write: "settle thread_not_found", to: followup.StatusFailedDropped, reason: followup.DropThreadNotFound}},
		{"attempt failed, retries left", followup.Situation{Message: msg, Stored: claimed, Claimed: true, Attempt: attempted(flaky, 2)},
			want{then: followup.Hide, write: "release", to: followup.StatusScheduled, wait: 3 * time.Second}},
		{"attempt failed, Retry-After above retry_max", followup.Situation{Message: msg, Stored: claimed, Claimed: true, Attempt: attempted(throttled, 2)},
			want{then: followup.Hide, write: "release", to: followup.StatusScheduled, wait: 30 * time.Minute}},
		{"last attempt failed: to the dead-letter queue", followup.Situation{Message: msg, Stored: stored(followup.StatusDispatching, 4), Claimed: true, Attempt: attempted(flaky, 4)},
			want{then: followup.MoveToDeadLetter, write: "release", to: followup.StatusScheduled}},

		// Fire queue: the claim was refused.
		{"no record", followup.Situation{Message: msg, NotFound: true},
			want{then: followup.RecordMissing, reason: followup.DropRecordMissing}},
		{"delivered already", followup.Situation{Message: msg, Stored: stored(followup.StatusDelivered, 1)},
			want{then: followup.Acknowledge}},
		{"cancelled", followup.Situation{Message: msg, Stored: stored(followup.StatusCancelled, 0)},
			want{then: followup.Acknowledge}},
		{"another worker holds a live lease", followup.Situation{Message: msg, Stored: stored(followup.StatusDispatching, 1, leaseUntil(25*time.Second))},
			want{then: followup.Hide, wait: 25 * time.Second}},
		{"a lease about to end: at least a second", followup.Situation{Message: msg, Stored: stored(followup.StatusDispatching, 1, leaseUntil(time.Millisecond))},
			want{then: followup.Hide, wait: time.Second}},
		{"a lease that expired: interrupt, then look again", followup.Situation{Message: msg, Stored: stored(followup.StatusDispatching, 1, leaseUntil(-time.Second))},
			want{then: followup.LookAgain, write: "interrupt", to: followup.StatusScheduled}},
		{"early by a minute: a new message for the rest", followup.Situation{Message: msg, Stored: stored(followup.StatusScheduled, 0, nextAt(time.Minute))},
			want{then: followup.Requeue, wait: time.Minute}},
		{"early by a day: a new message in hops", followup.Situation{Message: msg, Stored: stored(followup.StatusScheduled, 1, nextAt(24*time.Hour))},
			want{then: followup.Requeue, wait: followup.MaxQueueDelay}},
		{"no attempt left: to the dead-letter queue", followup.Situation{Message: msg, Stored: stored(followup.StatusScheduled, 4)},
			want{then: followup.MoveToDeadLetter}},
		{"due and within budget: the claim raced", followup.Situation{Message: msg, Stored: stored(followup.StatusScheduled, 1)},
			want{then: followup.LookAgain}},

		// Fire queue: a message without a thread (the followup was read).
		{"no thread, scheduled", followup.Situation{Message: followup.Message{FollowupID: "fu_1"}, Stored: stored(followup.StatusScheduled, 0)},
			want{then: followup.Acknowledge, write: "settle invalid_message", to: followup.StatusFailedDropped, reason: followup.DropInvalidMessage}},
		{"no thread, dispatching", followup.Situation{Message: followup.Message{FollowupID: "fu_1"}, Stored: stored(followup.StatusDispatching, 1)},
			want{then: followup.Acknowledge}},
		{"no thread, no record", followup.Situation{Message: followup.Message{FollowupID: "fu_1"}, NotFound: true},
			want{then: followup.KeepDeadLetter}},

		// Dead-letter queue.
		{"dead letter: attempts ran out", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Stored: stored(followup.StatusScheduled, 4)},
			want{then: followup.Acknowledge, write: "settle retries_exhausted", to: followup.StatusFailedDropped, reason: followup.DropRetriesExhausted}},
		{"dead letter: the queue gave up with attempts left", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Stored: stored(followup.StatusScheduled, 1)},
			want{then: followup.SendBack, why: "(1 of 3)"}},
		{"dead letter: given up on again, not yet due", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Delivery: followup.Delivery{Attributes: returned("2")}, Stored: stored(followup.StatusScheduled, 0, nextAt(10*time.Second))},
			want{then: followup.SendBack, wait: 10 * time.Second, why: "(3 of 3)"}},
		{"dead letter: given up on a fourth time", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Delivery: followup.Delivery{Attributes: returned("3")}, Stored: stored(followup.StatusScheduled, 1)},
			want{then: followup.Acknowledge, write: "settle queue_exhausted", to: followup.StatusFailedDropped, reason: followup.DropQueueExhausted}},
		{"dead letter: a junk return count counts as none", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Delivery: followup.Delivery{Attributes: returned("x")}, Stored: stored(followup.StatusScheduled, 1)},
			want{then: followup.SendBack, why: "(1 of 3)"}},
		{"dead letter: from Scheduler", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Delivery: followup.Delivery{Attributes: scheduler}, Stored: stored(followup.StatusScheduled, 0)},
			want{then: followup.Acknowledge, write: "settle schedule_delivery_failed", to: followup.StatusFailedDropped, reason: followup.DropScheduleDeliveryFailed}},
		{"dead letter: from Scheduler, already in the fire path", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Delivery: followup.Delivery{Attributes: scheduler}, Stored: stored(followup.StatusScheduled, 1)},
			want{then: followup.Acknowledge}},
		{"dead letter: from Scheduler, no record", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Delivery: followup.Delivery{Attributes: scheduler}, NotFound: true},
			want{then: followup.RecordMissing, reason: followup.DropScheduleDeliveryFailed, why: "AWS.SQS.AccessDenied"}},
		{"dead letter: no record", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, NotFound: true},
			want{then: followup.RecordMissing, reason: followup.DropRecordMissing}},
		{"dead letter: no record and no thread", followup.Situation{Queue: followup.DeadLetterQueue, Message: followup.Message{FollowupID: "fu_1"}, NotFound: true},
			want{then: followup.KeepDeadLetter}},
		{"dead letter: settled already", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Stored: stored(followup.StatusDelivered, 2)},
			want{then: followup.Acknowledge}},
		{"dead letter: an attempt in flight decides", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Stored: stored(followup.StatusDispatching, 4, leaseUntil(10*time.Second))},
			want{then: followup.Hide, wait: 10 * time.Second}},
		{"dead letter: an attempt lost to a crash", followup.Situation{Queue: followup.DeadLetterQueue, Message: msg, Stored: stored(followup.StatusDispatching, 4, leaseUntil(-time.Second))},
			want{then: followup.LookAgain, write: "interrupt", to: followup.StatusScheduled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rules.Decide(tt.s, now)
			w := tt.want
			if got.Then != w.then {
				t.Fatalf("Then = %s, want %s (step %+v)", got.Then, w.then, got)
			}
			switch {
			case w.write == "" && got.Write != nil:
				t.Fatalf("Write = %s, want none", got.Write.Name)
			case w.write != "" && (got.Write == nil || got.Write.Name != w.write || got.Write.To != w.to):
				t.Fatalf("Write = %+v, want %s to %s", got.Write, w.write, w.to)
			}
			if w.reason != "" {
				reason := got.Reason
				if got.Write != nil && got.Write.DropReason != nil {
					reason = *got.Write.DropReason
				}
				if reason != w.reason {
					t.Fatalf("drop reason = %s, want %s", reason, w.reason)
				}
			}
			if hi := max(w.upTo, w.wait); got.Wait < w.wait || got.Wait > hi {
				t.Fatalf("Wait = %s, want %s", got.Wait, w.wait)
			}
			if !strings.Contains(got.Why, w.why) {
				t.Fatalf("Why = %q, want it to say %q", got.Why, w.why)
			}
		})
	}
}

// TestDecideWritesApply checks that every transition Decide asks for
// applies to the followup it was decided on: no step can be refused by its
// own situation.
func TestDecideWritesApply(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	rules := followup.Rules{Retry: followup.RetryPolicy{MaxAttempts: 4, Base: time.Second, Max: time.Minute}, Timing: followup.NewTiming(0), MaxReceives: 20}
	claimed := &followup.Followup{ID: "fu_1", ThreadID: "t-1", Status: followup.StatusDispatching, Attempts: 4, Version: 5, LeaseUntil: now.Add(time.Minute)}
	for _, a := range []followup.Attempt{ok, gone, flaky} {
		s := followup.Situation{Message: followup.Message{FollowupID: "fu_1", ThreadID: "t-1"}, Stored: claimed, Claimed: true,
			Attempt: &followup.Attempted{Attempt: a, Run: followup.Run{Attempt: 4, FinishedAt: now, Outcome: a.Outcome}}}
		step := rules.Decide(s, now)
		if step.Write == nil {
			t.Fatalf("%s: no write", a.Outcome)
		}
		if err := step.Write.Check(claimed); err != nil {
			t.Fatalf("%s: %s refused on the followup it was decided for: %v", a.Outcome, step.Write.Name, err)
		}
		f := claimed.Clone()
		step.Write.Apply(f)
		if f.Status == followup.StatusDispatching || !f.LeaseUntil.IsZero() {
			t.Fatalf("%s: after %s the followup is %s with lease %s", a.Outcome, step.Write.Name, f.Status, f.LeaseUntil)
		}
		if f.Status.Terminal() != f.SweepAt.IsZero() {
			t.Fatalf("%s: after %s status %s has SweepAt %s", a.Outcome, step.Write.Name, f.Status, f.SweepAt)
		}
	}
}
