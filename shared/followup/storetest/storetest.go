// Package storetest is the contract test suite every followup.Store must
// pass: the embedded store in-process, the DynamoDB store against an
// AWS-compatible endpoint. It tests only what the Store interface documents,
// never how a store keeps its data.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Run runs the whole contract against the stores open returns. Each subtest
// calls open once and expects a fresh, empty store; open registers its own
// cleanup with t.
func Run(t *testing.T, open func(t *testing.T) followup.Store) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, open) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, open) })
	t.Run("Replace", func(t *testing.T) { testReplace(t, open) })
	t.Run("List", func(t *testing.T) { testList(t, open) })
	t.Run("Apply", func(t *testing.T) { testApply(t, open) })
	t.Run("KeepDeadLetter", func(t *testing.T) { testKeepDeadLetter(t, open) })
}

// base is the suite's "now": the wall clock, so a store that judges key
// expiry by its own clock and one that judges it by the times it is given
// agree, with a nanosecond part that a store must keep.
func base() time.Time {
	return time.Now().UTC().Truncate(time.Second).Add(123456789 * time.Nanosecond)
}

const lease = 30 * time.Second

// newFollowup returns a valid scheduled followup due at runAt, as the
// service would create it at now.
func newFollowup(id, thread string, now, runAt time.Time) *followup.Followup {
	return &followup.Followup{
		ID:            id,
		ThreadID:      thread,
		Prompt:        "Check whether the nightly build finished and report back.",
		RunAt:         runAt,
		Status:        followup.StatusScheduled,
		Runs:          []followup.Run{},
		CreatedAt:     now,
		UpdatedAt:     now,
		Version:       1,
		NextAttemptAt: runAt,
	}
}

// withRun returns f with an originating run id.
func withRun(f *followup.Followup, run string) *followup.Followup {
	f.OriginatingRunID = run
	return f
}

func create(t *testing.T, s followup.Store, c followup.Creation) followup.Created {
	t.Helper()
	got, err := s.Create(t.Context(), c)
	if err != nil {
		t.Fatalf("Create %s: %v", c.Followup.ID, err)
	}
	if got.Followup == nil {
		t.Fatalf("Create %s: no followup returned", c.Followup.ID)
	}
	return got
}

// mustCreate creates f with no key and no replace and checks the echo.
func mustCreate(t *testing.T, s followup.Store, f *followup.Followup) *followup.Followup {
	t.Helper()
	got := create(t, s, followup.Creation{Followup: f.Clone()})
	if got.Replayed || got.Replaced != nil {
		t.Fatalf("Create %s: Replayed=%v Replaced=%v, want a plain create", f.ID, got.Replayed, got.Replaced)
	}
	requireSame(t, "Create result", f, got.Followup)
	return got.Followup
}

func get(t *testing.T, s followup.Store, id string) *followup.Followup {
	t.Helper()
	f, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return f
}

func requireNotFound(t *testing.T, s followup.Store, id string) {
	t.Helper()
	f, err := s.Get(t.Context(), id)
	if !errors.Is(err, followup.ErrNotFound) {
		t.Fatalf("Get %s = %v, %v; want ErrNotFound", id, f, err)
	}
}

func apply(t *testing.T, s followup.Store, id string, tr followup.Transition) *followup.Followup {
	t.Helper()
	f, err := s.Apply(t.Context(), id, tr)
	if err != nil {
		t.Fatalf("Apply %s to %s: %v", tr.Name, id, err)
	}
	return f
}

// requireConflict checks that err is a *ConflictError whose Current is the
// stored followup.
func requireConflict(t *testing.T, s followup.Store, err error, id string) *followup.ConflictError {
	t.Helper()
	var ce *followup.ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("Apply to %s: err = %v, want *followup.ConflictError", id, err)
	}
	if !errors.Is(err, followup.ErrConflict) {
		t.Fatalf("Apply to %s: errors.Is(err, ErrConflict) = false", id)
	}
	if ce.Current == nil {
		t.Fatalf("Apply to %s: ConflictError.Current is nil", id)
	}
	requireSame(t, "ConflictError.Current", get(t, s, id), ce.Current)
	return ce
}

