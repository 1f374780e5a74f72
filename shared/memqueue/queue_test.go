package memqueue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followups/followups/internal/syncbuf"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/memqueue"
)

// recorder is a Handler that hands each delivery to the test, then answers
// with verdict (Ack when verdict is nil).
type recorder struct {
	got     chan memqueue.Delivery
	verdict func(ctx context.Context, d memqueue.Delivery) followup.Verdict
}

var ctx0 = context.Background()

func newRecorder(verdict func(ctx context.Context, d memqueue.Delivery) followup.Verdict) *recorder {
	return &recorder{got: make(chan memqueue.Delivery, 1024), verdict: verdict}
}

func (r *recorder) handle(ctx context.Context, d memqueue.Delivery) followup.Verdict {
	seen := d
	seen.Body, seen.Attributes = bytes.Clone(d.Body), maps.Clone(d.Attributes)
	r.got <- seen
	if r.verdict == nil {
		return followup.Ack
	}
	return r.verdict(ctx, d)
}

// next returns the next delivery, waiting for the queue's goroutines.
func (r *recorder) next(t testing.TB) memqueue.Delivery {
	t.Helper()
	select {
	case d := <-r.got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
		return memqueue.Delivery{}
	}
}

// none checks that nothing has been delivered.
func (r *recorder) none(t testing.TB) {
	t.Helper()
	select {
	case d := <-r.got:
		t.Fatalf("unexpected delivery %s (receive %d): %s", d.MessageID, d.ReceiveCount, d.Body)
	default:
	}
}

// startQueue starts a queue on clock and shuts it down when the test ends.
func startQueue(t testing.TB, clock memqueue.Clock, opts memqueue.QueueOptions) *memqueue.Queue {
	t.Helper()
	opts.Clock = clock
	q := memqueue.NewQueue(opts)
	q.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return q
}

// eventually polls cond while other goroutines work; no timer of the code
// under test is waited for here, only the scheduler of the runtime.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	giveUp := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(giveUp) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// drained waits until q holds nothing.
func drained(t testing.TB, q *memqueue.Queue) {
	t.Helper()
	eventually(t, "queue empty", func() bool { return q.Stats() == memqueue.QueueStats{} })
}

func TestQueueDeliversWhatWasSent(t *testing.T) {
	tests := []struct {
		name      string
		send      func(q *memqueue.Queue) error
		wantBody  string
		wantAttrs map[string]string
	}{
		{
			name:     "followup message as JSON",
			send:     func(q *memqueue.Queue) error { return q.Send(followup.Message{FollowupID: "fu_1", ThreadID: "t/1"}, 0) },
			wantBody: `{"followup_id":"fu_1","thread_id":"t/1"}`,
		},
		{
			name: "raw body and attributes verbatim",
			send: func(q *memqueue.Queue) error {
				return q.SendFire(ctx0, []byte("not json \x00"), map[string]string{"k": "v"}, 0)
			},
			wantBody:  "not json \x00",
			wantAttrs: map[string]string{"k": "v"},
		},
		{
			name:     "empty body",
			send:     func(q *memqueue.Queue) error { return q.SendFire(ctx0, nil, nil, 0) },
			wantBody: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(nil)
			q := startQueue(t, newManualClock(), memqueue.QueueOptions{Handler: rec.handle})
			if err := tc.send(q); err != nil {
				t.Fatalf("send: %v", err)
			}
			d := rec.next(t)
			if string(d.Body) != tc.wantBody {
				t.Errorf("body = %q, want %q", d.Body, tc.wantBody)
			}
			if !maps.Equal(d.Attributes, tc.wantAttrs) {
				t.Errorf("attributes = %v, want %v", d.Attributes, tc.wantAttrs)
			}
			if d.ReceiveCount != 1 || d.MessageID == "" {
				t.Errorf("receive count %d, message id %q; want 1 and an id", d.ReceiveCount, d.MessageID)
			}
			drained(t, q)
		})
	}
}

