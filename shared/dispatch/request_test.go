package dispatch

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

func TestDispatchSendsTheDocumentedRequest(t *testing.T) {
	secret := []byte("whsec_test")
	thread := startThread(t, nil)
	c := newClient(t, thread.URL+"/api", Options{Token: "tok-123", SigningSecret: secret})
	f := sampleFollowup()

	a := c.Dispatch(t.Context(), f, 2)
	if a.Outcome != followup.OutcomeSuccess || a.HTTPStatus != 200 || a.Error != "" {
		t.Fatalf("Dispatch = %+v, want success 200", a)
	}
	got := thread.only(t)

	if got.Method != "POST" {
		t.Errorf("method = %s, want POST", got.Method)
	}
	if want := "/api/threads/a%2Fb%20c%3Fd%23%C3%A9/messages"; got.RequestURI != want {
		t.Errorf("request URI = %s, want %s", got.RequestURI, want)
	}
	for name, want := range map[string]string{
		"Content-Type":       "application/json",
		"Idempotency-Key":    f.ID,
		"X-Followup-Id":      f.ID,
		"X-Followup-Attempt": "2",
		"Authorization":      "Bearer tok-123",
		"User-Agent":         "followups/1",
	} {
		if v := got.Header.Values(name); len(v) != 1 || v[0] != want {
			t.Errorf("header %s = %q, want [%q]", name, v, want)
		}
	}

	sig := got.Header.Get("X-Followup-Signature")
	if want := "t=" + strconv.FormatInt(now.Unix(), 10) + ",v1="; len(sig) != len(want)+64 || sig[:len(want)] != want {
		t.Errorf("X-Followup-Signature = %q, want %s{64 hex digits}", sig, want)
	}
	if err := Verify(secret, sig, got.Body, now, time.Minute); err != nil {
		t.Errorf("Verify(signature of the received body) = %v", err)
	}

	compareJSON(t, "body", decodeJSON(t, got.Body), map[string]any{
		"role":      "user",
		"synthetic": true,
		"source":    "followup",
		"content":   "Check whether the <nightly> build finished & report back.",
		"followup": map[string]any{
			"id":                      f.ID,
			"scheduled_at":            "2026-03-14T15:09:26.123456789Z",
			"scheduled_for":           "2026-03-14T15:09:26.5Z",
			"delay_seconds_requested": json.Number("3600"),
			"reason":                  "waiting on CI",
			"originating_run_id":      "run-42",
			"attempt":                 json.Number("2"),
		},
		"metadata": map[string]any{"channel": "slack", "n": json.Number("1")},
	})
	if !bytes.Contains(got.Body, []byte(`the <nightly> build finished & report`)) {
		t.Errorf("body escapes the prompt's HTML characters: %s", got.Body)
	}
}

func TestDispatchOmitsWhatIsNotSet(t *testing.T) {
	thread := startThread(t, nil)
	c := newClient(t, thread.URL, Options{})
	f := &followup.Followup{
		ID:        "fu_2",
		ThreadID:  "t-1",
		Prompt:    "Ping.",
		RunAt:     now.Add(time.Hour),
		CreatedAt: now,
	}

	if a := c.Dispatch(t.Context(), f, 1); a.Outcome != followup.OutcomeSuccess {
		t.Fatalf("Dispatch = %+v, want success", a)
	}
	got := thread.only(t)

	for _, name := range []string{"Authorization", "X-Followup-Signature"} {
		if v, ok := got.Header[name]; ok {
			t.Errorf("header %s = %q, want none", name, v)
		}
	}
	compareJSON(t, "body", decodeJSON(t, got.Body), map[string]any{
		"role":      "user",
		"synthetic": true,
		"source":    "followup",
		"content":   "Ping.",
		"followup": map[string]any{
			"id":            "fu_2",
			"scheduled_at":  "2026-03-14T15:09:26Z",
			"scheduled_for": "2026-03-14T16:09:26Z",
			"attempt":       json.Number("1"),
		},
	})
}

