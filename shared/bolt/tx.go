package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/followups/followups/shared/followup"
)

// tx is one bbolt transaction with its buckets at hand. Its methods keep a
// record and all of its index entries and counters consistent.
type tx struct {
	followups, threads, due, sweep, runs, settled, keys, keyExpiry, deadLetters, meta *bbolt.Bucket
}

func txn(t *bbolt.Tx) tx {
	x := tx{
		followups:   t.Bucket(bucketFollowups),
		threads:     t.Bucket(bucketThreads),
		due:         t.Bucket(bucketDue),
		sweep:       t.Bucket(bucketSweep),
		runs:        t.Bucket(bucketRuns),
		settled:     t.Bucket(bucketSettled),
		keys:        t.Bucket(bucketKeys),
		keyExpiry:   t.Bucket(bucketKeyExpiry),
		deadLetters: t.Bucket(bucketDeadLetters),
		meta:        t.Bucket(bucketMeta),
	}
	// These buckets are filled mostly in key order (ids start with their
	// creation time; settle, expiry and arrival times grow), and bbolt's
	// default split leaves such pages half empty.
	x.followups.FillPercent = 0.9
	x.settled.FillPercent = 0.9
	x.keyExpiry.FillPercent = 0.9
	x.deadLetters.FillPercent = 0.9
	return x
}

// get returns the decoded record of id, or followup.ErrNotFound.
func (t tx) get(id string) (record, error) {
	v := t.followups.Get([]byte(id))
	if v == nil {
		return record{}, followup.ErrNotFound
	}
	r, err := decodeRecord(v)
	if err != nil {
		return record{}, fmt.Errorf("followup %s: %w", id, err)
	}
	return r, nil
}

// getIndexed returns the record an index entry names. A missing record
// there is damage, not a client's not_found.
func (t tx) getIndexed(id, index string) (record, error) {
	r, err := t.get(id)
	if errors.Is(err, followup.ErrNotFound) {
		return record{}, fmt.Errorf("%s names followup %s, which is missing", index, id)
	}
	return r, err
}

// insert writes a new record (encoded is encodeRecord of f) and its index
// entries.
func (t tx) insert(f *followup.Followup, encoded []byte, keyExpiresAt time.Time) error {
	if err := t.followups.Put([]byte(f.ID), encoded); err != nil {
		return err
	}
	return t.index(f, keyExpiresAt)
}

// entry is one index entry of a record: a key and its value in a bucket.
type entry struct {
	bucket *bbolt.Bucket
	key    []byte
	value  []byte
}

// entries lists f's index entries: its thread's listing, its due and
// sweep times while pending, and its settle time once terminal.
func (t tx) entries(f *followup.Followup, keyExpiresAt time.Time) []entry {
	out := make([]entry, 0, 4)
	out = append(out, entry{t.threads, threadKey(f.ThreadID, f.RunAt, f.ID), nil})
	if at, ok := dueAt(f); ok {
		out = append(out, entry{t.due, timeIDKey(at, f.ID), []byte(f.ThreadID)})
	}
	if !f.SweepAt.IsZero() {
		out = append(out, entry{t.sweep, timeIDKey(f.SweepAt, f.ID), sweepEntry(f)})
	}
	if f.Status.Terminal() {
		var v []byte
		if !keyExpiresAt.IsZero() {
			v = appendTimeKey(nil, keyExpiresAt)
		}
		out = append(out, entry{t.settled, timeIDKey(settledAt(f), f.ID), v})
	}
	return out
}

// index adds f's entries to the indexes and counts it.
func (t tx) index(f *followup.Followup, keyExpiresAt time.Time) error {
	for _, e := range t.entries(f, keyExpiresAt) {
		if err := e.bucket.Put(e.key, e.value); err != nil {
			return err
		}
	}
	return t.count(statusCounter(f.Status), 1)
}

// unindex removes f's entries from the indexes and uncounts it.
func (t tx) unindex(f *followup.Followup) error {
	for _, e := range t.entries(f, time.Time{}) {
		if err := e.bucket.Delete(e.key); err != nil {
			return err
		}
	}
	return t.count(statusCounter(f.Status), -1)
}

// transition writes what tr makes of r (already checked) and returns it.
// Only the index entries that change are written: a claim or a settle
// moves two or three of them, and each write dirties a page the commit
// writes out.
func (t tx) transition(r record, tr followup.Transition) (*followup.Followup, error) {
	next := r.f.Clone()
	tr.Apply(next)
	if err := t.followups.Put([]byte(next.ID), encodeRecord(record{f: next, keyExpiresAt: r.keyExpiresAt})); err != nil {
		return nil, err
	}
	before, after := t.entries(r.f, r.keyExpiresAt), t.entries(next, r.keyExpiresAt)
	// The thread entry is compared as it stands: format 2 kept a status
	// in it, which is not read (a listing by status reads the records)
	// and is written empty on its next change; a missing one is put back.
	if k, v := t.threads.Cursor().Seek(before[0].key); bytes.Equal(k, before[0].key) {
		before[0].value = v
	} else {
		before = before[1:]
	}
	for _, old := range before {
		if !slices.ContainsFunc(after, func(e entry) bool { return e.bucket == old.bucket && bytes.Equal(e.key, old.key) }) {
			if err := old.bucket.Delete(old.key); err != nil {
				return nil, err
			}
		}
	}
	for _, e := range after {
		if !slices.ContainsFunc(before, func(old entry) bool {
			return old.bucket == e.bucket && bytes.Equal(old.key, e.key) && bytes.Equal(old.value, e.value)
		}) {
			if err := e.bucket.Put(e.key, e.value); err != nil {
				return nil, err
			}
		}
	}
	if r.f.Status != next.Status {
		if err := t.count(statusCounter(r.f.Status), -1); err != nil {
			return nil, err
		}
		if err := t.count(statusCounter(next.Status), 1); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// remove deletes r with its index entries and its run slot, when the slot
// still points to it.
func (t tx) remove(r record) error {
	f := r.f
	if err := t.followups.Delete([]byte(f.ID)); err != nil {
		return err
	}
	if err := t.unindex(f); err != nil {
		return err
	}
	if f.OriginatingRunID != "" {
		slot := runKey(f.ThreadID, f.OriginatingRunID)
		if string(t.runs.Get(slot)) == f.ID {
			if err := t.runs.Delete(slot); err != nil {
				return err
			}
		}
	}
	return nil
}

// settledAt is when a terminal followup settled; a record created terminal
// without SettledAt counts from its last update.
func settledAt(f *followup.Followup) time.Time {
	if f.SettledAt != nil {
		return *f.SettledAt
	}
	return f.UpdatedAt
}

// The counters of the meta bucket.
const (
	counterKeys        = "count/keys"
	counterDeadLetters = "count/dead_letters"
)

func statusCounter(s followup.Status) string { return "count/status/" + string(s) }

// count adds delta to a counter. Counters let Stats answer without walking
// the buckets.
func (t tx) count(name string, delta int64) error {
	key := []byte(name)
	var n int64
	if v := t.meta.Get(key); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	return t.meta.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n+delta)))
}

// counter reads a counter.
func (t tx) counter(name string) int64 {
	if v := t.meta.Get([]byte(name)); len(v) == 8 {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}