func requireIdempotencyConflict(t *testing.T, err error) {
	t.Helper()
	var fe *followup.Error
	if !errors.As(err, &fe) || fe.Code != followup.CodeIdempotencyConflict {
		t.Fatalf("err = %v, want *followup.Error with code %s", err, followup.CodeIdempotencyConflict)
	}
}

// requireSame fails unless got is want field by field: times compared with
// Equal (any location), nil and empty Runs and Metadata alike.
func requireSame(t *testing.T, what string, want, got *followup.Followup) {
	t.Helper()
	if diff := diffFollowup(want, got); diff != "" {
		t.Fatalf("%s: %s", what, diff)
	}
}

func diffFollowup(want, got *followup.Followup) string {
	if want == nil || got == nil {
		if want == got {
			return ""
		}
		return fmt.Sprintf("got %v, want %v", got, want)
	}
	var d []string
	field := func(name string, w, g any) {
		if w != g {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	tm := func(name string, w, g time.Time) {
		if !w.Equal(g) {
			d = append(d, fmt.Sprintf("%s = %s, want %s", name, g.Format(time.RFC3339Nano), w.Format(time.RFC3339Nano)))
		}
	}
	field("ID", want.ID, got.ID)
	field("ThreadID", want.ThreadID, got.ThreadID)
	field("Prompt", want.Prompt, got.Prompt)
	field("Reason", want.Reason, got.Reason)
	field("OriginatingRunID", want.OriginatingRunID, got.OriginatingRunID)
	if !bytes.Equal(want.Metadata, got.Metadata) {
		d = append(d, fmt.Sprintf("Metadata = %q, want %q", got.Metadata, want.Metadata))
	}
	tm("RunAt", want.RunAt, got.RunAt)
	switch {
	case (want.DelaySecondsRequested == nil) != (got.DelaySecondsRequested == nil):
		d = append(d, fmt.Sprintf("DelaySecondsRequested set = %v, want %v", got.DelaySecondsRequested != nil, want.DelaySecondsRequested != nil))
	case want.DelaySecondsRequested != nil:
		field("DelaySecondsRequested", *want.DelaySecondsRequested, *got.DelaySecondsRequested)
	}
	field("Status", want.Status, got.Status)
	field("Attempts", want.Attempts, got.Attempts)
	field("LastError", want.LastError, got.LastError)
	field("DropReason", want.DropReason, got.DropReason)
	if len(want.Runs) != len(got.Runs) {
		d = append(d, fmt.Sprintf("len(Runs) = %d, want %d", len(got.Runs), len(want.Runs)))
	} else {
		for i := range want.Runs {
			w, g := want.Runs[i], got.Runs[i]
			p := fmt.Sprintf("Runs[%d].", i)
			field(p+"Attempt", w.Attempt, g.Attempt)
			tm(p+"StartedAt", w.StartedAt, g.StartedAt)
			tm(p+"FinishedAt", w.FinishedAt, g.FinishedAt)
			field(p+"DurationMS", w.DurationMS, g.DurationMS)
			field(p+"Outcome", w.Outcome, g.Outcome)
			field(p+"HTTPStatus", w.HTTPStatus, g.HTTPStatus)
			field(p+"Error", w.Error, g.Error)
		}
	}
	tm("CreatedAt", want.CreatedAt, got.CreatedAt)
	tm("UpdatedAt", want.UpdatedAt, got.UpdatedAt)
	switch {
	case (want.SettledAt == nil) != (got.SettledAt == nil):
		d = append(d, fmt.Sprintf("SettledAt set = %v, want %v", got.SettledAt != nil, want.SettledAt != nil))
	case want.SettledAt != nil:
		tm("SettledAt", *want.SettledAt, *got.SettledAt)
	}
	field("Version", want.Version, got.Version)
	tm("NextAttemptAt", want.NextAttemptAt, got.NextAttemptAt)
	tm("LeaseUntil", want.LeaseUntil, got.LeaseUntil)
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprintf("followup %s differs:\n\t%s", want.ID, joinLines(d))
}

func joinLines(lines []string) string {
	var b bytes.Buffer
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\n\t")
		}
		b.WriteString(l)
	}
	return b.String()
}

