package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/followups/followups/shared/api"
	"github.com/followups/followups/shared/followup"
)

func TestRearm(t *testing.T) {
	srv := contractServer(t, api.Options{})
	// A run's pending followup on the same thread: the dropped one has no
	// run, so its re-arm replaces nothing.
	doJSON(t, srv, "POST", "/followups", `{"thread_id":"t-dropped","prompt":"later","delay_seconds":600,"originating_run_id":"run-9"}`, 201)

	_, status, header, body := send(t, srv, exchange{method: "POST", path: "/followups/fu_dropped/rearm"})
	var f followup.Followup
	if status != 201 || jsonInto(t, body, &f).RearmedFrom != "fu_dropped" || f.ThreadID != "t-dropped" || f.Prompt != "check" ||
		f.Status != followup.StatusScheduled || f.Attempts != 0 || len(f.Runs) != 0 || header.Get("Location") != "/followups/"+f.ID ||
		!f.RunAt.Equal(now.Add(followup.DefaultLimits.MinDelay)) {
		t.Fatalf("rearm without a body: %d %s %s", status, header.Get("Location"), body)
	}
	if f.ReplacedPrevious != nil {
		t.Errorf("the dropped followup had no run, yet the re-arm replaced %s", f.ReplacedPrevious.ID)
	}
	if _, status, _, body := send(t, srv, exchange{method: "GET", path: "/followups/fu_dropped"}); status != 200 ||
		jsonInto(t, body, &followup.Followup{}).Status != followup.StatusFailedDropped {
		t.Errorf("the dropped followup changed: %s", body)
	}

	chunked := []string{"Transfer-Encoding", "chunked", "Content-Type", "<none>"}
	for _, tc := range []struct {
		name string
		exchange
		code string
	}{
		{"an empty object", exchange{body: `{}`, want: 201}, ""},
		{"a delay", exchange{body: `{"delay_seconds":120}`, want: 201}, ""},
		{"a wall-clock time", exchange{body: `{"run_at":"2026-11-27T14:00:00","timezone":"Europe/Paris"}`, want: 201}, ""},
		{"an empty chunked body without Content-Type", exchange{headers: chunked, want: 201}, ""},
		{"a chunked body without Content-Type", exchange{body: `{}`, headers: chunked, want: 415}, "unsupported_media_type"},
		{"a body as text", exchange{body: `{}`, headers: []string{"Content-Type", "text/plain"}, want: 415}, "unsupported_media_type"},
		{"both times", exchange{body: `{"delay_seconds":120,"run_at":"2026-11-27T14:00:00Z"}`, want: 400}, "invalid_argument"},
		{"a create field", exchange{body: `{"prompt":"x"}`, want: 400}, "invalid_argument"},
		{"too soon", exchange{body: `{"delay_seconds":1}`, want: 400}, "out_of_range"},
		{"not JSON", exchange{body: `{`, want: 400}, "invalid_json"},
		{"an empty Idempotency-Key", exchange{headers: []string{"Idempotency-Key", ""}, want: 400}, "invalid_argument"},
	} {
		tc.method, tc.path = "POST", "/followups/fu_dropped/rearm"
		_, status, _, raw := send(t, srv, tc.exchange)
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if jsonInto(t, raw, &e); status != tc.want || e.Error.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, raw, tc.want, tc.code)
		}
	}

	// Only a dropped followup can be re-armed; an unknown id is not found.
	if _, status, _, body := send(t, srv, exchange{method: "POST", path: "/followups/" + f.ID + "/rearm"}); status != 409 ||
		!strings.Contains(string(body), "is scheduled; only a failed_dropped followup can be re-armed") {
		t.Errorf("rearm of a scheduled followup: %d %s", status, body)
	}
	if _, status, _, body := send(t, srv, exchange{method: "POST", path: "/followups/fu_nope/rearm"}); status != 404 ||
		string(body) != `{"error":{"code":"not_found","message":"followup \"fu_nope\" not found"}}`+"\n" {
		t.Errorf("rearm of an unknown id: %d %s", status, body)
	}
}

func TestRearmIdempotencyAndReplace(t *testing.T) {
	srv := contractServer(t, api.Options{})
	key := []string{"Idempotency-Key", "rearm-1"}
	first := doJSONWith(t, srv, exchange{"POST", "/followups/fu_dropped/rearm", `{"delay_seconds":300}`, key, 201})
	// The same key and body: the original, nothing new.
	if again := doJSONWith(t, srv, exchange{"POST", "/followups/fu_dropped/rearm", ` { "delay_seconds" : 300 } `, key, 200}); again != first {
		t.Errorf("replay returned %s, want %s", again, first)
	}
	for _, x := range []exchange{
		{"POST", "/followups/fu_dropped/rearm", `{"delay_seconds":301}`, key, 409},
		{"POST", "/followups/fu_dropped/rearm", "", key, 409},
		{"POST", "/followups", `{"thread_id":"t-dropped","prompt":"check","delay_seconds":300}`, key, 409},
	} {
		if _, status, _, body := send(t, srv, x); status != x.want || !strings.Contains(string(body), `"idempotency_conflict"`) {
			t.Errorf("%s %s %q with the key: %d %s, want 409 idempotency_conflict", x.method, x.path, x.body, status, body)
		}
	}

	// Replace per run: the re-arm of a run's dropped followup replaces the
	// run's scheduled one, as a create would.
	pending := doJSON(t, srv, "POST", "/followups", `{"thread_id":"t-run","prompt":"q","delay_seconds":900,"originating_run_id":"run-1"}`, 201)
	_, status, _, body := send(t, srv, exchange{method: "POST", path: "/followups/fu_dropped_run/rearm"})
	var f followup.Followup
	if jsonInto(t, body, &f); status != 201 || f.OriginatingRunID != "run-1" || f.ReplacedPrevious == nil ||
		f.ReplacedPrevious.ID != pending || f.ReplacedPrevious.Status != followup.StatusCancelled {
		t.Errorf("rearm within a run: %d %s", status, body)
	}
}

func jsonInto[T any](t *testing.T, raw []byte, v *T) *T {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

// doJSONWith sends x, which must get x.want, and returns the id answered.
func doJSONWith(t *testing.T, srv *httptest.Server, x exchange) string {
	t.Helper()
	_, status, _, raw := send(t, srv, x)
	if status != x.want {
		t.Fatalf("%s %s: %d %s, want %d", x.method, x.path, status, raw, x.want)
	}
	return jsonInto(t, raw, &followup.Followup{}).ID
}