func TestQueueDuplicatesAreSeparateMessages(t *testing.T) {
	rec := newRecorder(nil)
	q := startQueue(t, newManualClock(), memqueue.QueueOptions{Handler: rec.handle})
	body := []byte(`{"followup_id":"fu_1","thread_id":"t1"}`)
	for range 2 {
		if err := q.SendFire(ctx0, body, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	a, b := rec.next(t), rec.next(t)
	if a.MessageID == b.MessageID || !bytes.Equal(a.Body, b.Body) || a.ReceiveCount != 1 || b.ReceiveCount != 1 {
		t.Errorf("got %+v and %+v; want two messages with one body, each received once", a, b)
	}
}

func TestQueueMessagesAreCopies(t *testing.T) {
	clock := newManualClock()
	rec := newRecorder(func(_ context.Context, d memqueue.Delivery) followup.Verdict {
		if d.ReceiveCount == 1 {
			copy(d.Body, "handler!")
			d.Attributes["k"] = "handler"
			return followup.RetryAfter(0)
		}
		return followup.Ack
	})
	q := startQueue(t, clock, memqueue.QueueOptions{Handler: rec.handle})
	body := []byte("original")
	attrs := map[string]string{"k": "original"}
	if err := q.SendFire(ctx0, body, attrs, time.Minute); err != nil {
		t.Fatal(err)
	}
	copy(body, "sender!!")
	attrs["k"] = "sender"
	clock.Advance(time.Minute)
	for n := 1; n <= 2; n++ {
		d := rec.next(t)
		if d.ReceiveCount != n || string(d.Body) != "original" || d.Attributes["k"] != "original" {
			t.Errorf("delivery %+v, want receive %d of the body and attributes as sent", d, n)
		}
	}
	drained(t, q)
}

func TestQueueDelay(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
	}{
		{"none", 0},
		{"negative is none", -time.Second},
		{"a second", time.Second},
		{"fifteen minutes", 15 * time.Minute},
		{"a day", 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newManualClock()
			rec := newRecorder(nil)
			q := startQueue(t, clock, memqueue.QueueOptions{Handler: rec.handle})
			if err := q.SendFire(ctx0, []byte("m"), nil, tc.delay); err != nil {
				t.Fatal(err)
			}
			if tc.delay > 0 {
				clock.WaitForAlarm(t, clockStart.Add(tc.delay))
				clock.Advance(tc.delay - time.Nanosecond)
				rec.none(t)
				if s := q.Stats(); s.Delayed != 1 {
					t.Errorf("stats %+v before the delay passed, want 1 delayed", s)
				}
				clock.Advance(time.Nanosecond)
			}
			if d := rec.next(t); d.ReceiveCount != 1 {
				t.Errorf("receive count %d, want 1", d.ReceiveCount)
			}
			drained(t, q)
		})
	}
}

func TestQueueRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		wait time.Duration
	}{
		{"a second", time.Second},
		{"five minutes", 5 * time.Minute},
		{"twelve hours", followup.MaxRetryAfter},
		{"no wait", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newManualClock()
			rec := newRecorder(func(_ context.Context, d memqueue.Delivery) followup.Verdict {
				if d.ReceiveCount == 1 {
					return followup.RetryAfter(tc.wait)
				}
				return followup.Ack
			})
			q := startQueue(t, clock, memqueue.QueueOptions{Handler: rec.handle})
			if err := q.SendFire(ctx0, []byte("m"), map[string]string{"a": "1"}, 0); err != nil {
				t.Fatal(err)
			}
			first := rec.next(t)
			if tc.wait > 0 {
				clock.WaitForAlarm(t, clockStart.Add(tc.wait))
				clock.Advance(tc.wait - time.Nanosecond)
				rec.none(t)
				if s := q.Stats(); s.InFlight != 1 {
					t.Errorf("stats %+v during the wait, want 1 in flight", s)
				}
				clock.Advance(time.Nanosecond)
			}
			second := rec.next(t)
			if second.ReceiveCount != 2 || second.MessageID != first.MessageID ||
				string(second.Body) != "m" || second.Attributes["a"] != "1" {
				t.Errorf("redelivery %+v, want receive 2 of %s with body and attributes intact", second, first.MessageID)
			}
			drained(t, q)
		})
	}
}

