package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/shared/clocktest"
	"github.com/followups/followups/shared/config"
	"github.com/followups/followups/shared/dispatch"
	"github.com/followups/followups/shared/followup"
)

// These tests run followupd's real parts (bbolt store, timer, queue, HTTP
// dispatcher against a real socket) in-process, where the queue can be fed
// duplicates directly, as an at-least-once queue would.

type sink struct {
	mu       sync.Mutex
	requests map[string]int // followup id → requests
	accepted map[string]int // followup id → 2xx answers
	answer   func(thread string, attempt int) int
}

func newSink(t *testing.T, answer func(thread string, attempt int) int) (*sink, *url.URL) {
	t.Helper()
	s := &sink{requests: map[string]int{}, accepted: map[string]int{}, answer: answer}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m dispatch.Message
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &m)
		var attempt int
		fmt.Sscan(r.Header.Get(dispatch.AttemptHeader), &attempt)
		thread, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/threads/"), "/messages"))
		status := s.answer(thread, attempt)
		s.mu.Lock()
		s.requests[m.Followup.ID]++
		if status < 300 {
			s.accepted[m.Followup.ID]++
		}
		s.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return s, u
}

func (s *sink) counts(id string) (requests, accepted int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[id], s.accepted[id]
}

// testApp is the app on a clock the test moves.
type testApp struct {
	*app
	clock *clocktest.Clock
}

