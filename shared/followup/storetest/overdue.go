package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// testOverdue checks the sweep's index: Overdue finds exactly the pending
// followups whose sweep time has come, earliest first, follows every
// transition, and a redrive moves a followup out of it without touching
// what an attempt writes.
func testOverdue(t *testing.T, open Open) {
	overdue := func(t *testing.T, s followup.Store, now time.Time, limit int) []followup.OverdueFollowup {
		t.Helper()
		got, err := s.Overdue(t.Context(), now, limit)
		if err != nil {
			t.Fatalf("Overdue(%s, %d): %v", now, limit, err)
		}
		return got
	}
	overdueIDs := func(os []followup.OverdueFollowup) []string {
		out := make([]string, len(os))
		for i, o := range os {
			out[i] = o.ID
		}
		return out
	}

	t.Run("FindsWhatIsDueInOrder", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		// Created out of order; one thread id with a "/" and a space.
		for i, d := range []time.Duration{3 * time.Minute, time.Minute, 2 * time.Minute, time.Hour} {
			f := newFollowup(fmt.Sprintf("fu-%d", i), "team/a b", now, now.Add(d-followup.SweepGrace))
			mustCreate(t, s, f)
		}
		if got := overdue(t, s, now, 100); len(got) != 0 {
			t.Fatalf("Overdue before anything is due = %v", got)
		}
		got := overdue(t, s, now.Add(3*time.Minute), 100)
		if want := []string{"fu-1", "fu-2", "fu-0"}; !slices.Equal(overdueIDs(got), want) {
			t.Fatalf("Overdue = %v, want %v", overdueIDs(got), want)
		}
		o := got[0]
		if o.ThreadID != "team/a b" || o.Status != followup.StatusScheduled || !o.SweepAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("Overdue entry = %+v", o)
		}
		if got := overdue(t, s, now.Add(3*time.Minute), 2); !slices.Equal(overdueIDs(got), []string{"fu-1", "fu-2"}) {
			t.Fatalf("Overdue with limit 2 = %v", overdueIDs(got))
		}
	})

	t.Run("FollowsTransitions", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		f := newFollowup("fu-1", "t-1", now, now.Add(time.Hour))
		mustCreate(t, s, f)
		late := now.Add(time.Hour + followup.SweepGrace)
		if got := overdue(t, s, late, 10); !slices.Equal(overdueIDs(got), []string{"fu-1"}) {
			t.Fatalf("Overdue of a scheduled followup past its grace = %v", overdueIDs(got))
		}
		claimed := apply(t, s, f.ID, followup.Claim(now.Add(time.Hour), lease, 4))
		if got := overdue(t, s, late, 10); len(got) != 0 {
			t.Fatalf("Overdue of a followup under a live lease = %v", got)
		}
		leaseLost := claimed.LeaseUntil.Add(followup.SweepGrace)
		got := overdue(t, s, leaseLost, 10)
		if len(got) != 1 || got[0].Status != followup.StatusDispatching {
			t.Fatalf("Overdue of a dispatching followup past its lease and grace = %+v", got)
		}
		run := followup.Run{Attempt: 1, StartedAt: now.Add(time.Hour), FinishedAt: now.Add(time.Hour + time.Second), DurationMS: 1000, Outcome: followup.OutcomeSuccess, HTTPStatus: 200}
		apply(t, s, f.ID, followup.Settle(claimed, followup.Result{Status: followup.StatusDelivered, Run: &run}, run.FinishedAt))
		if got := overdue(t, s, leaseLost.Add(365*24*time.Hour), 10); len(got) != 0 {
			t.Fatalf("Overdue of a delivered followup = %v", got)
		}
	})

	t.Run("RedriveIsBookkeeping", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		f := newFollowup("fu-1", "t-1", now, now.Add(time.Minute))
		mustCreate(t, s, f)
		sweepTime := now.Add(time.Minute + followup.SweepGrace)

		// Not overdue yet: refused, nothing written.
		_, err := s.Apply(t.Context(), f.ID, followup.Redrive(followup.StatusScheduled, sweepTime.Add(-time.Nanosecond)))
		requireConflict(t, s, err, f.ID)

		tr := followup.Redrive(followup.StatusScheduled, sweepTime)
		got := apply(t, s, f.ID, tr)
		want := applied(f, tr)
		requireSame(t, "Apply redrive", want, got)
		if got.Version != f.Version || !got.UpdatedAt.Equal(f.UpdatedAt) {
			t.Fatalf("a redrive changed Version %d→%d or UpdatedAt", f.Version, got.Version)
		}
		if o := overdue(t, s, sweepTime.Add(followup.RedriveEvery-time.Nanosecond), 10); len(o) != 0 {
			t.Fatalf("Overdue within an hour of a redrive = %v", o)
		}
		if o := overdue(t, s, sweepTime.Add(followup.RedriveEvery), 10); len(o) != 1 {
			t.Fatalf("Overdue an hour after a redrive = %v", o)
		}
		// A second redrive at the same time finds it no longer overdue.
		_, err = s.Apply(t.Context(), f.ID, tr)
		requireConflict(t, s, err, f.ID)
		// What an attempt writes, conditioned on the version it claimed,
		// still applies after a redrive.
		claimed := apply(t, s, f.ID, followup.Claim(sweepTime, lease, 4))
		if claimed.Version != f.Version+1 {
			t.Fatalf("claim after a redrive: version %d, want %d", claimed.Version, f.Version+1)
		}
	})
}
