package storetest

import (
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// testReplace checks replace per run: a thread has at most one pending
// followup per originating run.
func testReplace(t *testing.T, open Open) {
	// replacing creates f with the replace-per-run transition at now.
	replacing := func(f *followup.Followup, now time.Time) followup.Creation {
		cancel := followup.Cancel(now)
		return followup.Creation{Followup: f, Replace: &cancel}
	}

	t.Run("ScheduledIsCancelled", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		prev := withRun(newFollowup("fu-prev", "t-1", now, now.Add(time.Hour)), "run-1")
		create(t, s, replacing(prev.Clone(), now))

		at := now.Add(time.Minute)
		next := withRun(newFollowup("fu-next", "t-1", at, now.Add(2*time.Hour)), "run-1")
		got := create(t, s, replacing(next.Clone(), at))
		want := applied(prev, followup.Cancel(at))
		requireSame(t, "Created.Replaced", want, got.Replaced)
		requireSame(t, "Created.Followup", next, got.Followup)
		requireSame(t, "replaced followup", want, get(t, s, prev.ID))
		if want.Status != followup.StatusCancelled || want.SettledAt == nil {
			t.Fatalf("replaced followup: status %s, settled %v; want cancelled and settled", want.Status, want.SettledAt)
		}
		requireSame(t, "new followup", next, get(t, s, next.ID))
	})

	t.Run("DispatchingIsLeftAlone", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		prev := withRun(newFollowup("fu-prev", "t-1", now, now.Add(time.Minute)), "run-1")
		create(t, s, replacing(prev, now))
		claimed := apply(t, s, prev.ID, followup.Claim(now.Add(time.Minute), lease, 4))

		at := now.Add(time.Minute + time.Second)
		next := withRun(newFollowup("fu-next", "t-1", at, now.Add(2*time.Hour)), "run-1")
		got := create(t, s, replacing(next.Clone(), at))
		requireSame(t, "Created.Replaced", claimed, got.Replaced)
		requireSame(t, "dispatching followup", claimed, get(t, s, prev.ID))
		requireSame(t, "new followup", next, get(t, s, next.ID))
	})

	t.Run("TerminalIsNotReplaced", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		prev := withRun(newFollowup("fu-prev", "t-1", now, now.Add(time.Hour)), "run-1")
		create(t, s, replacing(prev, now))
		cancelled := apply(t, s, prev.ID, followup.Cancel(now.Add(time.Second)))

		at := now.Add(time.Minute)
		next := withRun(newFollowup("fu-next", "t-1", at, now.Add(2*time.Hour)), "run-1")
		got := create(t, s, replacing(next.Clone(), at))
		if got.Replaced != nil {
			t.Fatalf("Created.Replaced = %s (%s), want nil for a terminal previous", got.Replaced.ID, got.Replaced.Status)
		}
		requireSame(t, "terminal followup", cancelled, get(t, s, prev.ID))
	})

	t.Run("OtherThreadOrRunUntouched", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		prev := withRun(newFollowup("fu-prev", "t-1", now, now.Add(time.Hour)), "run-1")
		create(t, s, replacing(prev.Clone(), now))

		at := now.Add(time.Minute)
		for _, next := range []*followup.Followup{
			withRun(newFollowup("fu-other-thread", "t-10", at, now.Add(time.Hour)), "run-1"),
			withRun(newFollowup("fu-other-thread-prefix", "t-", at, now.Add(time.Hour)), "run-1"),
			withRun(newFollowup("fu-other-run", "t-1", at, now.Add(time.Hour)), "run-10"),
			withRun(newFollowup("fu-other-run-prefix", "t-1", at, now.Add(time.Hour)), "run-"),
		} {
			got := create(t, s, replacing(next.Clone(), at))
			if got.Replaced != nil {
				t.Fatalf("create %s (thread %q, run %q) replaced %s", next.ID, next.ThreadID, next.OriginatingRunID, got.Replaced.ID)
			}
		}
		requireSame(t, "previous followup", prev, get(t, s, prev.ID))
	})

	t.Run("NoRunIDReplacesNothing", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		prev := newFollowup("fu-prev", "t-1", now, now.Add(time.Hour))
		create(t, s, replacing(prev.Clone(), now))
		at := now.Add(time.Minute)
		got := create(t, s, replacing(newFollowup("fu-next", "t-1", at, now.Add(time.Hour)), at))
		if got.Replaced != nil {
			t.Fatalf("create without a run id replaced %s", got.Replaced.ID)
		}
		requireSame(t, "previous followup", prev, get(t, s, prev.ID))
	})

	t.Run("SlotMovesToNewest", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		first := withRun(newFollowup("fu-1", "t-1", now, now.Add(time.Hour)), "run-1")
		create(t, s, replacing(first.Clone(), now))
		at2 := now.Add(time.Minute)
		second := withRun(newFollowup("fu-2", "t-1", at2, now.Add(time.Hour)), "run-1")
		if got := create(t, s, replacing(second.Clone(), at2)); got.Replaced == nil || got.Replaced.ID != first.ID {
			t.Fatalf("second create replaced %v, want %s", got.Replaced, first.ID)
		}
		at3 := now.Add(2 * time.Minute)
		third := withRun(newFollowup("fu-3", "t-1", at3, now.Add(time.Hour)), "run-1")
		got := create(t, s, replacing(third.Clone(), at3))
		requireSame(t, "third create's Replaced", applied(second, followup.Cancel(at3)), got.Replaced)
		requireSame(t, "first followup", applied(first, followup.Cancel(at2)), get(t, s, first.ID))
		requireSame(t, "third followup", third, get(t, s, third.ID))
	})

	t.Run("SlotMovesPastDispatching", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		first := withRun(newFollowup("fu-1", "t-1", now, now.Add(time.Minute)), "run-1")
		create(t, s, replacing(first.Clone(), now))
		claimed := apply(t, s, first.ID, followup.Claim(now.Add(time.Minute), lease, 4))
		at2 := now.Add(2 * time.Minute)
		second := withRun(newFollowup("fu-2", "t-1", at2, now.Add(time.Hour)), "run-1")
		create(t, s, replacing(second.Clone(), at2))
		at3 := now.Add(3 * time.Minute)
		third := withRun(newFollowup("fu-3", "t-1", at3, now.Add(time.Hour)), "run-1")
		got := create(t, s, replacing(third.Clone(), at3))
		requireSame(t, "third create's Replaced", applied(second, followup.Cancel(at3)), got.Replaced)
		requireSame(t, "dispatching followup", claimed, get(t, s, first.ID))
	})
}
