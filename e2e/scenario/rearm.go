package scenario

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Rearm is the scenario of POST /followups/{id}/rearm: a followup dropped
// while its thread was down is re-armed once the thread is back, and
// delivered with a fresh budget; the dropped one is unchanged; only a
// failed_dropped followup can be re-armed; an Idempotency-Key replays; and
// a re-arm replaces its run's pending followup, as a create does. The
// thread API of tg must answer as outage says.
func Rearm(t *testing.T, tg Target, outage *Outage) {
	thread := fmt.Sprintf("rearm/%d", time.Now().UnixNano())
	run := "run-" + thread
	lo, hi := tg.Limits.DelaySeconds()
	outage.Down(thread)
	body, _ := json.Marshal(map[string]any{
		"thread_id": thread, "prompt": "Check that the deploy finished.", "delay_seconds": lo,
		"reason": "deploy", "originating_run_id": run, "metadata": map[string]string{"channel": "ops"},
	})
	r := tg.Do(t, "POST", "/followups", string(body))
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.Followup(t).ID
	dropped := tg.WaitSettled(t, id)
	if dropped.Status != followup.StatusFailedDropped || dropped.DropReason != followup.DropThreadNotFound {
		t.Fatalf("while the thread was down: %s %s", dropped.Status, dropped.DropReason)
	}
	outage.Restore(thread)

	// Re-armed without a body: after the minimum delay, a fresh budget.
	r = tg.Do(t, "POST", "/followups/"+id+"/rearm", "")
	re := r.Followup(t)
	if r.Status != 201 || r.Header.Get("Location") != "/followups/"+re.ID || re.ID == id || re.RearmedFrom != id ||
		re.Status != followup.StatusScheduled || re.Attempts != 0 || len(re.Runs) != 0 ||
		re.ThreadID != thread || re.Prompt != dropped.Prompt || re.Reason != "deploy" || re.OriginatingRunID != run ||
		string(re.Metadata) != `{"channel":"ops"}` || re.DelaySecondsRequested == nil || *re.DelaySecondsRequested != lo {
		t.Fatalf("rearm: %d %s %s", r.Status, r.Header.Get("Location"), r.Body)
	}
	if got := tg.WaitSettled(t, re.ID); got.Status != followup.StatusDelivered || got.Attempts != 1 || tg.Deliveries(re.ID) != 1 {
		t.Errorf("the re-armed followup: %s after %d attempts, %d deliveries", got.Status, got.Attempts, tg.Deliveries(re.ID))
	}
	if again := tg.Get(t, id); again.Status != followup.StatusFailedDropped || !again.UpdatedAt.Equal(dropped.UpdatedAt) ||
		again.Attempts != dropped.Attempts || again.LastError != dropped.LastError {
		t.Errorf("re-arming changed the dropped followup: %+v", again)
	}

	// Only a dropped followup can be re-armed.
	if r := tg.Do(t, "POST", "/followups/"+re.ID+"/rearm", ""); r.Status != 409 || r.Code() != "conflict" {
		t.Errorf("rearm of a delivered followup: %d %s", r.Status, r.Body)
	}
	if r := tg.Do(t, "POST", "/followups/fu_unknown/rearm", `{}`); r.Status != 404 || r.Code() != "not_found" {
		t.Errorf("rearm of an unknown id: %d %s", r.Status, r.Body)
	}

	// The same key and body replay the original; another body conflicts.
	key := "rearm-" + id
	later := fmt.Sprintf(`{"delay_seconds":%d}`, hi)
	r = tg.Do(t, "POST", "/followups/"+id+"/rearm", later, "Idempotency-Key", key)
	keyed := r.Followup(t)
	if r.Status != 201 {
		t.Fatalf("rearm with a key: %d %s", r.Status, r.Body)
	}
	if r := tg.Do(t, "POST", "/followups/"+id+"/rearm", later, "Idempotency-Key", key); r.Status != 200 || r.Followup(t).ID != keyed.ID {
		t.Errorf("the same key and body again: %d %s, want 200 with %s", r.Status, r.Body, keyed.ID)
	}
	if r := tg.Do(t, "POST", "/followups/"+id+"/rearm", fmt.Sprintf(`{"delay_seconds":%d}`, hi-1), "Idempotency-Key", key); r.Status != 409 ||
		r.Code() != "idempotency_conflict" {
		t.Errorf("the same key with another body: %d %s", r.Status, r.Body)
	}

	// Replace per run: another re-arm replaces the run's scheduled one.
	r = tg.Do(t, "POST", "/followups/"+id+"/rearm", later)
	if f := r.Followup(t); r.Status != 201 || f.ReplacedPrevious == nil || f.ReplacedPrevious.ID != keyed.ID ||
		f.ReplacedPrevious.Status != followup.StatusCancelled {
		t.Errorf("a second re-arm of the run: %d %s", r.Status, r.Body)
	}
	if f := tg.Get(t, keyed.ID); f.Status != followup.StatusCancelled {
		t.Errorf("the replaced re-arm is %s", f.Status)
	}
}
