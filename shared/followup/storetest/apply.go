package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// testApply checks Store.Apply: every condition of Transition.Check refuses
// with the current record and writes nothing, a passing transition writes
// exactly what Transition.Apply makes, and racing writers have one winner.
func testApply(t *testing.T, open Open) {
	t.Run("ConditionsReject", func(t *testing.T) {
		now := base()
		for _, tc := range []struct {
			name  string
			setup func(f *followup.Followup)
			tr    followup.Transition
		}{
			{"From", nil, followup.Transition{Name: "settle delivered", From: []followup.Status{followup.StatusDispatching}, To: followup.StatusDelivered, At: now}},
			{"Version", nil, func() followup.Transition {
				tr := followup.Claim(now.Add(time.Hour), lease, 4)
				tr.Version = 2
				return tr
			}()},
			{"DueBy", nil, followup.Claim(now.Add(time.Hour-time.Nanosecond), lease, 4)},
			{"AttemptsBelow", func(f *followup.Followup) { f.Attempts = 4 }, followup.Claim(now.Add(time.Hour), lease, 4)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := setup(t, open).store
				f := newFollowup("fu-1", "t-1", now, now.Add(time.Hour))
				if tc.setup != nil {
					tc.setup(f)
				}
				mustCreate(t, s, f)
				_, err := s.Apply(t.Context(), f.ID, tc.tr)
				ce := requireConflict(t, s, err, f.ID)
				requireSame(t, "ConflictError.Current", f, ce.Current)
				requireSame(t, "followup after a rejected transition", f, get(t, s, f.ID))
			})
		}
	})

	t.Run("ConditionsPass", func(t *testing.T) {
		now := base()
		for _, tc := range []struct {
			name string
			tr   followup.Transition
		}{
			{"DueExactly", followup.Claim(now.Add(time.Hour), lease, 4)},
			{"VersionMatches", func() followup.Transition {
				tr := followup.Claim(now.Add(2*time.Hour), lease, 1)
				tr.Version = 1
				return tr
			}()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := setup(t, open).store
				f := newFollowup("fu-1", "t-1", now, now.Add(time.Hour))
				mustCreate(t, s, f)
				got := apply(t, s, f.ID, tc.tr)
				requireSame(t, "Apply result", applied(f, tc.tr), got)
			})
		}
	})

	t.Run("WritesTransition", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		f := newFollowup("fu-1", "t-1", now, now.Add(time.Hour))
		mustCreate(t, s, f)

		step := func(want *followup.Followup, tr followup.Transition) *followup.Followup {
			t.Helper()
			got := apply(t, s, f.ID, tr)
			want = applied(want, tr)
			requireSame(t, "Apply "+tr.Name, want, got)
			requireSame(t, "Get after "+tr.Name, want, get(t, s, f.ID))
			if got.Version != want.Version {
				t.Fatalf("Version = %d, want %d", got.Version, want.Version)
			}
			return got
		}

		t1 := now.Add(time.Hour + 250*time.Millisecond)
		claimed := step(f, followup.Claim(t1, lease, 4))
		if claimed.Status != followup.StatusDispatching || claimed.Version != 2 || claimed.Attempts != 1 || !claimed.LeaseUntil.Equal(t1.Add(lease)) {
			t.Fatalf("claimed: status %s version %d attempts %d lease %s", claimed.Status, claimed.Version, claimed.Attempts, claimed.LeaseUntil)
		}
		run1 := followup.Run{Attempt: 1, StartedAt: t1, FinishedAt: t1.Add(1500 * time.Millisecond), DurationMS: 1500, Outcome: followup.OutcomeRetryableError, HTTPStatus: 503, Error: "HTTP 503"}
		released := step(claimed, followup.Release(claimed, run1, t1.Add(5*time.Second+7)))
		if released.Status != followup.StatusScheduled || !released.LeaseUntil.IsZero() || released.Version != 3 {
			t.Fatalf("released: status %s lease %s version %d", released.Status, released.LeaseUntil, released.Version)
		}

		t2 := t1.Add(6 * time.Second)
		claimed = step(released, followup.Claim(t2, lease, 4))
		interrupted := step(claimed, followup.Interrupt(claimed, t2.Add(lease+time.Second)))
		t3 := t2.Add(lease + 2*time.Second)
		claimed = step(interrupted, followup.Claim(t3, lease, 4))
		run3 := followup.Run{Attempt: 3, StartedAt: t3, FinishedAt: t3.Add(time.Second), DurationMS: 1000, Outcome: followup.OutcomeDrop, HTTPStatus: 404, Error: "HTTP 404"}
		dropped := step(claimed, followup.Settle(claimed, followup.Drop(followup.DropThreadNotFound, run3.Error, &run3), run3.FinishedAt))
		if dropped.Status != followup.StatusFailedDropped || dropped.DropReason != followup.DropThreadNotFound ||
			dropped.SettledAt == nil || !dropped.SettledAt.Equal(run3.FinishedAt) || len(dropped.Runs) != 3 || dropped.Version != 7 {
			t.Fatalf("dropped: %+v", dropped)
		}
	})

	t.Run("UnknownID", func(t *testing.T) {
		s := setup(t, open).store
		_, err := s.Apply(t.Context(), "fu-missing", followup.Cancel(base()))
		if !errors.Is(err, followup.ErrNotFound) {
			t.Fatalf("Apply to unknown id: err = %v, want ErrNotFound", err)
		}
		requireNotFound(t, s, "fu-missing")
	})

	t.Run("TerminalNeverChanges", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		f := newFollowup("fu-1", "t-1", now, now.Add(time.Hour))
		mustCreate(t, s, f)
		claimed := apply(t, s, f.ID, followup.Claim(now.Add(time.Hour), lease, 4))
		run := followup.Run{Attempt: 1, StartedAt: now.Add(time.Hour), FinishedAt: now.Add(time.Hour + time.Second), DurationMS: 1000, Outcome: followup.OutcomeSuccess, HTTPStatus: 200}
		deliver := followup.Settle(claimed, followup.Result{Status: followup.StatusDelivered, Run: &run}, run.FinishedAt)
		delivered := apply(t, s, f.ID, deliver)

		for _, tr := range []followup.Transition{
			deliver,
			followup.Settle(delivered, followup.Result{Status: followup.StatusDelivered, Run: &run}, run.FinishedAt.Add(time.Second)),
			followup.Cancel(now.Add(2 * time.Hour)),
			followup.Claim(now.Add(2*time.Hour), lease, 4),
			followup.Settle(delivered, followup.Drop(followup.DropRetriesExhausted, "late", nil), now.Add(2*time.Hour)),
		} {
			_, err := s.Apply(t.Context(), f.ID, tr)
			requireConflict(t, s, err, f.ID)
			requireSame(t, "delivered followup after "+tr.Name, delivered, get(t, s, f.ID))
		}
	})

	t.Run("ConcurrentClaimsOneWinner", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		f := newFollowup("fu-1", "t-1", now, now.Add(time.Hour))
		mustCreate(t, s, f)
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = s.Apply(context.Background(), f.ID, followup.Claim(now.Add(time.Hour), lease, 4))
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, followup.ErrConflict):
			default:
				t.Fatalf("concurrent claim: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent claims succeeded, want exactly 1", won, n)
		}
		got := get(t, s, f.ID)
		if got.Status != followup.StatusDispatching || got.Attempts != 1 || got.Version != 2 {
			t.Fatalf("after concurrent claims: status %s attempts %d version %d; want dispatching, 1, 2", got.Status, got.Attempts, got.Version)
		}
	})

	t.Run("CancelRacesClaim", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		const rounds = 50
		for i := range rounds {
			f := newFollowup(fmt.Sprintf("fu-%02d", i), "t-1", now, now.Add(time.Hour))
			mustCreate(t, s, f)
			var claimErr, cancelErr error
			var claimed, cancelled *followup.Followup
			var wg sync.WaitGroup
			start := make(chan struct{})
			wg.Go(func() {
				<-start
				claimed, claimErr = s.Apply(context.Background(), f.ID, followup.Claim(now.Add(time.Hour), lease, 4))
			})
			wg.Go(func() {
				<-start
				cancelled, cancelErr = s.Apply(context.Background(), f.ID, followup.Cancel(now.Add(time.Hour)))
			})
			close(start)
			wg.Wait()
			for _, err := range []error{claimErr, cancelErr} {
				if err != nil && !errors.Is(err, followup.ErrConflict) {
					t.Fatalf("round %d: %v", i, err)
				}
			}
			got := get(t, s, f.ID)
			switch {
			case claimErr == nil && cancelErr == nil:
				t.Fatalf("round %d: both claim and cancel succeeded", i)
			case claimErr == nil:
				requireSame(t, "claim winner", claimed, got)
			case cancelErr == nil:
				requireSame(t, "cancel winner", cancelled, got)
			default:
				t.Fatalf("round %d: neither claim (%v) nor cancel (%v) succeeded", i, claimErr, cancelErr)
			}
		}
	})
}

// testKeepDeadLetter checks that any dead letter is kept without error,
// the same one twice included.
func testKeepDeadLetter(t *testing.T, open Open) {
	b := setup(t, open)
	s, now := b.store, b.now
	d := followup.DeadLetterRecord{
		ID:         "msg-1",
		Body:       `{"followup_id": 12`,
		Attributes: map[string]string{"ERROR_CODE": "AWS.Scheduler.X", "ERROR_MESSAGE": "é / ü"},
		Error:      "invalid message: unexpected end of JSON input",
		ReceivedAt: now,
	}
	for i := range 2 { // the same message may arrive twice
		if err := s.KeepDeadLetter(t.Context(), d); err != nil {
			t.Fatalf("KeepDeadLetter #%d: %v", i+1, err)
		}
	}
	if err := s.KeepDeadLetter(t.Context(), followup.DeadLetterRecord{ID: "msg-2", ReceivedAt: now}); err != nil {
		t.Fatalf("KeepDeadLetter with only an id: %v", err)
	}
}
