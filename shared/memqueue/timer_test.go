package memqueue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/memqueue"
)

// startTimer starts a timer over a started queue whose handler is rec; both
// stop when the test ends, the timer first.
func startTimer(t testing.TB, clock memqueue.Clock, rec *recorder) (*memqueue.Queue, *memqueue.Timer) {
	t.Helper()
	q := startQueue(t, clock, memqueue.QueueOptions{Handler: rec.handle})
	tm := memqueue.NewTimer(q)
	tm.Start()
	t.Cleanup(tm.Stop)
	return q, tm
}

func scheduledFollowup(id string, runAt time.Time) *followup.Followup {
	return &followup.Followup{
		ID: id, ThreadID: "thread-" + id, Prompt: "p", RunAt: runAt, NextAttemptAt: runAt,
		Status: followup.StatusScheduled,
	}
}

// messageBody is what the queue carries for f.
func messageBody(t testing.TB, f *followup.Followup) string {
	t.Helper()
	b, err := json.Marshal(followup.MessageFor(f))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTimerFiresAtDue(t *testing.T) {
	tests := []struct {
		name          string
		runAt         time.Duration // from now
		nextAttemptAt time.Duration // from now; 0 leaves it unset
		fires         time.Duration
	}{
		{"a minute away", time.Minute, time.Minute, time.Minute},
		{"a day away", 24 * time.Hour, 24 * time.Hour, 24 * time.Hour},
		{"retry after run_at", time.Minute, 7 * time.Minute, 7 * time.Minute},
		{"run_at when next attempt is unset", 3 * time.Minute, 0, 3 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newManualClock()
			rec := newRecorder(nil)
			_, tm := startTimer(t, clock, rec)
			f := scheduledFollowup("fu_1", clockStart.Add(tc.runAt))
			f.NextAttemptAt = time.Time{}
			if tc.nextAttemptAt != 0 {
				f.NextAttemptAt = clockStart.Add(tc.nextAttemptAt)
			}
			if err := tm.Schedule(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			clock.WaitForAlarm(t, clockStart.Add(tc.fires))
			clock.Advance(tc.fires - time.Nanosecond)
			rec.none(t)
			if n := tm.Len(); n != 1 {
				t.Errorf("Len = %d before due, want 1", n)
			}
			clock.Advance(time.Nanosecond)
			if d := rec.next(t); string(d.Body) != messageBody(t, f) {
				t.Errorf("body %s, want %s", d.Body, messageBody(t, f))
			}
			if n := tm.Len(); n != 0 {
				t.Errorf("Len = %d after firing, want 0", n)
			}
		})
	}
}

func TestTimerPastDueFiresAtOnce(t *testing.T) {
	tests := []struct {
		name string
		due  time.Duration // from now
	}{
		{"due now", 0},
		{"a nanosecond late", -time.Nanosecond},
		{"an hour late", -time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newManualClock()
			rec := newRecorder(nil)
			_, tm := startTimer(t, clock, rec)
			f := scheduledFollowup("fu_1", clockStart.Add(tc.due))
			if err := tm.Schedule(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			if d := rec.next(t); string(d.Body) != messageBody(t, f) {
				t.Errorf("body %s, want %s", d.Body, messageBody(t, f))
			}
			if n := tm.Len(); n != 0 {
				t.Errorf("Len = %d, want 0", n)
			}
		})
	}
}

func TestTimerUnschedule(t *testing.T) {
	clock := newManualClock()
	rec := newRecorder(nil)
	q, tm := startTimer(t, clock, rec)
	ctx := context.Background()
	cancelled := scheduledFollowup("fu_cancelled", clockStart.Add(time.Minute))
	kept := scheduledFollowup("fu_kept", clockStart.Add(time.Minute))
	for _, f := range []*followup.Followup{cancelled, kept} {
		if err := tm.Schedule(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{cancelled.ID, cancelled.ID, "fu_never_scheduled"} {
		if err := tm.Unschedule(ctx, id); err != nil {
			t.Errorf("Unschedule(%s) = %v, want nil", id, err)
		}
	}
	if n := tm.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	clock.Advance(time.Hour)
	if d := rec.next(t); string(d.Body) != messageBody(t, kept) {
		t.Errorf("fired %s, want only %s", d.Body, messageBody(t, kept))
	}
	drained(t, q)
	rec.none(t)
	if err := tm.Unschedule(ctx, kept.ID); err != nil {
		t.Errorf("Unschedule after firing = %v, want nil", err)
	}
}

func TestTimerRescheduleMovesTheTime(t *testing.T) {
	tests := []struct {
		name          string
		first, second time.Duration
	}{
		{"earlier", 10 * time.Minute, 5 * time.Minute},
		{"later", 10 * time.Minute, 20 * time.Minute},
		{"to the past", 10 * time.Minute, -time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newManualClock()
			rec := newRecorder(nil)
			q, tm := startTimer(t, clock, rec)
			ctx := context.Background()
			f := scheduledFollowup("fu_1", clockStart.Add(tc.first))
			if err := tm.Schedule(ctx, f); err != nil {
				t.Fatal(err)
			}
			f.NextAttemptAt = clockStart.Add(tc.second)
			if err := tm.Schedule(ctx, f); err != nil {
				t.Fatal(err)
			}
			if tc.second > 0 {
				if n := tm.Len(); n != 1 {
					t.Errorf("Len = %d, want 1", n)
				}
				clock.WaitForAlarm(t, clockStart.Add(tc.second))
				clock.Advance(tc.second - time.Nanosecond)
				rec.none(t)
				clock.Advance(time.Nanosecond)
			}
			if d := rec.next(t); string(d.Body) != messageBody(t, f) {
				t.Errorf("body %s, want %s", d.Body, messageBody(t, f))
			}
			drained(t, q)
			clock.Advance(time.Hour) // past the first time too
			rec.none(t)
			if n := tm.Len(); n != 0 {
				t.Errorf("Len = %d, want 0", n)
			}
		})
	}
}

func TestTimerLoadMany(t *testing.T) {
	const n = 20_000
	clock := newManualClock()
	rec := newRecorder(nil)
	rec.got = make(chan memqueue.Delivery, n)
	q := startQueue(t, clock, memqueue.QueueOptions{Handler: rec.handle})
	tm := memqueue.NewTimer(q)
	t.Cleanup(tm.Stop)

	// Due times spread over an hour, loaded in no particular order, before
	// the timer starts as at a restart.
	due := make(map[string]time.Duration, n)
	for i := range n {
		id := fmt.Sprintf("fu_%05d", i)
		due[id] = time.Duration(rand.Int64N(int64(time.Hour))) + time.Nanosecond
		if err := tm.Load(followup.Message{FollowupID: id, ThreadID: "t"}, clockStart.Add(due[id])); err != nil {
			t.Fatal(err)
		}
	}
	if got := tm.Len(); got != n {
		t.Fatalf("Len = %d, want %d", got, n)
	}
	tm.Start()

	fired := make(map[string]bool, n)
	for _, step := range []time.Duration{20 * time.Minute, 40 * time.Minute} {
		clock.Advance(step)
		elapsed := clock.Now().Sub(clockStart)
		want := 0
		for _, d := range due {
			if d <= elapsed {
				want++
			}
		}
		for len(fired) < want {
			var m followup.Message
			if err := json.Unmarshal(rec.next(t).Body, &m); err != nil {
				t.Fatal(err)
			}
			if fired[m.FollowupID] {
				t.Fatalf("%s fired twice", m.FollowupID)
			}
			if due[m.FollowupID] > elapsed {
				t.Fatalf("%s fired at %s, due at %s", m.FollowupID, elapsed, due[m.FollowupID])
			}
			fired[m.FollowupID] = true
		}
		drained(t, q)
		rec.none(t)
		if got := tm.Len(); got != n-want {
			t.Errorf("Len = %d after %s, want %d", got, elapsed, n-want)
		}
	}
}

func TestTimerStopped(t *testing.T) {
	clock := newManualClock()
	rec := newRecorder(nil)
	_, tm := startTimer(t, clock, rec)
	tm.Stop()
	ctx := context.Background()
	f := scheduledFollowup("fu_1", clockStart.Add(time.Minute))
	if err := tm.Schedule(ctx, f); !errors.Is(err, memqueue.ErrStopped) {
		t.Errorf("Schedule after Stop = %v, want ErrStopped", err)
	}
	if err := tm.Load(followup.MessageFor(f), clockStart); !errors.Is(err, memqueue.ErrStopped) {
		t.Errorf("Load after Stop = %v, want ErrStopped", err)
	}
	if err := tm.Unschedule(ctx, f.ID); err != nil {
		t.Errorf("Unschedule after Stop = %v, want nil", err)
	}
	rec.none(t)
}

func ExampleTimer() {
	done := make(chan struct{})
	q := memqueue.NewQueue(memqueue.QueueOptions{
		Handler: func(ctx context.Context, d memqueue.Delivery) followup.Verdict {
			fmt.Printf("fire %s\n", d.Body)
			close(done)
			return followup.Ack
		},
	})
	timer := memqueue.NewTimer(q)
	// At start, rebuild the timer from the store (store.Pending(ctx, timer.Load)).
	if err := timer.Load(followup.Message{FollowupID: "fu_1", ThreadID: "t-1"}, time.Now().Add(time.Millisecond)); err != nil {
		fmt.Println(err)
	}
	q.Start()
	timer.Start()
	<-done
	timer.Stop()
	if err := q.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// fire {"followup_id":"fu_1","thread_id":"t-1"}
}

func BenchmarkTimerLoad100k(b *testing.B) {
	const n = 100_000
	clock := newManualClock()
	msgs := make([]followup.Message, n)
	dues := make([]time.Time, n)
	for i := range n {
		msgs[i] = followup.Message{FollowupID: fmt.Sprintf("fu_01J9Z3K4X5Y6Z7A8B9C%07d", i), ThreadID: fmt.Sprintf("thread-%06d", i%5000)}
		dues[i] = clockStart.Add(time.Duration(rand.Int64N(int64(24*time.Hour))) + time.Second)
	}
	b.ReportAllocs()
	var retained uint64
	for b.Loop() {
		before := heapInUse()
		tm := memqueue.NewTimer(memqueue.NewQueue(memqueue.QueueOptions{Clock: clock}))
		for i := range n {
			if err := tm.Load(msgs[i], dues[i]); err != nil {
				b.Fatal(err)
			}
		}
		retained = heapInUse() - before
		if tm.Len() != n {
			b.Fatalf("Len = %d", tm.Len())
		}
	}
	b.ReportMetric(float64(retained)/n, "B/schedule")
}