// applied returns what f becomes under tr, as every store must write it.
func applied(f *followup.Followup, tr followup.Transition) *followup.Followup {
	w := f.Clone()
	tr.Apply(w)
	return w
}

// ids returns the ids of fs, in order.
func ids(fs []*followup.Followup) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}

// everyField returns a followup with every field set, its times in a
// non-UTC location with nanoseconds.
func everyField(id string, now time.Time) *followup.Followup {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("UTC+1", 3600)
	}
	at := func(d time.Duration) time.Time { return now.Add(d).In(paris) }
	delay := int64(3600)
	settled := at(2*time.Hour + 7)
	return &followup.Followup{
		ID:                    id,
		ThreadID:              "thread/with slash ünï 🙂",
		Prompt:                "Did the \"build\" finish?\nReport back.\x7f",
		Reason:                "waiting on CI",
		OriginatingRunID:      "run-42",
		Metadata:              json.RawMessage(`{"channel":"slack","n":[1,2.5,null],"s":"é\u2028"}`),
		RunAt:                 at(time.Hour + 1),
		DelaySecondsRequested: &delay,
		Status:                followup.StatusFailedDropped,
		Attempts:              2,
		LastError:             "HTTP 503: busy",
		DropReason:            followup.DropRetriesExhausted,
		Runs: []followup.Run{
			{Attempt: 1, StartedAt: at(time.Hour + 3), FinishedAt: at(time.Hour + 999), DurationMS: 0, Outcome: followup.OutcomeRetryableError, HTTPStatus: 503, Error: "HTTP 503: busy"},
			{Attempt: 2, StartedAt: at(time.Hour + time.Minute + 5), FinishedAt: at(time.Hour + time.Minute + time.Second), DurationMS: 1000, Outcome: followup.OutcomeRetryableError, Error: "dial tcp: connection refused"},
		},
		CreatedAt:     at(0),
		UpdatedAt:     at(2*time.Hour + 7),
		SettledAt:     &settled,
		Version:       7,
		NextAttemptAt: at(time.Hour + time.Minute + 11),
		LeaseUntil:    at(time.Hour + 2*time.Minute + 13),
	}
}

func testCreateGet(t *testing.T, open func(t *testing.T) followup.Store) {
	t.Run("RoundTripsScheduled", func(t *testing.T) {
		s := open(t)
		now := base()
		f := newFollowup("fu-scheduled", "t-1", now, now.Add(time.Hour))
		mustCreate(t, s, f)
		got := get(t, s, f.ID)
		requireSame(t, "Get", f, got)
		if got.SettledAt != nil {
			t.Fatalf("SettledAt = %v, want nil", got.SettledAt)
		}
		if got.DelaySecondsRequested != nil {
			t.Fatalf("DelaySecondsRequested = %v, want nil", *got.DelaySecondsRequested)
		}
		if len(got.Metadata) != 0 {
			t.Fatalf("Metadata = %q, want none", got.Metadata)
		}
		if got.ReplacedPrevious != nil {
			t.Fatalf("ReplacedPrevious = %v, want nil", got.ReplacedPrevious)
		}
	})

	t.Run("RoundTripsEveryField", func(t *testing.T) {
		s := open(t)
		f := everyField("fu-every-field", base())
		mustCreate(t, s, f)
		requireSame(t, "Get", f, get(t, s, f.ID))
	})

	t.Run("CallerOwnsValues", func(t *testing.T) {
		s := open(t)
		f := everyField("fu-owned", base())
		in := f.Clone()
		got := create(t, s, followup.Creation{Followup: in}).Followup
		in.Prompt, in.Metadata[2], in.Runs[0].Error, *in.DelaySecondsRequested = "changed", 'X', "changed", 1
		got.Prompt, got.Metadata[2], got.Runs[0].Error = "changed", 'Y', "changed"
		g := get(t, s, f.ID)
		requireSame(t, "Get after changing what Create took and gave", f, g)
		g.Prompt, g.Metadata[2], g.Runs[0].Error = "changed", 'Z', "changed"
		requireSame(t, "Get after changing what Get gave", f, get(t, s, f.ID))
	})

	t.Run("ExistingID", func(t *testing.T) {
		s := open(t)
		now := base()
		f := withRun(newFollowup("fu-taken", "t-1", now, now.Add(time.Hour)), "run-1")
		mustCreate(t, s, f)

		dup := withRun(newFollowup(f.ID, "t-1", now, now.Add(2*time.Hour)), "run-1")
		dup.Prompt = "another prompt"
		cancel := followup.Cancel(now)
		_, err := s.Create(t.Context(), followup.Creation{
			Followup: dup, IdempotencyKey: "key-dup", RequestHash: "h", KeyExpiresAt: now.Add(24 * time.Hour), Replace: &cancel,
		})
		if !errors.Is(err, followup.ErrExists) {
			t.Fatalf("Create of a taken id: err = %v, want ErrExists", err)
		}
		requireSame(t, "Get after a refused create", f, get(t, s, f.ID))
		if r, err := s.Replay(t.Context(), "key-dup", "h", now); err != nil || r != nil {
			t.Fatalf("Replay of the refused create's key = %v, %v; want nil, nil", r, err)
		}
	})

	t.Run("GetUnknown", func(t *testing.T) {
		s := open(t)
		_, err := s.Get(t.Context(), "fu-missing")
		if !errors.Is(err, followup.ErrNotFound) {
			t.Fatalf("Get unknown: err = %v, want ErrNotFound", err)
		}
		if code := followup.ErrorCode(err); code != followup.CodeNotFound {
			t.Fatalf("Get unknown: code = %s, want %s", code, followup.CodeNotFound)
		}
	})
}

