// Package storetest is the contract test suite every followup.Store must
// pass: the embedded store in-process, the DynamoDB store against an
// AWS-compatible endpoint. It tests only what the Store interface documents,
// never how a store keeps its data.
package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Open returns a fresh, empty store for t, and registers its cleanup with
// t. The suite calls it once per subtest, from parallel subtests.
type Open func(t *testing.T) followup.Store

// Run runs the whole contract against the stores open returns, one file
// per concern.
func Run(t *testing.T, open Open) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, open) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, open) })
	t.Run("Replace", func(t *testing.T) { testReplace(t, open) })
	t.Run("List", func(t *testing.T) { testList(t, open) })
	t.Run("Apply", func(t *testing.T) { testApply(t, open) })
	t.Run("Overdue", func(t *testing.T) { testOverdue(t, open) })
	t.Run("KeepDeadLetter", func(t *testing.T) { testKeepDeadLetter(t, open) })
}

// bundle is what one subtest works with: a store of its own and the
// suite's "now".
type bundle struct {
	store followup.Store
	now   time.Time
}

// setup makes t a parallel subtest with a fresh store. Every subtest has
// its own store, so none sees another's writes.
func setup(t *testing.T, open Open) *bundle {
	t.Helper()
	t.Parallel()
	return &bundle{store: open(t), now: base()}
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
		SweepAt:       runAt.Add(followup.SweepGrace),
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
