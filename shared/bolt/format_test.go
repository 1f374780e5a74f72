package bolt

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/followups/followups/shared/followup"
)

// oldFile makes a store file as an earlier format left it: n scheduled
// followups of one thread, then edit changes it with raw bbolt.
func oldFile(t *testing.T, n int, edit func(t *testing.T, btx *bbolt.Tx, fs []*followup.Followup)) (path string, fs []*followup.Followup) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "followups.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i := range n {
		f := &followup.Followup{
			ID: followup.NewID(), ThreadID: "t-old", Prompt: "p", Status: followup.StatusScheduled,
			RunAt: now.Add(time.Duration(i+1) * time.Minute), CreatedAt: now, UpdatedAt: now, Version: 1,
		}
		f.NextAttemptAt = f.RunAt
		f.SweepAt = f.RunAt.Add(followup.SweepGrace)
		if _, err := s.Create(context.Background(), followup.Creation{Followup: f}); err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	if err := s.db.Update(func(btx *bbolt.Tx) error { edit(t, btx, fs); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, fs
}

// A format 1 file (no sweep times, no sweep index) is brought to format 2
// at open: every pending followup gets its SweepAt and its entry, so the
// sweep finds it.
func TestOpenMigratesFormat1(t *testing.T) {
	path, fs := oldFile(t, 3, func(t *testing.T, btx *bbolt.Tx, fs []*followup.Followup) {
		x := txn(btx)
		for _, f := range fs {
			r, err := x.get(f.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := x.sweep.Delete(timeIDKey(r.f.SweepAt, f.ID)); err != nil {
				t.Fatal(err)
			}
			r.f.SweepAt = time.Time{}
			if err := x.followups.Put([]byte(f.ID), encodeRecord(r)); err != nil {
				t.Fatal(err)
			}
		}
		if err := x.meta.Put(metaFormat, []byte("1")); err != nil {
			t.Fatal(err)
		}
	})
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, f := range fs {
		got, err := s.Get(context.Background(), f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := f.NextAttemptAt.Add(followup.SweepGrace); !got.SweepAt.Equal(want) {
			t.Errorf("%s: SweepAt %v after the migration, want %v", f.ID, got.SweepAt, want)
		}
	}
	overdue, err := s.Overdue(context.Background(), fs[len(fs)-1].RunAt.Add(followup.SweepGrace), 10)
	if err != nil || len(overdue) != len(fs) {
		t.Fatalf("Overdue after the migration: %d, %v; want %d", len(overdue), err, len(fs))
	}
	if err := s.db.View(func(btx *bbolt.Tx) error {
		if v := btx.Bucket(bucketMeta).Get(metaFormat); string(v) != storeFormat {
			t.Errorf("format %q after the migration, want %q", v, storeFormat)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A thread entry holding a status, as format 2 wrote them, is not read: a
// listing by status goes by the records, and the entry's next change
// writes it empty.
func TestThreadEntriesWithAStatusAreNotRead(t *testing.T) {
	path, fs := oldFile(t, 2, func(t *testing.T, btx *bbolt.Tx, fs []*followup.Followup) {
		x := txn(btx)
		for _, f := range fs {
			// A stale status: the record says scheduled.
			if err := x.threads.Put(threadKey(f.ThreadID, f.RunAt, f.ID), []byte(followup.StatusDelivered)); err != nil {
				t.Fatal(err)
			}
		}
	})
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	page, _, err := s.List(ctx, followup.ListQuery{ThreadID: "t-old", Status: followup.StatusScheduled, Limit: 10})
	if err != nil || len(page) != 2 {
		t.Fatalf("scheduled listing: %d, %v; want 2", len(page), err)
	}
	page, _, err = s.List(ctx, followup.ListQuery{ThreadID: "t-old", Status: followup.StatusDelivered, Limit: 10})
	if err != nil || len(page) != 0 {
		t.Fatalf("delivered listing: %d, %v; want 0", len(page), err)
	}
	f := fs[0]
	if _, err := s.Apply(ctx, f.ID, followup.Cancel(time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := s.db.View(func(btx *bbolt.Tx) error {
		if v := btx.Bucket(bucketThreads).Get(threadKey(f.ThreadID, f.RunAt, f.ID)); len(v) != 0 {
			t.Errorf("thread entry %q after a change, want empty", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