func TestQueueRedrivesToDeadLetterAfterMaxReceiveCount(t *testing.T) {
	for _, maxReceives := range []int{1, 4} {
		t.Run(fmt.Sprintf("max %d", maxReceives), func(t *testing.T) {
			clock := newManualClock()
			rec := newRecorder(func(context.Context, memqueue.Delivery) followup.Verdict {
				return followup.RetryAfter(time.Second)
			})
			dead := newRecorder(nil)
			q := startQueue(t, clock, memqueue.QueueOptions{
				Handler: rec.handle, DeadLetter: dead.handle, MaxReceiveCount: maxReceives,
			})
			body := []byte(`{"followup_id":"fu_1","thread_id":"t1"}`)
			attrs := map[string]string{"origin": "test"}
			if err := q.SendFire(ctx0, body, attrs, 0); err != nil {
				t.Fatal(err)
			}
			var id string
			for n := 1; n <= maxReceives; n++ {
				d := rec.next(t)
				if d.ReceiveCount != n {
					t.Fatalf("receive count %d, want %d", d.ReceiveCount, n)
				}
				id = d.MessageID
				dead.none(t)
				clock.WaitForAlarm(t, clock.Now().Add(time.Second))
				clock.Advance(time.Second)
			}
			dl := dead.next(t)
			if !bytes.Equal(dl.Body, body) || !maps.Equal(dl.Attributes, attrs) || dl.MessageID != id {
				t.Errorf("dead letter %+v, want message %s with body %s and attributes %v", dl, id, body, attrs)
			}
			if dl.ReceiveCount != maxReceives+1 {
				t.Errorf("dead letter receive count %d, want %d", dl.ReceiveCount, maxReceives+1)
			}
			drained(t, q)
			clock.Advance(time.Hour)
			rec.none(t)
		})
	}
}

func TestQueueDeadLetterSide(t *testing.T) {
	clock := newManualClock()
	rec := newRecorder(nil)
	dead := newRecorder(func(_ context.Context, d memqueue.Delivery) followup.Verdict {
		if d.ReceiveCount == 1 {
			return followup.RetryAfter(time.Minute)
		}
		return followup.Ack
	})
	q := startQueue(t, clock, memqueue.QueueOptions{Handler: rec.handle, DeadLetter: dead.handle, MaxReceiveCount: 1})
	attrs := map[string]string{"ERROR_CODE": "AWS.SQS.QueueDoesNotExist"}
	if err := q.SendDeadLetter(ctx0, []byte("input"), attrs); err != nil {
		t.Fatal(err)
	}
	first := dead.next(t)
	if first.ReceiveCount != 1 || string(first.Body) != "input" || !maps.Equal(first.Attributes, attrs) {
		t.Errorf("dead letter %+v, want the body and attributes sent, received once", first)
	}
	clock.WaitForAlarm(t, clockStart.Add(time.Minute))
	if s := q.Stats(); s != (memqueue.QueueStats{DeadLetter: 1}) {
		t.Errorf("stats %+v, want one dead letter", s)
	}
	clock.Advance(time.Minute)
	if second := dead.next(t); second.ReceiveCount != 2 || second.MessageID != first.MessageID {
		t.Errorf("redelivery %+v, want receive 2 of %s", second, first.MessageID)
	}
	drained(t, q)
	rec.none(t)
}

func TestQueueAckDeletes(t *testing.T) {
	clock := newManualClock()
	rec := newRecorder(nil)
	q := startQueue(t, clock, memqueue.QueueOptions{Handler: rec.handle, VisibilityTimeout: time.Minute})
	if err := q.SendFire(ctx0, []byte("m"), nil, 0); err != nil {
		t.Fatal(err)
	}
	rec.next(t)
	drained(t, q)
	clock.Advance(time.Hour)
	rec.none(t)
}

