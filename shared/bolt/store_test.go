package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followups/followups/shared/bolt"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/followup/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) followup.Store {
		return openStore(t, filepath.Join(t.TempDir(), "followups.db"), bolt.Options{})
	})
}

func openStore(t testing.TB, path string, opts bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// epoch is the tests' "now": a fixed time with nanoseconds.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

// scheduledAt returns a valid scheduled followup with a 100-byte prompt.
func scheduledAt(id, thread string, runAt time.Time) *followup.Followup {
	return &followup.Followup{
		ID: id, ThreadID: thread, Prompt: strings.Repeat("p", 100),
		RunAt: runAt, Status: followup.StatusScheduled, Runs: []followup.Run{},
		CreatedAt: epoch, UpdatedAt: epoch, Version: 1, NextAttemptAt: runAt,
	}
}

func mustCreate(t testing.TB, s *bolt.Store, c followup.Creation) followup.Created {
	t.Helper()
	got, err := s.Create(context.Background(), c)
	if err != nil {
		t.Fatalf("Create %s: %v", c.Followup.ID, err)
	}
	return got
}

func mustApply(t testing.TB, s *bolt.Store, id string, tr followup.Transition) *followup.Followup {
	t.Helper()
	f, err := s.Apply(context.Background(), id, tr)
	if err != nil {
		t.Fatalf("Apply %s to %s: %v", tr.Name, id, err)
	}
	return f
}

// mustCreateAll creates fs from several goroutines, as an HTTP server would,
// so their fsyncs are shared.
func mustCreateAll(t testing.TB, s *bolt.Store, fs []*followup.Followup) {
	t.Helper()
	inParallel(t, len(fs), func(i int) error {
		_, err := s.Create(context.Background(), followup.Creation{Followup: fs[i]})
		return err
	})
}

// inParallel calls fn(0) … fn(n-1) from 64 goroutines and fails t on the
// first error.
func inParallel(t testing.TB, n int, fn func(i int) error) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		first atomic.Pointer[error]
	)
	for range 64 {
		wg.Go(func() {
			for first.Load() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		t.Fatal(*err)
	}
}

type pendingEntry struct {
	id, thread string
	due        time.Time
}

func pendingOf(t *testing.T, s *bolt.Store) []pendingEntry {
	t.Helper()
	var out []pendingEntry
	err := s.Pending(context.Background(), func(m followup.Message, due time.Time) error {
		out = append(out, pendingEntry{m.FollowupID, m.ThreadID, due})
		return nil
	})
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return out
}

func requireGone(t *testing.T, s *bolt.Store, id string) {
	t.Helper()
	if f, err := s.Get(context.Background(), id); !errors.Is(err, followup.ErrNotFound) {
		t.Fatalf("Get %s = %v, %v; want ErrNotFound", id, f, err)
	}
}

func requireStoreStats(t *testing.T, s *bolt.Store, want map[followup.Status]int64) bolt.Stats {
	t.Helper()
	st, err := s.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	var total int64
	for _, status := range followup.Statuses {
		total += want[status]
		if st.ByStatus[status] != want[status] {
			t.Fatalf("Stats.ByStatus[%s] = %d, want %d (all: %v)", status, st.ByStatus[status], want[status], st.ByStatus)
		}
	}
	if st.Followups != total {
		t.Fatalf("Stats.Followups = %d, want %d", st.Followups, total)
	}
	if st.FileBytes <= 0 || st.DataBytes <= 0 || st.DataBytes > st.FileBytes {
		t.Fatalf("Stats: FileBytes %d, DataBytes %d", st.FileBytes, st.DataBytes)
	}
	return st
}

func TestStoreReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "followups.db")
	ctx := context.Background()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}

	a := scheduledAt("fu-a", "t-1", epoch.Add(time.Hour))
	a.OriginatingRunID = "run-1"
	mustCreate(t, s, followup.Creation{Followup: a, IdempotencyKey: "key-a", RequestHash: "h-a", KeyExpiresAt: epoch.Add(24 * time.Hour)})
	b := scheduledAt("fu-b", "t-1", epoch.Add(2*time.Hour))
	mustCreate(t, s, followup.Creation{Followup: b})
	claimed := mustApply(t, s, b.ID, followup.Claim(epoch.Add(2*time.Hour), time.Minute, 4))
	if err := s.KeepDeadLetter(ctx, followup.DeadLetterRecord{ID: "m-1", Body: "x", ReceivedAt: epoch}); err != nil {
		t.Fatalf("KeepDeadLetter: %v", err)
	}
	before := map[string]*followup.Followup{}
	for _, id := range []string{"fu-a", "fu-b"} {
		before[id], _ = s.Get(ctx, id)
	}
	statsBefore, _ := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openStore(t, path, bolt.Options{})
	for id, want := range before {
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get %s after reopen: %v", id, err)
		}
		if got.Version != want.Version || got.Status != want.Status || !got.LeaseUntil.Equal(want.LeaseUntil) {
			t.Fatalf("Get %s after reopen: %+v, want %+v", id, got, want)
		}
	}
	if r, err := s.Replay(ctx, "key-a", "h-a", epoch); err != nil || r == nil || r.ID != "fu-a" {
		t.Fatalf("Replay after reopen = %v, %v", r, err)
	}
	page, more, err := s.List(ctx, followup.ListQuery{ThreadID: "t-1", Limit: 10})
	if err != nil || more || len(page) != 2 || page[0].ID != "fu-a" || page[1].ID != "fu-b" {
		t.Fatalf("List after reopen = %v, %v, %v", page, more, err)
	}
	// The run slot survived: a new followup of run-1 replaces fu-a.
	c := scheduledAt("fu-c", "t-1", epoch.Add(3*time.Hour))
	c.OriginatingRunID = "run-1"
	cancel := followup.Cancel(epoch)
	got := mustCreate(t, s, followup.Creation{Followup: c, Replace: &cancel})
	if got.Replaced == nil || got.Replaced.ID != "fu-a" || got.Replaced.Status != followup.StatusCancelled {
		t.Fatalf("Replaced after reopen = %+v, want fu-a cancelled", got.Replaced)
	}
	want := []pendingEntry{{"fu-b", "t-1", claimed.LeaseUntil}, {"fu-c", "t-1", c.NextAttemptAt}}
	if p := pendingOf(t, s); !slices.EqualFunc(p, want, samePending) {
		t.Fatalf("Pending after reopen = %v, want %v", p, want)
	}
	st := requireStoreStats(t, s, map[followup.Status]int64{
		followup.StatusScheduled: 1, followup.StatusDispatching: 1, followup.StatusCancelled: 1,
	})
	if st.DeadLetters != statsBefore.DeadLetters || st.IdempotencyKeys != 1 {
		t.Fatalf("Stats after reopen = %+v, before %+v", st, statsBefore)
	}
}

