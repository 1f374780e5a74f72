package storetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

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
		SweepAt:       at(time.Hour + 7*time.Minute + 17),
		RearmedFrom:   "fu-dropped-earlier",
	}
}

// testCreateGet checks that Create then Get keeps every field, that a taken
// id is refused without a trace, and that an unknown id is not found.
func testCreateGet(t *testing.T, open Open) {
	t.Run("RoundTripsScheduled", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
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
		s := setup(t, open).store
		f := everyField("fu-every-field", base())
		mustCreate(t, s, f)
		requireSame(t, "Get", f, get(t, s, f.ID))
	})

	t.Run("CallerOwnsValues", func(t *testing.T) {
		s := setup(t, open).store
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
		b := setup(t, open)
		s, now := b.store, b.now
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
		s := setup(t, open).store
		_, err := s.Get(t.Context(), "fu-missing")
		if !errors.Is(err, followup.ErrNotFound) {
			t.Fatalf("Get unknown: err = %v, want ErrNotFound", err)
		}
		if code := followup.ErrorCode(err); code != followup.CodeNotFound {
			t.Fatalf("Get unknown: code = %s, want %s", code, followup.CodeNotFound)
		}
	})
}