func TestQueuePanickingHandlerDoesNotStopTheQueue(t *testing.T) {
	const visibility = 30 * time.Second
	clock := newManualClock()
	var logs syncbuf.Buffer
	rec := newRecorder(func(_ context.Context, d memqueue.Delivery) followup.Verdict {
		if d.ReceiveCount == 1 {
			panic("secret prompt text")
		}
		return followup.Ack
	})
	q := startQueue(t, clock, memqueue.QueueOptions{
		Handler:           rec.handle,
		VisibilityTimeout: visibility,
		Logger:            slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err := q.SendFire(ctx0, []byte(`{"followup_id":"fu_secret","thread_id":"secret"}`), nil, 0); err != nil {
		t.Fatal(err)
	}
	first := rec.next(t)
	eventually(t, "panic logged", func() bool { return strings.Contains(logs.String(), "panicked") })
	clock.WaitForAlarm(t, clockStart.Add(visibility))
	clock.Advance(visibility - time.Nanosecond)
	rec.none(t)
	clock.Advance(time.Nanosecond)
	if second := rec.next(t); second.ReceiveCount != 2 || second.MessageID != first.MessageID {
		t.Errorf("redelivery %+v, want receive 2 of %s", second, first.MessageID)
	}
	drained(t, q)
	log := logs.String()
	if strings.Contains(log, "secret") {
		t.Errorf("log shows the panic value or the body:\n%s", log)
	}
	if !strings.Contains(log, first.MessageID) {
		t.Errorf("log does not name message %s:\n%s", first.MessageID, log)
	}
}

func TestQueueHandlerOutlivingVisibilityTimeout(t *testing.T) {
	const visibility = 30 * time.Second
	clock := newManualClock()
	cancelled, secondRunning, barrierSeen := make(chan struct{}), make(chan struct{}), make(chan struct{})
	rec := newRecorder(func(ctx context.Context, d memqueue.Delivery) followup.Verdict {
		switch {
		case string(d.Body) == "barrier":
			close(barrierSeen)
			return followup.Ack
		case d.ReceiveCount == 1:
			<-ctx.Done()
			close(cancelled)
			<-secondRunning
			return followup.Ack // too late: must not delete the message
		case d.ReceiveCount == 2:
			close(secondRunning)
			<-barrierSeen
			return followup.RetryAfter(visibility / 3)
		default:
			return followup.Ack
		}
	})
	q := startQueue(t, clock, memqueue.QueueOptions{Handler: rec.handle, Workers: 2, VisibilityTimeout: visibility})
	if err := q.SendFire(ctx0, []byte("m"), nil, 0); err != nil {
		t.Fatal(err)
	}
	rec.next(t)
	clock.WaitForAlarm(t, clockStart.Add(visibility))
	clock.Advance(visibility)
	if d := rec.next(t); d.ReceiveCount != 2 {
		t.Fatalf("receive count %d, want 2", d.ReceiveCount)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the first call's context was not cancelled")
	}
	// Both workers are busy, so the barrier is received once the first
	// call's late Ack has been dealt with; the second call waits for it.
	if err := q.SendFire(ctx0, []byte("barrier"), nil, 0); err != nil {
		t.Fatal(err)
	}
	rec.next(t)
	clock.WaitForAlarm(t, clockStart.Add(visibility+visibility/3))
	clock.Advance(visibility / 3)
	if d := rec.next(t); d.ReceiveCount != 3 {
		t.Fatalf("receive count %d, want 3: the late Ack deleted the message", d.ReceiveCount)
	}
	drained(t, q)
}

func TestQueueWorkersRunInParallel(t *testing.T) {
	for _, workers := range []int{1, 8, 64} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) {
			var running, most atomic.Int64
			allIn := make(chan struct{})
			var once sync.Once
			q := startQueue(t, newManualClock(), memqueue.QueueOptions{
				Workers: workers,
				Handler: func(context.Context, memqueue.Delivery) followup.Verdict {
					n := running.Add(1)
					defer running.Add(-1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					if n == int64(workers) {
						once.Do(func() { close(allIn) })
					}
					select {
					case <-allIn:
					case <-time.After(10 * time.Second):
						t.Errorf("only %d calls in flight at once, want %d", most.Load(), workers)
					}
					return followup.Ack
				},
			})
			for range 2 * workers {
				if err := q.SendFire(ctx0, []byte("m"), nil, 0); err != nil {
					t.Fatal(err)
				}
			}
			drained(t, q)
			if got := most.Load(); got != int64(workers) {
				t.Errorf("at most %d calls at once, want %d", got, workers)
			}
		})
	}
}

