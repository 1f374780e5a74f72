package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/followups/followups/shared/followup"
)

// TestBatchRerunsDoNotLeak makes bbolt roll batches back and re-run their
// functions (a failing write in the batch does that), and checks that
// every Create reports what its last, committed run did.
func TestBatchRerunsDoNotLeak(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "followups.db"), Options{BatchDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	const creates = 200
	var (
		wg       sync.WaitGroup
		failures atomic.Int64
		mu       sync.Mutex
		replaced = map[string]string{} // replaced id → by whom
	)
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = s.db.Batch(func(*bbolt.Tx) error {
					failures.Add(1)
					return errors.New("fail the batch")
				})
			}
		})
	}
	var cwg sync.WaitGroup
	for i := range creates {
		cwg.Go(func() {
			f := &followup.Followup{
				ID: fmt.Sprintf("fu-%03d", i), ThreadID: "t-1", Prompt: "p", OriginatingRunID: "run-1",
				RunAt: now.Add(time.Hour), Status: followup.StatusScheduled, CreatedAt: now, UpdatedAt: now,
				Version: 1, NextAttemptAt: now.Add(time.Hour),
			}
			cancel := followup.Cancel(now)
			got, err := s.Create(context.Background(), followup.Creation{Followup: f, Replace: &cancel})
			if err != nil {
				t.Errorf("Create %s: %v", f.ID, err)
				return
			}
			if got.Followup.ID != f.ID || got.Replayed {
				t.Errorf("Create %s returned %s (replayed %v)", f.ID, got.Followup.ID, got.Replayed)
			}
			if got.Replaced != nil {
				if got.Replaced.Status != followup.StatusCancelled {
					t.Errorf("Create %s replaced %s, now %s", f.ID, got.Replaced.ID, got.Replaced.Status)
				}
				mu.Lock()
				if by, ok := replaced[got.Replaced.ID]; ok {
					t.Errorf("%s reported replaced by both %s and %s", got.Replaced.ID, by, f.ID)
				}
				replaced[got.Replaced.ID] = f.ID
				mu.Unlock()
			}
		})
	}
	cwg.Wait()
	close(stop)
	wg.Wait()
	if failures.Load() == 0 {
		t.Fatal("no batch failed; the test proved nothing")
	}
	if len(replaced) != creates-1 {
		t.Fatalf("%d creates reported a replacement, want %d", len(replaced), creates-1)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.ByStatus[followup.StatusScheduled] != 1 || st.ByStatus[followup.StatusCancelled] != creates-1 {
		t.Fatalf("Stats.ByStatus = %v, want 1 scheduled, %d cancelled", st.ByStatus, creates-1)
	}
	for id := range replaced {
		f, err := s.Get(context.Background(), id)
		if err != nil || f.Status != followup.StatusCancelled || f.Version != 2 {
			t.Fatalf("Get %s = %+v, %v; want cancelled once", id, f, err)
		}
	}
}