func samePending(a, b pendingEntry) bool {
	return a.id == b.id && a.thread == b.thread && a.due.Equal(b.due)
}

func TestStorePending(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "followups.db"), bolt.Options{})
	ctx := context.Background()
	const lease = 30 * time.Second

	// More than one read chunk, in every state.
	var fs []*followup.Followup
	for i := range 2500 {
		fs = append(fs, scheduledAt(fmt.Sprintf("fu-%04d", i), fmt.Sprintf("t-%d", i%7), epoch.Add(time.Duration(i)*time.Second)))
	}
	mustCreateAll(t, s, fs)

	want := make([]*pendingEntry, len(fs))
	inParallel(t, len(fs), func(i int) error {
		f := fs[i]
		switch i % 5 {
		case 0: // scheduled, due at run_at
			want[i] = &pendingEntry{f.ID, f.ThreadID, f.RunAt}
		case 1: // dispatching, due when its lease ends
			claimed, err := s.Apply(ctx, f.ID, followup.Claim(f.RunAt.Add(time.Millisecond), lease, 4))
			if err != nil {
				return err
			}
			want[i] = &pendingEntry{f.ID, f.ThreadID, claimed.LeaseUntil}
		case 2: // released for a retry, due at the retry
			claimed, err := s.Apply(ctx, f.ID, followup.Claim(f.RunAt, lease, 4))
			if err != nil {
				return err
			}
			next := f.RunAt.Add(time.Hour + 7)
			if _, err := s.Apply(ctx, f.ID, followup.Release(claimed, followup.Run{Attempt: 1, Outcome: followup.OutcomeRetryableError}, next)); err != nil {
				return err
			}
			want[i] = &pendingEntry{f.ID, f.ThreadID, next}
		case 3:
			_, err := s.Apply(ctx, f.ID, followup.Cancel(epoch))
			return err
		case 4:
			claimed, err := s.Apply(ctx, f.ID, followup.Claim(f.RunAt, lease, 4))
			if err != nil {
				return err
			}
			run := followup.Run{Attempt: 1, Outcome: followup.OutcomeSuccess}
			_, err = s.Apply(ctx, f.ID, followup.Settle(claimed, followup.Result{Status: followup.StatusDelivered, Run: &run}, f.RunAt))
			return err
		}
		return nil
	})
	want = slices.DeleteFunc(want, func(e *pendingEntry) bool { return e == nil })
	slices.SortFunc(want, func(a, b *pendingEntry) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	got := pendingOf(t, s)
	if len(got) != len(want) {
		t.Fatalf("Pending listed %d, want %d", len(got), len(want))
	}
	for i := range want {
		if !samePending(got[i], *want[i]) {
			t.Fatalf("Pending[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	requireStoreStats(t, s, map[followup.Status]int64{
		followup.StatusScheduled: 1000, followup.StatusDispatching: 500,
		followup.StatusCancelled: 500, followup.StatusDelivered: 500,
	})

	t.Run("StopsOnError", func(t *testing.T) {
		stopErr := errors.New("enough")
		n := 0
		err := s.Pending(context.Background(), func(followup.Message, time.Time) error {
			n++
			if n == 3 {
				return stopErr
			}
			return nil
		})
		if !errors.Is(err, stopErr) || n != 3 {
			t.Fatalf("Pending = %v after %d calls, want the callback's error after 3", err, n)
		}
	})

	t.Run("CallbackMayWrite", func(t *testing.T) {
		ids := map[string]bool{}
		err := s.Pending(context.Background(), func(m followup.Message, due time.Time) error {
			if !ids[m.FollowupID] && len(ids) < 20 {
				ids[m.FollowupID] = true
				_, err := s.Apply(context.Background(), m.FollowupID, followup.Cancel(epoch))
				if err != nil && !errors.Is(err, followup.ErrConflict) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Pending with writes: %v", err)
		}
	})
}

func TestStorePurge(t *testing.T) {
	ctx := context.Background()
	const retention = time.Hour
	s := openStore(t, filepath.Join(t.TempDir(), "followups.db"), bolt.Options{Retention: retention})
	now := epoch.Add(48 * time.Hour)
	old, recent := now.Add(-2*retention), now.Add(-retention/2)

	// Enough old settled followups to need several purge transactions.
	var olds []*followup.Followup
	for i := range 700 {
		f := scheduledAt(fmt.Sprintf("fu-old-%03d", i), "t-1", epoch.Add(time.Hour))
		f.OriginatingRunID = fmt.Sprintf("run-%d", i)
		olds = append(olds, f)
	}
	mustCreateAll(t, s, olds)
	inParallel(t, len(olds), func(i int) error {
		_, err := s.Apply(ctx, olds[i].ID, followup.Cancel(old))
		return err
	})

	keep := func(id string, c followup.Creation, settle *time.Time) {
		t.Helper()
		c.Followup = scheduledAt(id, "t-1", epoch.Add(time.Hour))
		mustCreate(t, s, c)
		if settle != nil {
			mustApply(t, s, id, followup.Cancel(*settle))
		}
	}
	keep("fu-recent", followup.Creation{}, &recent)
	keep("fu-live-key", followup.Creation{IdempotencyKey: "key-live", RequestHash: "h", KeyExpiresAt: now.Add(time.Hour)}, &old)
	keep("fu-expired-key", followup.Creation{IdempotencyKey: "key-expired", RequestHash: "h", KeyExpiresAt: now.Add(-time.Second)}, &old)
	keep("fu-pending-key", followup.Creation{IdempotencyKey: "key-pending", RequestHash: "h", KeyExpiresAt: now.Add(-time.Second)}, nil)
	keep("fu-scheduled", followup.Creation{}, nil)
	keep("fu-no-key", followup.Creation{KeyExpiresAt: now.Add(time.Hour)}, &old) // an expiry without a key holds nothing
	for _, d := range []followup.DeadLetterRecord{{ID: "dl-old", ReceivedAt: old}, {ID: "dl-recent", ReceivedAt: recent}} {
		if err := s.KeepDeadLetter(ctx, d); err != nil {
			t.Fatalf("KeepDeadLetter: %v", err)
		}
	}

	n, err := s.Purge(ctx, now)
	if err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if n != 702 {
		t.Fatalf("Purge removed %d followups, want 702", n)
	}
	for _, id := range []string{"fu-old-000", "fu-old-699", "fu-expired-key", "fu-no-key"} {
		requireGone(t, s, id)
	}
	for _, id := range []string{"fu-recent", "fu-live-key", "fu-pending-key", "fu-scheduled"} {
		if _, err := s.Get(ctx, id); err != nil {
			t.Fatalf("Get %s after Purge: %v", id, err)
		}
	}
	page, _, err := s.List(ctx, followup.ListQuery{ThreadID: "t-1", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, f := range page {
		listed = append(listed, f.ID)
	}
	if want := []string{"fu-live-key", "fu-pending-key", "fu-recent", "fu-scheduled"}; !slices.Equal(listed, want) {
		t.Fatalf("List after Purge = %v, want %v", listed, want)
	}
	if r, err := s.Replay(ctx, "key-live", "h", now); err != nil || r == nil || r.ID != "fu-live-key" {
		t.Fatalf("Replay of a live key after Purge = %v, %v", r, err)
	}
	var dead []string
	if err := s.DeadLetters(ctx, func(d followup.DeadLetterRecord) error { dead = append(dead, d.ID); return nil }); err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	if !slices.Equal(dead, []string{"dl-recent"}) {
		t.Fatalf("dead letters after Purge = %v, want [dl-recent]", dead)
	}
	st := requireStoreStats(t, s, map[followup.Status]int64{followup.StatusScheduled: 2, followup.StatusCancelled: 2})
	if st.IdempotencyKeys != 1 || st.DeadLetters != 1 {
		t.Fatalf("Stats after Purge: %d keys, %d dead letters; want 1, 1", st.IdempotencyKeys, st.DeadLetters)
	}

	// A purged followup's run slot is free: its run starts afresh.
	f := scheduledAt("fu-new", "t-1", now.Add(time.Hour))
	f.OriginatingRunID = "run-5"
	cancel := followup.Cancel(now)
	if got := mustCreate(t, s, followup.Creation{Followup: f, Replace: &cancel}); got.Replaced != nil {
		t.Fatalf("Create in a purged run's slot replaced %s", got.Replaced.ID)
	}

	// Once its key expires, the followup it held goes too; an expired key
	// is free for a new request.
	later := now.Add(2 * time.Hour)
	if n, err := s.Purge(ctx, later); err != nil || n != 2 {
		t.Fatalf("second Purge = %d, %v; want 2 (fu-live-key, fu-recent)", n, err)
	}
	requireGone(t, s, "fu-live-key")
	g := scheduledAt("fu-reuse", "t-2", later)
	g.CreatedAt = later
	if got := mustCreate(t, s, followup.Creation{Followup: g, IdempotencyKey: "key-live", RequestHash: "other", KeyExpiresAt: later.Add(time.Hour)}); got.Replayed {
		t.Fatalf("Create with a purged key replayed")
	}
	if n, err := s.Purge(ctx, later); err != nil || n != 0 {
		t.Fatalf("third Purge = %d, %v; want 0", n, err)
	}
}

func TestStorePurgeHonoursContext(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "followups.db"), bolt.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Purge(ctx, epoch); !errors.Is(err, context.Canceled) {
		t.Fatalf("Purge with a cancelled context: %v", err)
	}
}

func TestStoreSecondOpenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "followups.db")
	openStore(t, path, bolt.Options{})
	start := time.Now()
	s, err := bolt.Open(path, bolt.Options{LockTimeout: 200 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatalf("second Open of %s succeeded", path)
	}
	if !errors.Is(err, bolt.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: %v; want ErrLocked naming the file", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second Open took %s to fail", d)
	}
}

func TestStoreDeadLetters(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, filepath.Join(t.TempDir(), "followups.db"), bolt.Options{})
	in := []followup.DeadLetterRecord{
		{ID: "m-2", Body: `{"x":`, Attributes: map[string]string{"ERROR_CODE": "E"}, Error: "bad json", ReceivedAt: epoch.Add(time.Second)},
		{ID: "m-1", Body: "", Error: "empty", ReceivedAt: epoch},
		{ID: "m-1", Body: "", Error: "empty", ReceivedAt: epoch},
	}
	for _, d := range in {
		if err := s.KeepDeadLetter(ctx, d); err != nil {
			t.Fatalf("KeepDeadLetter: %v", err)
		}
	}
	var got []followup.DeadLetterRecord
	if err := s.DeadLetters(ctx, func(d followup.DeadLetterRecord) error { got = append(got, d); return nil }); err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	want := []followup.DeadLetterRecord{in[1], in[2], in[0]}
	if len(got) != len(want) {
		t.Fatalf("DeadLetters listed %d, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Body != w.Body || g.Error != w.Error || !g.ReceivedAt.Equal(w.ReceivedAt) || fmt.Sprint(g.Attributes) != fmt.Sprint(w.Attributes) {
			t.Fatalf("dead letter %d = %+v, want %+v", i, g, w)
		}
	}
	if st, _ := s.Stats(); st.DeadLetters != 3 {
		t.Fatalf("Stats.DeadLetters = %d, want 3", st.DeadLetters)
	}
}

func TestStoreCreateRefusesBadInput(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "followups.db"), bolt.Options{})
	ctx := context.Background()
	for name, c := range map[string]followup.Creation{
		"NoFollowup":    {},
		"NoID":          {Followup: scheduledAt("", "t-1", epoch)},
		"NoThread":      {Followup: scheduledAt("fu-1", "", epoch)},
		"KeyNoExpiry":   {Followup: scheduledAt("fu-1", "t-1", epoch), IdempotencyKey: "k", RequestHash: "h"},
		"UnknownStatus": {Followup: func() *followup.Followup { f := scheduledAt("fu-1", "t-1", epoch); f.Status = "later"; return f }()},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Create(ctx, c); err == nil {
				t.Fatalf("Create succeeded")
			}
		})
	}
	if st, _ := s.Stats(); st.Followups != 0 {
		t.Fatalf("refused creates wrote %d followups", st.Followups)
	}
	if _, _, err := s.List(ctx, followup.ListQuery{ThreadID: "t-1"}); followup.ErrorCode(err) != followup.CodeInvalidArgument {
		t.Fatalf("List without a limit: %v, want invalid_argument", err)
	}
}

func BenchmarkCreateParallel(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "followups.db"), bolt.Options{})
	var n atomic.Int64
	b.SetParallelism(32) // many HTTP requests in flight, as under load
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			f := scheduledAt(followup.NewID(), fmt.Sprintf("thread-%d", i%1000), epoch.Add(time.Duration(i)*time.Millisecond))
			c := followup.Creation{Followup: f, IdempotencyKey: fmt.Sprintf("key-%d", i), RequestHash: "h", KeyExpiresAt: epoch.Add(24 * time.Hour)}
			if _, err := s.Create(context.Background(), c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	st, err := s.Stats()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
	b.ReportMetric(float64(st.DataBytes)/float64(st.Followups), "bytes/followup")
}

func BenchmarkApply(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "followups.db"), bolt.Options{})
	fs := make([]*followup.Followup, b.N)
	for i := range fs {
		fs[i] = scheduledAt(fmt.Sprintf("fu-%010d", i), fmt.Sprintf("thread-%d", i%1000), epoch)
	}
	mustCreateAll(b, s, fs)
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) - 1
			if _, err := s.Apply(context.Background(), fs[i].ID, followup.Claim(epoch, time.Minute, 4)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "applies/s")
}
