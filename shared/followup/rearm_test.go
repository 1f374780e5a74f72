package followup_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

func (fx *fixture) rearm(t *testing.T, id, rearmBody, key string) (followup.Created, error) {
	t.Helper()
	req, err := followup.ParseRearm([]byte(rearmBody))
	if err != nil {
		t.Fatalf("ParseRearm(%q): %v", rearmBody, err)
	}
	return fx.svc.Rearm(context.Background(), id, req, key)
}

func TestRearm(t *testing.T) {
	fx := newFixture(t, gone, ok)
	f := fx.create(t, `{"thread_id":"t-1","prompt":"check","delay_seconds":60,"reason":"ci","originating_run_id":"run-7","metadata":{"k":1}}`, "").Followup
	fx.fire(t, f)
	dropped := fx.get(t, f.ID)
	if dropped.Status != followup.StatusFailedDropped {
		t.Fatalf("setup: %+v", dropped)
	}

	c, err := fx.rearm(t, f.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	n := c.Followup
	if n.ID == f.ID || n.RearmedFrom != f.ID || n.Status != followup.StatusScheduled || n.Attempts != 0 || len(n.Runs) != 0 ||
		n.ThreadID != f.ThreadID || n.Prompt != f.Prompt || n.Reason != f.Reason || n.OriginatingRunID != f.OriginatingRunID ||
		string(n.Metadata) != string(f.Metadata) {
		t.Fatalf("re-armed followup: %+v", n)
	}
	if want := fx.clock.Now().Add(60 * time.Second); !n.RunAt.Equal(want) || n.DelaySecondsRequested == nil || *n.DelaySecondsRequested != 60 {
		t.Fatalf("an empty body means after the minimum delay: run_at %s, delay %v", n.RunAt, n.DelaySecondsRequested)
	}
	if again := fx.get(t, f.ID); again.Version != dropped.Version || again.Status != followup.StatusFailedDropped {
		t.Fatal("re-arming changed the dropped followup")
	}
	if _, ok := fx.sched.Pending(n.ID); !ok {
		t.Fatal("the re-armed followup has no schedule")
	}
	// A fresh budget: it is delivered.
	fx.fire(t, n)
	if got := fx.get(t, n.ID); got.Status != followup.StatusDelivered || got.Attempts != 1 {
		t.Fatalf("the re-armed followup: %+v", got)
	}

	// Only a dropped followup can be re-armed.
	if _, err := fx.rearm(t, n.ID, "", ""); followup.ErrorCode(err) != followup.CodeConflict {
		t.Fatalf("rearm of a delivered followup: %v, want conflict", err)
	}
	if _, err := fx.rearm(t, "fu_unknown", "", ""); followup.ErrorCode(err) != followup.CodeNotFound {
		t.Fatalf("rearm of an unknown id: %v, want not_found", err)
	}
}

func TestRearmIdempotencyAndReplace(t *testing.T) {
	fx := newFixture(t, gone)
	f := fx.create(t, `{"thread_id":"t-1","prompt":"check","delay_seconds":60,"originating_run_id":"run-7"}`, "").Followup
	fx.fire(t, f)

	first, err := fx.rearm(t, f.ID, `{"delay_seconds": 120}`, "rearm-1")
	if err != nil || first.Replayed {
		t.Fatalf("first rearm: %+v, %v", first, err)
	}
	again, err := fx.rearm(t, f.ID, `{ "delay_seconds":120 }`, "rearm-1")
	if err != nil || !again.Replayed || again.Followup.ID != first.Followup.ID {
		t.Fatalf("the same key and body: %+v, %v", again, err)
	}
	if _, err := fx.rearm(t, f.ID, `{"delay_seconds": 300}`, "rearm-1"); followup.ErrorCode(err) != followup.CodeIdempotencyConflict {
		t.Fatalf("the same key, another body: %v", err)
	}
	// The same key on a create is another request.
	req, err := followup.ParseCreate([]byte(`{"thread_id":"t-1","prompt":"check","delay_seconds":120}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.svc.Create(context.Background(), req, "rearm-1"); followup.ErrorCode(err) != followup.CodeIdempotencyConflict {
		t.Fatalf("a create with a rearm's key: %v, want idempotency_conflict", err)
	}

	// Replace per run: a second rearm of the same run (another key)
	// cancels the first, which is still scheduled.
	second, err := fx.rearm(t, f.ID, `{"run_at":"2026-11-27T13:00:00Z"}`, "")
	if err != nil {
		t.Fatal(err)
	}
	if p := second.Followup.ReplacedPrevious; p == nil || p.ID != first.Followup.ID || p.Status != followup.StatusCancelled {
		t.Fatalf("replaced_previous: %+v", p)
	}
	if got := fx.get(t, first.Followup.ID); got.Status != followup.StatusCancelled {
		t.Fatalf("the replaced rearm: %s", got.Status)
	}
}

func TestParseRearm(t *testing.T) {
	for _, tt := range []struct {
		body, code, field string
	}{
		{``, "", ""},
		{`{}`, "", ""},
		{`{"delay_seconds":90}`, "", ""},
		{`{"run_at":"2026-11-27T13:00:00","timezone":"Europe/Paris"}`, "", ""},
		{`{"delay_seconds":90,"run_at":"2026-11-27T13:00:00Z"}`, "invalid_argument", "delay_seconds"},
		{`{"timezone":"Europe/Paris"}`, "invalid_argument", "timezone"},
		{`{"prompt":"another"}`, "invalid_argument", "prompt"},
		{`{"delay_seconds":"90"}`, "invalid_argument", "delay_seconds"},
		{`[1]`, "invalid_json", ""},
	} {
		_, err := followup.ParseRearm([]byte(tt.body))
		var fe *followup.Error
		switch {
		case tt.code == "" && err != nil:
			t.Errorf("%s: %v", tt.body, err)
		case tt.code != "" && (!errors.As(err, &fe) || string(fe.Code) != tt.code || fe.Field != tt.field):
			t.Errorf("%s: %v, want %s on %q", tt.body, err, tt.code, tt.field)
		}
	}
}
