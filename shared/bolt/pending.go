package bolt

import (
	"context"
	"fmt"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Pending calls fn for every non-terminal followup, earliest due first,
// with the time it next needs attention: NextAttemptAt when scheduled,
// LeaseUntil when dispatching. It reads only the due index, never the
// records, so a restart rebuilds its timers quickly and in little memory.
// fn runs outside any transaction and may use the Store; an error from fn
// stops the walk and is returned.
func (s *Store) Pending(ctx context.Context, fn func(m followup.Message, due time.Time) error) error {
	err := s.walk(ctx, bucketDue, func(k, v []byte) error {
		due, id, err := splitTimeIDKey(k)
		if err != nil {
			return fmt.Errorf("due index: %w", err)
		}
		return fn(followup.Message{FollowupID: id, ThreadID: string(v)}, due)
	})
	if err != nil {
		return fmt.Errorf("list pending followups: %w", err)
	}
	return nil
}
