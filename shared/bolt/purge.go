package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/followups/followups/shared/followup"
)

// purgeChunk bounds the entries one purge transaction visits, so writers
// never wait long behind Purge.
const purgeChunk = 256

// Purge removes, as of now, the settled followups older than the retention
// (with their index entries), the idempotency keys past their expiry and
// the dead letters older than the retention. A settled followup whose key
// is still live stays until the key expires, so a replay never misses it.
// It works in small transactions; call it periodically. n counts the
// followups removed.
func (s *Store) Purge(ctx context.Context, now time.Time) (n int, err error) {
	cutoff := now.Add(-s.retention)

	n, err = s.visitChunks(ctx, bucketSettled, func(t tx, k, v []byte) (verdict, int, error) {
		at, id, err := splitTimeIDKey(k)
		if err != nil {
			return stop, 0, fmt.Errorf("settled index: %w", err)
		}
		if at.After(cutoff) {
			return stop, 0, nil
		}
		if len(v) >= timeKeyLen && now.Before(parseTimeKey(v)) {
			return skip, 0, nil // its idempotency key can still replay it
		}
		r, err := t.get(id)
		if errors.Is(err, followup.ErrNotFound) {
			return skip, 0, t.settled.Delete(k)
		}
		if err != nil {
			return stop, 0, err
		}
		if err := t.remove(r); err != nil {
			return stop, 0, err
		}
		return skip, 1, t.settled.Delete(k) // already gone unless the entry was stale
	})
	if err != nil {
		return n, fmt.Errorf("purge followups: %w", err)
	}

	_, err = s.visitChunks(ctx, bucketKeyExpiry, func(t tx, k, _ []byte) (verdict, int, error) {
		at, key, err := splitTimeIDKey(k)
		if err != nil {
			return stop, 0, fmt.Errorf("key expiry index: %w", err)
		}
		if now.Before(at) {
			return stop, 0, nil
		}
		if v := t.keys.Get([]byte(key)); v != nil {
			e, err := decodeKeyEntry(v)
			if err != nil {
				return stop, 0, err
			}
			if e.expiresAt.Equal(at) {
				if err := t.keys.Delete([]byte(key)); err != nil {
					return stop, 0, err
				}
				if err := t.count(counterKeys, -1); err != nil {
					return stop, 0, err
				}
			}
		}
		return skip, 0, t.keyExpiry.Delete(k)
	})
	if err != nil {
		return n, fmt.Errorf("purge idempotency keys: %w", err)
	}

	_, err = s.visitChunks(ctx, bucketDeadLetters, func(t tx, k, _ []byte) (verdict, int, error) {
		if len(k) < timeKeyLen {
			return stop, 0, fmt.Errorf("dead letter key %x too short", k)
		}
		if parseTimeKey(k).After(cutoff) {
			return stop, 0, nil
		}
		if err := t.deadLetters.Delete(k); err != nil {
			return stop, 0, err
		}
		return skip, 0, t.count(counterDeadLetters, -1)
	})
	if err != nil {
		return n, fmt.Errorf("purge dead letters: %w", err)
	}
	return n, nil
}

// verdict tells visitChunks whether to go on after an entry.
type verdict bool

const (
	skip verdict = false // go on to the next entry
	stop verdict = true  // the entries from here on are not due
)

// visitChunks walks bucket in key order, purgeChunk entries per write
// transaction, calling visit for each until it says stop. visit may delete
// the entry it is given. It returns the sum of visit's counts.
func (s *Store) visitChunks(ctx context.Context, bucket []byte, visit func(t tx, k, v []byte) (verdict, int, error)) (int, error) {
	total := 0
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var (
			done    bool
			counted int
			last    []byte
		)
		err := s.db.Update(func(btx *bbolt.Tx) error {
			done, counted, last = false, 0, nil
			t := txn(btx)
			// Copy the chunk first: deleting under a live cursor can make
			// it skip entries.
			var chunk []pair
			chunk, done = readChunk(btx.Bucket(bucket).Cursor(), after, purgeChunk)
			for _, e := range chunk {
				verdict, n, err := visit(t, e.k, e.v)
				if err != nil {
					return err
				}
				if verdict == stop {
					done = true
					return nil
				}
				counted += n
				last = e.k
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += counted
		if done || last == nil {
			return total, nil
		}
		after = last
	}
}