func testIdempotency(t *testing.T, open func(t *testing.T) followup.Store) {
	keyed := func(f *followup.Followup, key, hash string, expires time.Time) followup.Creation {
		return followup.Creation{Followup: f, IdempotencyKey: key, RequestHash: hash, KeyExpiresAt: expires}
	}

	t.Run("SameKeySameHashReplaysOriginal", func(t *testing.T) {
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
		create(t, s, keyed(newFollowup("fu-1", "t-1", now, now.Add(time.Hour)), "key-1", "hash-1", now.Add(24*time.Hour)))
		got := create(t, s, keyed(newFollowup("fu-2", "t-2", now, now.Add(time.Hour)), "key-1", "hash-1", now.Add(24*time.Hour)))
		if !got.Replayed || got.Followup.ID != "fu-1" {
			t.Fatalf("Create on another thread with the same key: Replayed=%v id=%s; want a replay of fu-1", got.Replayed, got.Followup.ID)
		}
		requireNotFound(t, s, "fu-2")
	})
}

func testReplace(t *testing.T, open func(t *testing.T) followup.Store) {
	// replacing creates f with the replace-per-run transition at now.
	replacing := func(f *followup.Followup, now time.Time) followup.Creation {
		cancel := followup.Cancel(now)
		return followup.Creation{Followup: f, Replace: &cancel}
	}

	t.Run("ScheduledIsCancelled", func(t *testing.T) {
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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

func testList(t *testing.T, open func(t *testing.T) followup.Store) {
	list := func(t *testing.T, s followup.Store, q followup.ListQuery) ([]*followup.Followup, bool) {
		t.Helper()
		page, more, err := s.List(t.Context(), q)
		if err != nil {
			t.Fatalf("List %+v: %v", q, err)
		}
		return page, more
	}
	// listAll pages through q with q.Limit and checks that more is true
	// exactly until the last page.
	listAll := func(t *testing.T, s followup.Store, q followup.ListQuery) []*followup.Followup {
		t.Helper()
		var all []*followup.Followup
		for range 1000 {
			page, more := list(t, s, q)
			if len(page) > q.Limit {
				t.Fatalf("List returned %d, limit %d", len(page), q.Limit)
			}
			if more && len(page) != q.Limit {
				t.Fatalf("List returned a short page of %d (limit %d) with more", len(page), q.Limit)
			}
			all = append(all, page...)
			if !more {
				return all
			}
			p := followup.PositionOf(page[len(page)-1])
			q.After = &p
		}
		t.Fatalf("List never ended")
		return nil
	}

	t.Run("OrderAndPages", func(t *testing.T) {
		s := open(t)
		now := base()
		h := now.Add(time.Hour)
		created := []*followup.Followup{
			newFollowup("fu-e", "t-1", now, h.Add(3*time.Second)),
			newFollowup("fu-b", "t-1", now, h),
			newFollowup("fu-a", "t-1", now, h.Add(time.Nanosecond)),
			newFollowup("fu-c", "t-1", now, h),
			newFollowup("fu-d", "t-1", now, h.Add(-time.Nanosecond)),
			newFollowup("fu-aa", "t-1", now, h),
			newFollowup("fu-f", "t-1", now, h.Add(24*time.Hour)),
		}
		for _, f := range created {
			mustCreate(t, s, f)
		}
		want := []string{"fu-d", "fu-aa", "fu-b", "fu-c", "fu-a", "fu-e", "fu-f"}
		byID := map[string]*followup.Followup{}
		for _, f := range created {
			byID[f.ID] = f
		}

		for _, limit := range []int{1, 2, 3, 6, 7, 8, 100} {
			t.Run(fmt.Sprintf("Limit%d", limit), func(t *testing.T) {
				all := listAll(t, s, followup.ListQuery{ThreadID: "t-1", Limit: limit})
				if got := ids(all); !slices.Equal(got, want) {
					t.Fatalf("List order = %v, want %v", got, want)
				}
				for _, f := range all {
					requireSame(t, "listed followup", byID[f.ID], f)
				}
			})
		}

		page, more := list(t, s, followup.ListQuery{ThreadID: "t-1", Limit: 3})
		if got := ids(page); !more || !slices.Equal(got, want[:3]) {
			t.Fatalf("first page = %v, more %v; want %v, true", got, more, want[:3])
		}
		after := followup.Position{RunAt: h, ID: "fu-b"}
		page, more = list(t, s, followup.ListQuery{ThreadID: "t-1", Limit: 2, After: &after})
		if got := ids(page); !more || !slices.Equal(got, []string{"fu-c", "fu-a"}) {
			t.Fatalf("page after (h, fu-b) = %v, more %v; want [fu-c fu-a], true", got, more)
		}
		// A position that is not a listed followup still places the page.
		after = followup.Position{RunAt: h, ID: "fu-bb"}
		page, _ = list(t, s, followup.ListQuery{ThreadID: "t-1", Limit: 1, After: &after})
		if got := ids(page); !slices.Equal(got, []string{"fu-c"}) {
			t.Fatalf("page after (h, fu-bb) = %v, want [fu-c]", got)
		}
		after = followup.PositionOf(byID["fu-f"])
		page, more = list(t, s, followup.ListQuery{ThreadID: "t-1", Limit: 5, After: &after})
		if len(page) != 0 || more {
			t.Fatalf("page after the last = %v, more %v; want empty, false", ids(page), more)
		}
	})

	t.Run("StatusFilter", func(t *testing.T) {
		s := open(t)
		now := base()
		var fs []*followup.Followup
		for i := range 6 {
			f := newFollowup(fmt.Sprintf("fu-%d", i), "t-1", now, now.Add(time.Duration(i)*time.Minute))
			mustCreate(t, s, f)
			fs = append(fs, f)
		}
		apply(t, s, "fu-1", followup.Cancel(now))
		apply(t, s, "fu-4", followup.Cancel(now))
		apply(t, s, "fu-2", followup.Claim(now.Add(time.Hour), lease, 4))
		claimed := apply(t, s, "fu-5", followup.Claim(now.Add(time.Hour), lease, 4))
		run := followup.Run{Attempt: 1, StartedAt: now.Add(time.Hour), FinishedAt: now.Add(time.Hour + time.Second), DurationMS: 1000, Outcome: followup.OutcomeSuccess, HTTPStatus: 200}
		apply(t, s, "fu-5", followup.Settle(claimed, followup.Result{Status: followup.StatusDelivered, Run: &run}, run.FinishedAt))

		for _, tc := range []struct {
			status followup.Status
			want   []string
		}{
			{"", []string{"fu-0", "fu-1", "fu-2", "fu-3", "fu-4", "fu-5"}},
			{followup.StatusScheduled, []string{"fu-0", "fu-3"}},
			{followup.StatusCancelled, []string{"fu-1", "fu-4"}},
			{followup.StatusDispatching, []string{"fu-2"}},
			{followup.StatusDelivered, []string{"fu-5"}},
			{followup.StatusFailedDropped, nil},
		} {
			t.Run(string(tc.status), func(t *testing.T) {
				for _, limit := range []int{1, 2, 50} {
					all := listAll(t, s, followup.ListQuery{ThreadID: "t-1", Status: tc.status, Limit: limit})
					if got := ids(all); !slices.Equal(got, tc.want) {
						t.Fatalf("limit %d: List = %v, want %v", limit, got, tc.want)
					}
					for _, f := range all {
						if tc.status != "" && f.Status != tc.status {
							t.Fatalf("listed %s with status %s, want %s", f.ID, f.Status, tc.status)
						}
						requireSame(t, "listed followup", get(t, s, f.ID), f)
					}
				}
			})
		}
	})

	t.Run("ThreadsKeptApart", func(t *testing.T) {
		s := open(t)
		now := base()
		threads := []string{
			"t-1", "t-10", "t-", "t", "t-1/", "t-1/x", "t-1 x", "a b c",
			"ünïcødé/🙂", "ünïcødé", "/", "..x", "t-1\u00a0", "t-1%2F",
		}
		for i, th := range threads {
			for j := range 2 {
				mustCreate(t, s, newFollowup(fmt.Sprintf("fu-%02d-%d", i, j), th, now, now.Add(time.Duration(j)*time.Minute)))
			}
		}
		for i, th := range threads {
			want := []string{fmt.Sprintf("fu-%02d-0", i), fmt.Sprintf("fu-%02d-1", i)}
			all := listAll(t, s, followup.ListQuery{ThreadID: th, Limit: 1})
			if got := ids(all); !slices.Equal(got, want) {
				t.Fatalf("thread %q: List = %v, want %v", th, got, want)
			}
			for _, f := range all {
				if f.ThreadID != th {
					t.Fatalf("thread %q: listed %s of thread %q", th, f.ID, f.ThreadID)
				}
			}
		}
		page, more := list(t, s, followup.ListQuery{ThreadID: "t-2", Limit: 10})
		if len(page) != 0 || more {
			t.Fatalf("unknown thread: List = %v, more %v; want empty", ids(page), more)
		}
	})
}

func testApply(t *testing.T, open func(t *testing.T) followup.Store) {
	t.Run("ConditionsReject", func(t *testing.T) {
		now := base()
		for _, tc := range []struct {
			name  string
			setup func(f *followup.Followup)
			tr    followup.Transition
		}{
			{"From", nil, followup.Transition{Name: "settle delivered", From: []followup.Status{followup.StatusDispatching}, To: followup.StatusDelivered, At: now}},
			{"FromEmpty", nil, followup.Transition{Name: "nothing", To: followup.StatusCancelled, At: now}},
			{"Version", nil, func() followup.Transition {
				tr := followup.Claim(now.Add(time.Hour), lease, 4)
				tr.Version = 2
				return tr
			}()},
			{"DueBy", nil, followup.Claim(now.Add(time.Hour-time.Nanosecond), lease, 4)},
			{"AttemptsBelow", func(f *followup.Followup) { f.Attempts = 4 }, followup.Claim(now.Add(time.Hour), lease, 4)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
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
				s := open(t)
				f := newFollowup("fu-1", "t-1", now, now.Add(time.Hour))
				mustCreate(t, s, f)
				got := apply(t, s, f.ID, tc.tr)
				requireSame(t, "Apply result", applied(f, tc.tr), got)
			})
		}
	})

	t.Run("WritesTransition", func(t *testing.T) {
		s := open(t)
		now := base()
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
		s := open(t)
		_, err := s.Apply(t.Context(), "fu-missing", followup.Cancel(base()))
		if !errors.Is(err, followup.ErrNotFound) {
			t.Fatalf("Apply to unknown id: err = %v, want ErrNotFound", err)
		}
		requireNotFound(t, s, "fu-missing")
	})

	t.Run("TerminalNeverChanges", func(t *testing.T) {
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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
		s := open(t)
		now := base()
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

func testKeepDeadLetter(t *testing.T, open func(t *testing.T) followup.Store) {
	s := open(t)
	now := base()
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