func TestQueueShutdownWaitsForRunningCalls(t *testing.T) {
	release := make(chan struct{})
	var finished atomic.Bool
	rec := newRecorder(func(context.Context, memqueue.Delivery) followup.Verdict {
		<-release
		finished.Store(true)
		return followup.Ack
	})
	q := memqueue.NewQueue(memqueue.QueueOptions{Handler: rec.handle, Workers: 1, Clock: newManualClock()})
	q.Start()
	for _, body := range []string{"running", "queued"} {
		if err := q.SendFire(ctx0, []byte(body), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	rec.next(t)
	shutdown := make(chan error, 1)
	go func() { shutdown <- q.Shutdown(context.Background()) }()
	eventually(t, "sends refused", func() bool { return errors.Is(q.SendFire(ctx0, []byte("late"), nil, 0), memqueue.ErrStopped) })
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v while a call was running", err)
	default:
	}
	close(release)
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if !finished.Load() {
		t.Error("Shutdown returned before the running call finished")
	}
	rec.none(t) // the queued message is dropped, not delivered
	if err := q.Send(followup.Message{FollowupID: "fu_1"}, 0); !errors.Is(err, memqueue.ErrStopped) {
		t.Errorf("Send after Shutdown = %v, want ErrStopped", err)
	}
}

func TestQueueShutdownGivesUpAtDeadline(t *testing.T) {
	cancelled := make(chan struct{})
	rec := newRecorder(func(ctx context.Context, _ memqueue.Delivery) followup.Verdict {
		<-ctx.Done()
		close(cancelled)
		return followup.Ack
	})
	q := memqueue.NewQueue(memqueue.QueueOptions{Handler: rec.handle, Clock: newManualClock()})
	q.Start()
	if err := q.SendFire(ctx0, []byte("hangs"), nil, 0); err != nil {
		t.Fatal(err)
	}
	rec.next(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want the context's error", err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the running call's context was not cancelled")
	}
}

func TestQueueStats(t *testing.T) {
	clock := newManualClock()
	release := make(chan struct{})
	defer close(release)
	rec := newRecorder(func(context.Context, memqueue.Delivery) followup.Verdict {
		<-release
		return followup.Ack
	})
	q := startQueue(t, clock, memqueue.QueueOptions{Handler: rec.handle, Workers: 1})
	sends := []func() error{
		func() error { return q.SendFire(ctx0, []byte("received"), nil, 0) },
		func() error { return q.SendFire(ctx0, []byte("visible"), nil, 0) },
		func() error { return q.SendFire(ctx0, []byte("delayed"), nil, time.Minute) },
		func() error { return q.SendDeadLetter(ctx0, []byte("dead"), nil) },
	}
	for _, send := range sends {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	rec.next(t)
	want := memqueue.QueueStats{Visible: 1, InFlight: 1, Delayed: 1, DeadLetter: 1}
	if got := q.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestQueueWaitingMessagesAreSmall(t *testing.T) {
	const n = 100_000
	q := memqueue.NewQueue(memqueue.QueueOptions{Clock: newManualClock()})
	// A realistic body: a 26-character id and a short thread id.
	m := followup.Message{FollowupID: "fu_01J9Z3K4X5Y6Z7A8B9C0D1E2", ThreadID: "thread-1234"}
	before := heapInUse()
	for i := range n {
		if err := q.Send(m, time.Duration(n-i)*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	after := heapInUse()
	runtime.KeepAlive(q)
	perMessage := float64(after-before) / n
	t.Logf("%.0f bytes per waiting message", perMessage)
	if perMessage > 200 {
		t.Errorf("%.0f bytes per waiting message, want at most 200", perMessage)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func ExampleQueue() {
	done := make(chan struct{})
	q := memqueue.NewQueue(memqueue.QueueOptions{
		MaxReceiveCount: 4,
		Handler: func(ctx context.Context, d memqueue.Delivery) followup.Verdict {
			fmt.Printf("receive %d: %s\n", d.ReceiveCount, d.Body)
			if d.ReceiveCount < 2 {
				return followup.RetryAfter(time.Millisecond)
			}
			close(done)
			return followup.Ack
		},
	})
	q.Start()
	if err := q.Send(followup.Message{FollowupID: "fu_1", ThreadID: "t-1"}, 0); err != nil {
		fmt.Println(err)
	}
	<-done
	if err := q.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// receive 1: {"followup_id":"fu_1","thread_id":"t-1"}
	// receive 2: {"followup_id":"fu_1","thread_id":"t-1"}
}

func BenchmarkQueueThroughput(b *testing.B) {
	var handled atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	q := memqueue.NewQueue(memqueue.QueueOptions{
		Handler: func(context.Context, memqueue.Delivery) followup.Verdict {
			if handled.Add(1) == n {
				close(done)
			}
			return followup.Ack
		},
	})
	q.Start()
	m := followup.Message{FollowupID: "fu_01J9Z3K4X5Y6Z7A8B9C0D1E2", ThreadID: "thread-1234"}
	b.ResetTimer()
	for range b.N {
		if err := q.Send(m, 0); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if err := q.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkQueueBurst sends 10,000 messages at once to handlers that each
// make two writes to a group-committed, fsynced file (as the store's
// transactions are) and reports how late the last ones finish.
func BenchmarkQueueBurst(b *testing.B) {
	const burst = 10_000
	for _, workers := range []int{64, 256, memqueue.DefaultWorkers} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			disk := startGroupCommit(b)
			var lateness []time.Duration
			for b.Loop() {
				var mu sync.Mutex
				var wg sync.WaitGroup
				wg.Add(burst)
				var sent time.Time
				late := make([]time.Duration, 0, burst)
				q := memqueue.NewQueue(memqueue.QueueOptions{
					Workers: workers,
					Handler: func(context.Context, memqueue.Delivery) followup.Verdict {
						disk.write() // claim
						disk.write() // settle
						mu.Lock()
						late = append(late, time.Since(sent))
						mu.Unlock()
						wg.Done()
						return followup.Ack
					},
				})
				sent = time.Now()
				for i := range burst {
					if err := q.Send(followup.Message{FollowupID: fmt.Sprint("fu_", i), ThreadID: "t"}, 0); err != nil {
						b.Fatal(err)
					}
				}
				q.Start()
				wg.Wait()
				if err := q.Shutdown(context.Background()); err != nil {
					b.Fatal(err)
				}
				lateness = append(lateness, late...)
			}
			slices.Sort(lateness)
			p := func(q float64) float64 {
				return float64(lateness[int(q*float64(len(lateness)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(p(0.5), "p50-ms")
			b.ReportMetric(p(0.99), "p99-ms")
			b.ReportMetric(float64(disk.syncs.Load())/float64(b.N), "fsyncs/op")
		})
	}
}

// groupCommit makes each write wait for a shared fsync of a real file: it
// gathers writes for up to batchDelay (or maxBatch of them), then syncs once
// for all, like the store's batched transactions.
type groupCommit struct {
	mu      sync.Mutex
	pending []chan struct{}
	kick    chan struct{}
	syncs   atomic.Int64
}

func startGroupCommit(b *testing.B) *groupCommit {
	const batchDelay, maxBatch = 2 * time.Millisecond, 1000
	f, err := os.Create(filepath.Join(b.TempDir(), "wal"))
	if err != nil {
		b.Fatal(err)
	}
	g := &groupCommit{kick: make(chan struct{}, 1)}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		page := make([]byte, 4096)
		for {
			select {
			case <-g.kick:
			case <-quit:
				return
			}
			gather := time.NewTimer(batchDelay)
		wait:
			for {
				g.mu.Lock()
				full := len(g.pending) >= maxBatch
				g.mu.Unlock()
				if full {
					break
				}
				select {
				case <-gather.C:
					break wait
				case <-g.kick:
				}
			}
			gather.Stop()
			g.mu.Lock()
			batch := g.pending
			g.pending = nil
			g.mu.Unlock()
			if _, err := f.Write(page); err != nil {
				panic(err)
			}
			if err := f.Sync(); err != nil {
				panic(err)
			}
			g.syncs.Add(1)
			for _, c := range batch {
				close(c)
			}
		}
	}()
	b.Cleanup(func() {
		close(quit)
		<-done
		f.Close()
	})
	return g
}

func (g *groupCommit) write() {
	done := make(chan struct{})
	g.mu.Lock()
	g.pending = append(g.pending, done)
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
	<-done
}
