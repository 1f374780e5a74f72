package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/followups/followups/shared/followup"
)

// deadLetter is a dead letter as kept: JSON, since operators read these
// rarely and may want to read them with other tools.
type deadLetter struct {
	ID         string            `json:"id"`
	Body       string            `json:"body"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Error      string            `json:"error"`
	ReceivedAt time.Time         `json:"received_at"`
}

// KeepDeadLetter stores a message nobody could understand. The same
// message kept twice is kept twice. Purge removes dead letters older than
// the retention.
func (s *Store) KeepDeadLetter(ctx context.Context, d followup.DeadLetterRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := json.Marshal(deadLetter(d))
	if err != nil {
		return fmt.Errorf("keep dead letter %s: %w", d.ID, err)
	}
	err = s.db.Batch(func(btx *bbolt.Tx) error {
		t := txn(btx)
		seq, err := t.deadLetters.NextSequence()
		if err != nil {
			return err
		}
		k := binary.BigEndian.AppendUint64(appendTimeKey(nil, d.ReceivedAt), seq)
		if err := t.deadLetters.Put(k, v); err != nil {
			return err
		}
		return t.count(counterDeadLetters, 1)
	})
	if err != nil {
		return fmt.Errorf("keep dead letter %s: %w", d.ID, err)
	}
	return nil
}

// DeadLetters calls fn for every dead letter kept, oldest first. fn runs
// outside any transaction; an error from fn stops the walk and is returned.
func (s *Store) DeadLetters(ctx context.Context, fn func(followup.DeadLetterRecord) error) error {
	err := s.walk(ctx, bucketDeadLetters, func(k, v []byte) error {
		var d deadLetter
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("dead letter %x: %w", k, err)
		}
		return fn(followup.DeadLetterRecord(d))
	})
	if err != nil {
		return fmt.Errorf("list dead letters: %w", err)
	}
	return nil
}
