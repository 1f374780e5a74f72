package followup_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// reflected is the client view as encoding/json writes it from the
// Followup's fields and tags: what AppendJSON must match byte for byte.
func reflected(t testing.TB, f *followup.Followup) []byte {
	t.Helper()
	type view struct {
		ID                    string              `json:"id"`
		ThreadID              string              `json:"thread_id"`
		Prompt                string              `json:"prompt"`
		Reason                string              `json:"reason,omitempty"`
		OriginatingRunID      string              `json:"originating_run_id,omitempty"`
		Metadata              json.RawMessage     `json:"metadata,omitempty"`
		RunAt                 time.Time           `json:"run_at"`
		DelaySecondsRequested *int64              `json:"delay_seconds_requested,omitempty"`
		Status                followup.Status     `json:"status"`
		Attempts              int                 `json:"attempts"`
		LastError             string              `json:"last_error,omitempty"`
		DropReason            followup.DropReason `json:"drop_reason,omitempty"`
		Runs                  []followup.Run      `json:"runs"`
		ReplacedPrevious      json.RawMessage     `json:"replaced_previous,omitempty"`
		RearmedFrom           string              `json:"rearmed_from,omitempty"`
		CreatedAt             time.Time           `json:"created_at"`
		UpdatedAt             time.Time           `json:"updated_at"`
		SettledAt             *time.Time          `json:"settled_at,omitempty"`
	}
	v := view{
		ID: f.ID, ThreadID: f.ThreadID, Prompt: f.Prompt, Reason: f.Reason, OriginatingRunID: f.OriginatingRunID,
		Metadata: f.Metadata, RunAt: f.RunAt.UTC(), DelaySecondsRequested: f.DelaySecondsRequested, Status: f.Status,
		Attempts: f.Attempts, LastError: f.LastError, DropReason: f.DropReason, Runs: f.Runs, RearmedFrom: f.RearmedFrom,
		CreatedAt: f.CreatedAt.UTC(), UpdatedAt: f.UpdatedAt.UTC(),
	}
	if v.Runs == nil {
		v.Runs = []followup.Run{}
	}
	if f.ReplacedPrevious != nil {
		v.ReplacedPrevious = reflected(t, f.ReplacedPrevious)
	}
	if f.SettledAt != nil {
		s := f.SettledAt.UTC()
		v.SettledAt = &s
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonSample(prompt, reason, lastErr string, metadata []byte) *followup.Followup {
	local := time.FixedZone("local", -7*3600)
	settled := time.Date(2030, 5, 6, 9, 0, 0, 500, local)
	delay := int64(3600)
	prev := &followup.Followup{ID: "fu_prev", ThreadID: "th <1>", Prompt: prompt, Status: followup.StatusCancelled,
		RunAt: time.Date(2030, 5, 6, 8, 0, 0, 0, time.UTC), CreatedAt: time.Date(2030, 5, 6, 7, 0, 0, 0, local), UpdatedAt: settled, SettledAt: &settled}
	f := &followup.Followup{
		ID: "fu_01", ThreadID: "team/a b", Prompt: prompt, Reason: reason, OriginatingRunID: "run & co", Metadata: metadata,
		RunAt: time.Date(2030, 5, 6, 8, 0, 0, 123_456_789, local), DelaySecondsRequested: &delay,
		Status: followup.StatusFailedDropped, Attempts: 2, LastError: lastErr, DropReason: followup.DropRetriesExhausted,
		Runs: []followup.Run{
			{Attempt: 1, StartedAt: settled, FinishedAt: settled.Add(time.Millisecond), DurationMS: 1, Outcome: followup.OutcomeRetryableError, HTTPStatus: 503, Error: lastErr},
			{Attempt: 2, StartedAt: settled, FinishedAt: settled, Outcome: followup.OutcomeDrop},
		},
		ReplacedPrevious: prev, RearmedFrom: "fu_00",
		CreatedAt: time.Date(2030, 5, 6, 7, 0, 0, 0, local), UpdatedAt: settled, SettledAt: &settled,
	}
	return f
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, f := range []*followup.Followup{
		{ID: "fu_min", ThreadID: "t", Status: followup.StatusScheduled},
		jsonSample("check <b>the</b> build & \u2028 \"tests\"\n\t\x01 \xff", "reason é", "503: <html>", []byte(`{"a":"<&>","b":[1,{"c":null}],"d":"\u2029"}`)),
		jsonSample("", "", "", nil),
	} {
		want := reflected(t, f)
		got, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("json.Marshal(followup):\n got %s\nwant %s", got, want)
		}
		if got := f.AppendJSON([]byte("x")); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Errorf("AppendJSON:\n got %s\nwant x%s", got, want)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("check <b>", "why & how", "503 \u2028", `{"a":"<x>"}`)
	f.Fuzz(func(t *testing.T, prompt, reason, lastErr, metadata string) {
		var compact bytes.Buffer
		var md []byte
		if json.Compact(&compact, []byte(metadata)) == nil && bytes.HasPrefix(compact.Bytes(), []byte("{")) {
			md = compact.Bytes()
		}
		fu := jsonSample(prompt, reason, lastErr, md)
		if got, want := fu.AppendJSON(nil), reflected(t, fu); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
		}
	})
}