func newTestApp(t *testing.T, thread *url.URL) *testApp {
	t.Helper()
	c, err := config.Load(func(string) (string, bool) { return "", false }, settings...)
	if err != nil {
		t.Fatal(err)
	}
	c.ThreadAPIURL = thread
	c.DataDir = t.TempDir()
	c.Limits.MinDelay = time.Second
	c.Retry = followup.RetryPolicy{MaxAttempts: 4, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	c.DispatchTimeout = 2 * time.Second
	clock := clocktest.New(time.Now())
	a, err := openApp(&options{Config: c}, slog.New(slog.DiscardHandler), clock)
	if err != nil {
		t.Fatal(err)
	}
	a.start(context.Background())
	t.Cleanup(func() { a.close(context.Background()) })
	return &testApp{app: a, clock: clock}
}

// runUntil moves the app's clock on in steps of 10 ms, letting the app
// work in real time between steps, until done holds. The app's timers,
// retries and leases follow the clock; only the thread API is real.
func (a *testApp) runUntil(t *testing.T, what string, done func() bool) {
	t.Helper()
	a.runInSteps(t, what, 10*time.Millisecond, done)
}

// runInSteps is runUntil with steps of step, for at most 10,000 of them.
func (a *testApp) runInSteps(t *testing.T, what string, step time.Duration, done func() bool) {
	t.Helper()
	for range 10000 {
		if done() {
			return
		}
		a.clock.Advance(step)
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s: not after %s on the app's clock", what, 10000*step)
}

// at blocks until the app's clock reaches t.
func (a *testApp) at(at time.Time) {
	for a.clock.Now().Before(at) {
		time.Sleep(time.Millisecond)
	}
}

// idle reports whether the queue holds nothing, delayed or in flight.
func (a *testApp) idle() bool {
	st := a.queue.Stats()
	return st.Visible+st.InFlight+st.Delayed+st.DeadLetter == 0 && a.timer.Len() == 0
}

func (a *testApp) create(t *testing.T, body string) *followup.Followup {
	t.Helper()
	req := httptest.NewRequest("POST", "/followups", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	if rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var f followup.Followup
	if err := json.Unmarshal(rec.Body.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

func (a *testApp) get(t *testing.T, id string) *followup.Followup {
	t.Helper()
	f, err := a.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (a *testApp) waitSettled(t *testing.T, id string) *followup.Followup {
	t.Helper()
	a.runUntil(t, id+" settles", func() bool { return a.get(t, id).Status.Terminal() })
	return a.get(t, id)
}

func duplicate(a *testApp, f *followup.Followup, n int) {
	body, _ := json.Marshal(followup.MessageFor(f))
	for range n {
		_ = a.queue.SendFire(context.Background(), body, nil, 0)
	}
}

// Invariant 2: duplicate queue deliveries never dispatch a second time
// after a success, and concurrent duplicates never dispatch in parallel.
func TestInvariant2DuplicateQueueMessagesDispatchOnce(t *testing.T) {
	s, u := newSink(t, func(string, int) int { return 201 })
	a := newTestApp(t, u)
	f := a.create(t, `{"thread_id":"dup","prompt":"p","delay_seconds":1}`)
	a.clock.Advance(f.RunAt.Sub(a.clock.Now()))
	duplicate(a, f, 8) // concurrent with the timer's own message
	got := a.waitSettled(t, f.ID)
	duplicate(a, f, 8) // late duplicates after the success
	a.runUntil(t, "the late duplicates are handled", a.idle)
	if req, ok := s.counts(f.ID); req != 1 || ok != 1 || got.Status != followup.StatusDelivered || got.Attempts != 1 {
		t.Fatalf("thread got %d requests (%d accepted); followup %s after %d attempts", req, ok, got.Status, got.Attempts)
	}
}

// Invariant 1: every accepted followup reaches exactly one terminal status,
// whatever the thread answers, with cancels and duplicates mixed in.
func TestInvariant1EveryFollowupSettlesOnce(t *testing.T) {
	behaviours := []string{"ok", "gone", "closed", "bad", "down", "flaky", "throttled"}
	s, u := newSink(t, func(thread string, attempt int) int {
		switch strings.SplitN(thread, "-", 2)[0] {
		case "gone":
			return 404
		case "closed":
			return 409
		case "bad":
			return 400
		case "down":
			return 503
		case "flaky":
			if attempt < 3 {
				return 502
			}
		case "throttled":
			if attempt == 1 {
				return 429
			}
		}
		return 201
	})
	a := newTestApp(t, u)
	const n = 210
	ids := make([]string, n)
	cancelled := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		b := behaviours[i%len(behaviours)]
		f := a.create(t, fmt.Sprintf(`{"thread_id":"%s-%d","prompt":"p","delay_seconds":%d}`, b, i, 1+i%2))
		ids[i] = f.ID
		if i%4 == 0 {
			wg.Go(func() {
				a.at(f.RunAt)
				duplicate(a, f, 3)
			})
		}
		if i%5 == 0 {
			wg.Go(func() {
				a.at(f.RunAt.Add(time.Duration(rand.IntN(200)-100) * time.Millisecond))
				req := httptest.NewRequest("DELETE", "/followups/"+f.ID, nil)
				rec := httptest.NewRecorder()
				a.handler.ServeHTTP(rec, req)
				cancelled[i] = rec.Code == 200
			})
		}
	}
	racing := make(chan struct{})
	go func() { wg.Wait(); close(racing) }()
	a.runUntil(t, "the cancels and duplicates are sent", func() bool {
		select {
		case <-racing:
			return true
		default:
			return false
		}
	})
	tally := map[string]int{}
	for i, id := range ids {
		f := a.waitSettled(t, id)
		req, ok := s.counts(id)
		tally[string(f.Status)+"/"+string(f.DropReason)]++
		switch {
		case cancelled[i]:
			// A cancel may win during a retry wait: the failed attempts
			// before it stand, and nothing is dispatched after it.
			if f.Status != followup.StatusCancelled || ok != 0 || req != f.Attempts {
				t.Errorf("%s: cancel answered 200 but status %s, %d accepted of %d requests, %d attempts", id, f.Status, ok, req, f.Attempts)
			}
		case f.Status == followup.StatusDelivered:
			if ok != 1 || f.Attempts != req {
				t.Errorf("%s: delivered with %d accepted of %d requests, %d attempts", id, ok, req, f.Attempts)
			}
		case f.Status == followup.StatusFailedDropped:
			if ok != 0 || f.Attempts != req || f.DropReason == "" || len(f.Runs) != f.Attempts {
				t.Errorf("%s: dropped (%s) with %d accepted of %d requests, %d attempts, %d runs", id, f.DropReason, ok, req, f.Attempts, len(f.Runs))
			}
			if f.DropReason == followup.DropRetriesExhausted && f.Attempts != 4 {
				t.Errorf("%s: retries exhausted after %d attempts, want 4", id, f.Attempts)
			}
		default:
			t.Errorf("%s: status %s without a cancel", id, f.Status)
		}
	}
	// Settled means settled: more duplicates change nothing.
	for _, id := range ids {
		duplicate(a, a.get(t, id), 1)
	}
	a.runUntil(t, "the late duplicates are handled", a.idle)
	for _, id := range ids {
		before := a.waitSettled(t, id)
		if req, _ := s.counts(id); req != before.Attempts {
			t.Errorf("%s: %d requests after late duplicates, %d attempts recorded", id, req, before.Attempts)
		}
	}
	t.Logf("outcomes: %v", tally)
}

// The drop reasons that need a message no client can send, reached through
// followupd's real queue: a message for a followup with no record, and
// messages without a usable followup or thread id.
func TestQueueOnlyDropReasons(t *testing.T) {
	s, u := newSink(t, func(string, int) int { return 201 })
	a := newTestApp(t, u)
	ctx := context.Background()

	_ = a.queue.SendFire(ctx, []byte(`{"followup_id":"fu_orphan","thread_id":"t-1"}`), nil, 0)
	a.runUntil(t, "the orphan is recorded", func() bool {
		_, err := a.store.Get(ctx, "fu_orphan")
		return err == nil
	})
	orphan := a.waitSettled(t, "fu_orphan")
	if orphan.Status != followup.StatusFailedDropped || orphan.DropReason != followup.DropRecordMissing {
		t.Fatalf("orphan message: %+v", orphan)
	}

	f := a.create(t, `{"thread_id":"t-2","prompt":"p","delay_seconds":60}`)
	_ = a.queue.SendFire(ctx, []byte(`{"followup_id":"`+f.ID+`"}`), nil, 0)
	got := a.waitSettled(t, f.ID)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropInvalidMessage || got.Attempts != 0 {
		t.Fatalf("message without a thread id: %+v", got)
	}

	_ = a.queue.SendFire(ctx, []byte(`not json`), nil, 0)
	var kept []followup.DeadLetterRecord
	a.runUntil(t, "the unparsable message is kept", func() bool {
		kept = kept[:0]
		_ = a.store.DeadLetters(ctx, func(d followup.DeadLetterRecord) error {
			kept = append(kept, d)
			return nil
		})
		return len(kept) == 1 && kept[0].Body == "not json"
	})
	if req, _ := s.counts(f.ID); req != 0 {
		t.Fatalf("the thread got %d requests", req)
	}
}

// A followup whose message was lost (dropped from the timer here; on AWS a
// schedule deleted by hand or a purged queue) is found by the sweep, which
// runs every minute, sent again, counted, and delivered.
func TestSweepRedrivesALostMessage(t *testing.T) {
	s, u := newSink(t, func(string, int) int { return 201 })
	a := newTestApp(t, u)
	f := a.create(t, `{"thread_id":"lost","prompt":"p","delay_seconds":1}`)
	if err := a.timer.Unschedule(context.Background(), f.ID); err != nil {
		t.Fatal(err)
	}
	a.runInSteps(t, "the sweep redrives and it is delivered", time.Second, func() bool {
		return a.get(t, f.ID).Status == followup.StatusDelivered
	})
	late := a.clock.Now().Sub(f.RunAt)
	if late < followup.SweepGrace || late > followup.SweepGrace+2*sweepEvery {
		t.Errorf("delivered %s after run_at; the sweep should find it between %s and %s", late, followup.SweepGrace, followup.SweepGrace+2*sweepEvery)
	}
	if req, ok := s.counts(f.ID); req != 1 || ok != 1 {
		t.Fatalf("thread got %d requests (%d accepted)", req, ok)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "followups_redriven_total 1\n") {
		t.Fatalf("/metrics does not count the redrive:\n%s", rec.Body)
	}
}
