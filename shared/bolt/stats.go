package bolt

import (
	"fmt"
	"os"

	bbolt "go.etcd.io/bbolt"

	"github.com/followups/followups/shared/followup"
)

// Stats is what the store holds, for metrics and capacity planning.
type Stats struct {
	// Followups counts the records kept, every status.
	Followups int64
	// ByStatus counts them per status.
	ByStatus map[followup.Status]int64
	// IdempotencyKeys counts the keys remembered, expired ones not yet
	// purged included.
	IdempotencyKeys int64
	// DeadLetters counts the dead letters kept.
	DeadLetters int64
	// FileBytes is the size of the file on disk. It grows ahead of need
	// and does not shrink when Purge frees space (freed pages are reused).
	FileBytes int64
	// DataBytes is the part of the file in use or freed for reuse: the
	// file's high-water mark.
	DataBytes int64
}

// Stats reads the counters kept with every write; it does not walk the
// data.
func (s *Store) Stats() (Stats, error) {
	st := Stats{ByStatus: make(map[followup.Status]int64, len(followup.Statuses))}
	err := s.db.View(func(btx *bbolt.Tx) error {
		t := txn(btx)
		for _, status := range followup.Statuses {
			n := t.counter(statusCounter(status))
			st.ByStatus[status] = n
			st.Followups += n
		}
		st.IdempotencyKeys = t.counter(counterKeys)
		st.DeadLetters = t.counter(counterDeadLetters)
		st.DataBytes = btx.Size()
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("store stats: %w", err)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return Stats{}, fmt.Errorf("store stats: %w", err)
	}
	st.FileBytes = fi.Size()
	return st, nil
}