func TestDispatchHeadersByConfiguration(t *testing.T) {
	tests := []struct {
		name          string
		opts          Options
		wantAuth      []string // Authorization values; nil for none
		wantSignature bool
	}{
		{"neither", Options{}, nil, false},
		{"token only", Options{Token: "tok"}, []string{"Bearer tok"}, false},
		{"secret only", Options{SigningSecret: []byte("s")}, nil, true},
		{"both", Options{Token: "tok", SigningSecret: []byte("s")}, []string{"Bearer tok"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			thread := startThread(t, nil)
			c := newClient(t, thread.URL, tt.opts)
			c.Dispatch(t.Context(), sampleFollowup(), 1)
			got := thread.only(t)

			if v := got.Header.Values("Authorization"); !slices.Equal(v, tt.wantAuth) {
				t.Errorf("Authorization = %q, want %q", v, tt.wantAuth)
			}
			sig, ok := got.Header["X-Followup-Signature"]
			if ok != tt.wantSignature {
				t.Fatalf("X-Followup-Signature = %q, want present=%v", sig, tt.wantSignature)
			}
			if ok {
				if err := Verify(tt.opts.SigningSecret, sig[0], got.Body, now, time.Minute); err != nil {
					t.Errorf("Verify = %v", err)
				}
			}
		})
	}
}

func TestDispatchKeepsTheBasePath(t *testing.T) {
	tests := []struct {
		name     string
		base     string // appended to the server's URL
		threadID string
		want     string // RequestURI
	}{
		{"no path", "", "t-1", "/threads/t-1/messages"},
		{"root", "/", "t-1", "/threads/t-1/messages"},
		{"prefix", "/api", "t-1", "/api/threads/t-1/messages"},
		{"prefix with slash", "/api/", "t-1", "/api/threads/t-1/messages"},
		{"deep prefix", "/api/v2", "t-1", "/api/v2/threads/t-1/messages"},
		{"escaped prefix", "/tenant%2Fa", "t-1", "/tenant%2Fa/threads/t-1/messages"},
		{"query kept", "/api?code=abc", "t-1", "/api/threads/t-1/messages?code=abc"},
		{"escaped thread id", "/api", "a/b c?d#é", "/api/threads/a%2Fb%20c%3Fd%23%C3%A9/messages"},
		{"percent and plus", "", "100%+;,", "/threads/100%25+%3B%2C/messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			thread := startThread(t, nil)
			c := newClient(t, thread.URL+tt.base, Options{})
			f := sampleFollowup()
			f.ThreadID = tt.threadID

			if a := c.Dispatch(t.Context(), f, 1); a.Outcome != followup.OutcomeSuccess {
				t.Fatalf("Dispatch = %+v, want success", a)
			}
			if got := thread.only(t).RequestURI; got != tt.want {
				t.Errorf("request URI = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDispatchSameIdempotencyKeyOnEveryAttempt(t *testing.T) {
	thread := startThread(t, nil)
	c := newClient(t, thread.URL, Options{})
	f := sampleFollowup()
	for n := 1; n <= 3; n++ {
		c.Dispatch(t.Context(), f, n)
	}
	got := thread.received()
	if len(got) != 3 {
		t.Fatalf("thread received %d requests, want 3", len(got))
	}
	for i, r := range got {
		if k := r.Header.Get("Idempotency-Key"); k != f.ID {
			t.Errorf("attempt %d: Idempotency-Key = %q, want %q", i+1, k, f.ID)
		}
		if n := r.Header.Get("X-Followup-Attempt"); n != strconv.Itoa(i+1) {
			t.Errorf("attempt %d: X-Followup-Attempt = %q", i+1, n)
		}
	}
}

func BenchmarkRequestBuild(b *testing.B) {
	c := newClient(b, "http://thread.example/api", Options{Token: "tok", SigningSecret: []byte("whsec_bench")})
	f := sampleFollowup()
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.newRequest(ctx, f, 1); err != nil {
			b.Fatal(err)
		}
	}
}
