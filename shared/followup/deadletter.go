package followup

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Attribute names EventBridge Scheduler sets on a message it could not
// deliver to its target and sent to the dead-letter queue instead. A message
// redriven by SQS from the fire queue has none of them.
const (
	SchedulerErrorCode    = "ERROR_CODE"
	SchedulerErrorMessage = "ERROR_MESSAGE"
)

// DeadLetter handles one message from the dead-letter queue. Two kinds
// arrive there: fire messages that SQS redrove after the last allowed
// receive (settled retries_exhausted with the last concrete error), and
// schedules EventBridge Scheduler could not deliver (settled
// schedule_delivery_failed with Scheduler's error). A message it cannot
// parse is kept, not lost. A followup already settled is left as it is.
func (s *Service) DeadLetter(ctx context.Context, body []byte, attrs map[string]string) Verdict {
	m, err := ParseMessage(body)
	if err != nil || m.FollowupID == "" {
		return s.keepInvalid(ctx, body, attrs, "dead letter has no followup_id")
	}
	reason, why := DropRetriesExhausted, ""
	if code, ok := attrs[SchedulerErrorCode]; ok {
		reason = DropScheduleDeliveryFailed
		why = fmt.Sprintf("EventBridge Scheduler could not deliver: %s: %s", code, attrs[SchedulerErrorMessage])
	}
	for range 3 {
		now := s.clock.Now()
		f, err := s.store.Get(ctx, m.FollowupID)
		switch {
		case errors.Is(err, ErrNotFound):
			if reason == DropRetriesExhausted {
				return s.recordMissing(ctx, m, DropRecordMissing, "a dead-lettered message names a followup whose record does not exist")
			}
			return s.recordMissing(ctx, m, reason, why)
		case err != nil:
			s.log.ErrorContext(ctx, "read followup for dead letter failed", "followup_id", m.FollowupID, "error", err)
			return RetryAfter(storeRetry)
		case f.Status.Terminal():
			return Ack
		case f.Status == StatusDispatching && !LeaseExpired(f, now):
			// An attempt is in flight; its result decides. Look again after.
			return RetryAfter(max(f.LeaseUntil.Sub(now), time.Second))
		case f.Status == StatusDispatching:
			if _, err := s.store.Apply(ctx, f.ID, Interrupt(f, now)); err != nil && !errors.Is(err, ErrConflict) {
				return RetryAfter(storeRetry)
			}
			continue
		}
		msg := why
		if reason == DropRetriesExhausted {
			msg = lastError(f)
		}
		return s.settleNoAttempt(ctx, f, Drop(reason, msg, nil), string(reason))
	}
	return RetryAfter(time.Second)
}
