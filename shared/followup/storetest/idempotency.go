package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// testIdempotency checks Create and Replay with idempotency keys.
func testIdempotency(t *testing.T, open Open) {
	keyed := func(f *followup.Followup, key, hash string, expires time.Time) followup.Creation {
		return followup.Creation{Followup: f, IdempotencyKey: key, RequestHash: hash, KeyExpiresAt: expires}
	}

	t.Run("SameKeySameHashReplaysOriginal", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		orig := newFollowup("fu-orig", "t-1", now, now.Add(time.Hour))
		create(t, s, keyed(orig.Clone(), "key-1", "hash-1", now.Add(24*time.Hour)))
		// Move the original on, so "as it stands now" is observable.
		claimed := apply(t, s, orig.ID, followup.Claim(now.Add(time.Hour), lease, 4))

		again := newFollowup("fu-again", "t-1", now.Add(time.Second), now.Add(2*time.Hour))
		got := create(t, s, keyed(again, "key-1", "hash-1", now.Add(24*time.Hour+time.Second)))
		if !got.Replayed {
			t.Fatalf("Replayed = false, want true")
		}
		if got.Replaced != nil {
			t.Fatalf("Replaced = %v, want nil on a replay", got.Replaced)
		}
		requireSame(t, "replayed Followup", claimed, got.Followup)
		requireNotFound(t, s, again.ID)
		page, more, err := s.List(t.Context(), followup.ListQuery{ThreadID: "t-1", Limit: 10})
		if err != nil || more || !slices.Equal(ids(page), []string{orig.ID}) {
			t.Fatalf("List after a replay = %v, %v, %v; want [%s]", ids(page), more, err, orig.ID)
		}
	})

	t.Run("SameKeyOtherHashConflicts", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		orig := newFollowup("fu-orig", "t-1", now, now.Add(time.Hour))
		create(t, s, keyed(orig.Clone(), "key-1", "hash-1", now.Add(24*time.Hour)))

		other := newFollowup("fu-other", "t-2", now.Add(time.Second), now.Add(2*time.Hour))
		_, err := s.Create(t.Context(), keyed(other, "key-1", "hash-2", now.Add(24*time.Hour)))
		requireIdempotencyConflict(t, err)
		requireNotFound(t, s, other.ID)
		requireSame(t, "original after a conflict", orig, get(t, s, orig.ID))
		if r, err := s.Replay(t.Context(), "key-1", "hash-1", now.Add(time.Minute)); err != nil || r == nil || r.ID != orig.ID {
			t.Fatalf("Replay after a conflict = %v, %v; want the original", r, err)
		}
	})

	t.Run("Replay", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		orig := newFollowup("fu-orig", "t-1", now, now.Add(time.Hour))
		expires := now.Add(24 * time.Hour)
		create(t, s, keyed(orig.Clone(), "key-1", "hash-1", expires))

		if r, err := s.Replay(t.Context(), "key-unknown", "hash-1", now); err != nil || r != nil {
			t.Fatalf("Replay unknown key = %v, %v; want nil, nil", r, err)
		}
		r, err := s.Replay(t.Context(), "key-1", "hash-1", now.Add(time.Minute))
		if err != nil {
			t.Fatalf("Replay live key: %v", err)
		}
		requireSame(t, "Replay live key", orig, r)

		cancelled := apply(t, s, orig.ID, followup.Cancel(now.Add(2*time.Minute)))
		r, err = s.Replay(t.Context(), "key-1", "hash-1", now.Add(3*time.Minute))
		if err != nil {
			t.Fatalf("Replay after cancel: %v", err)
		}
		requireSame(t, "Replay shows the followup as it stands now", cancelled, r)

		_, err = s.Replay(t.Context(), "key-1", "hash-2", now.Add(time.Minute))
		requireIdempotencyConflict(t, err)

		if r, err := s.Replay(t.Context(), "key-1", "hash-1", expires.Add(time.Nanosecond)); err != nil || r != nil {
			t.Fatalf("Replay past KeyExpiresAt = %v, %v; want nil, nil", r, err)
		}
		if r, err := s.Replay(t.Context(), "key-1", "hash-2", expires.Add(time.Hour)); err != nil || r != nil {
			t.Fatalf("Replay of an expired key with another hash = %v, %v; want nil, nil", r, err)
		}
	})

	t.Run("ExpiredKeyIsReusable", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		old := newFollowup("fu-old", "t-1", now.Add(-3*time.Hour), now.Add(-2*time.Hour))
		create(t, s, keyed(old.Clone(), "key-1", "hash-old", now.Add(-time.Hour)))

		fresh := newFollowup("fu-fresh", "t-1", now, now.Add(time.Hour))
		got := create(t, s, keyed(fresh.Clone(), "key-1", "hash-new", now.Add(24*time.Hour)))
		if got.Replayed {
			t.Fatalf("Create with an expired key replayed %s", got.Followup.ID)
		}
		requireSame(t, "Create with an expired key", fresh, got.Followup)
		requireSame(t, "Get", fresh, get(t, s, fresh.ID))
		requireSame(t, "old followup", old, get(t, s, old.ID))

		r, err := s.Replay(t.Context(), "key-1", "hash-new", now.Add(time.Minute))
		if err != nil || r == nil || r.ID != fresh.ID {
			t.Fatalf("Replay of the reused key = %v, %v; want %s", r, err, fresh.ID)
		}
		_, err = s.Replay(t.Context(), "key-1", "hash-old", now.Add(time.Minute))
		requireIdempotencyConflict(t, err)
	})

	t.Run("ReplayReplacesNothing", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		orig := withRun(newFollowup("fu-orig", "t-1", now, now.Add(time.Hour)), "run-1")
		create(t, s, keyed(orig.Clone(), "key-1", "hash-1", now.Add(24*time.Hour)))

		again := withRun(newFollowup("fu-again", "t-1", now.Add(time.Second), now.Add(time.Hour)), "run-1")
		c := keyed(again, "key-1", "hash-1", now.Add(24*time.Hour))
		cancel := followup.Cancel(now.Add(time.Second))
		c.Replace = &cancel
		got := create(t, s, c)
		if !got.Replayed || got.Replaced != nil {
			t.Fatalf("Replayed=%v Replaced=%v, want a replay with nothing replaced", got.Replayed, got.Replaced)
		}
		requireSame(t, "original after a replay", orig, get(t, s, orig.ID))
	})

	t.Run("KeysAreGlobal", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		create(t, s, keyed(newFollowup("fu-1", "t-1", now, now.Add(time.Hour)), "key-1", "hash-1", now.Add(24*time.Hour)))
		got := create(t, s, keyed(newFollowup("fu-2", "t-2", now, now.Add(time.Hour)), "key-1", "hash-1", now.Add(24*time.Hour)))
		if !got.Replayed || got.Followup.ID != "fu-1" {
			t.Fatalf("Create on another thread with the same key: Replayed=%v id=%s; want a replay of fu-1", got.Replayed, got.Followup.ID)
		}
		requireNotFound(t, s, "fu-2")
	})
}
