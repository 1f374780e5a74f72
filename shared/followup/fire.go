package followup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// storeRetry is how long a message waits when the store failed under it.
const storeRetry = 5 * time.Second

// ParseMessage reads a fire-queue message body.
func ParseMessage(body []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return Message{}, fmt.Errorf("queue message is not a followup message: %w", err)
	}
	return m, nil
}

// Fire handles one delivery of a fire-queue message: claim the followup,
// make one attempt, and record what happened. The verdict tells the queue
// whether to delete the message or bring it back after the retry wait, so
// no handler ever sleeps and a retrying followup never delays another.
func (s *Service) Fire(ctx context.Context, body []byte) Verdict {
	m, err := ParseMessage(body)
	switch {
	case err != nil || m.FollowupID == "":
		return s.keepInvalid(ctx, body, nil, "message has no followup_id")
	case m.ThreadID == "":
		return s.dropInvalid(ctx, m, "message has no thread_id")
	}
	// A lease that expired means an attempt was lost; recording it may take
	// one more round, hence the small loop.
	for range 3 {
		now := s.clock.Now()
		f, err := s.store.Apply(ctx, m.FollowupID, Claim(now, s.lease, s.retry.MaxAttempts()))
		var conflict *ConflictError
		switch {
		case err == nil:
			return s.attempt(ctx, f, m)
		case errors.Is(err, ErrNotFound):
			return s.recordMissing(ctx, m, DropRecordMissing, "the schedule fired but the followup record does not exist")
		case !errors.As(err, &conflict):
			s.log.ErrorContext(ctx, "claim failed", "followup_id", m.FollowupID, "thread_id", m.ThreadID, "error", err)
			return RetryAfter(storeRetry)
		}
		cur := conflict.Current
		switch {
		case cur.Status.Terminal():
			// A late or duplicate message: acknowledged, nothing dispatched.
			s.log.DebugContext(ctx, "message for a settled followup ignored", "followup_id", cur.ID, "status", cur.Status)
			return Ack
		case cur.Status == StatusScheduled && cur.Attempts >= s.retry.MaxAttempts():
			return s.settleNoAttempt(ctx, cur, Drop(DropRetriesExhausted, lastError(cur), nil), "retries exhausted")
		case cur.Status == StatusScheduled:
			// Early: a duplicate during a retry wait, or a schedule that
			// fired ahead of time. Come back when it is due.
			return RetryAfter(max(cur.NextAttemptAt.Sub(now), time.Second))
		case LeaseExpired(cur, now):
			if _, err := s.store.Apply(ctx, cur.ID, Interrupt(cur, now)); err != nil && !errors.Is(err, ErrConflict) {
				return RetryAfter(storeRetry)
			}
			s.log.WarnContext(ctx, "attempt interrupted: its lease expired", "followup_id", cur.ID, "thread_id", cur.ThreadID, "attempt", cur.Attempts)
		default:
			// Another worker holds a live claim; look again when it ends.
			return RetryAfter(max(cur.LeaseUntil.Sub(now), time.Second))
		}
	}
	return RetryAfter(time.Second)
}

// attempt dispatches a claimed followup once and records the outcome.
func (s *Service) attempt(ctx context.Context, f *Followup, m Message) Verdict {
	n := f.Attempts
	if m.ThreadID != f.ThreadID {
		now := s.clock.Now()
		run := Run{Attempt: n, StartedAt: now, FinishedAt: now, Outcome: OutcomeDrop,
			Error: "queue message thread_id does not match the followup's thread"}
		return s.settleAttempt(ctx, f, Drop(DropInvalidMessage, run.Error, &run), Attempt{Outcome: OutcomeDrop}, 0)
	}
	start := s.clock.Now()
	a := s.dispatcher.Dispatch(ctx, f, n)
	end := s.clock.Now()
	latency := end.Sub(start)
	run := Run{
		Attempt: n, StartedAt: start, FinishedAt: end, DurationMS: latency.Milliseconds(),
		Outcome: a.Outcome, HTTPStatus: a.HTTPStatus, Error: a.Error,
	}
	s.obs.Attempted(f, a, latency)
	switch a.Outcome {
	case OutcomeSuccess:
		return s.settleAttempt(ctx, f, Result{Status: StatusDelivered, Run: &run}, a, latency)
	case OutcomeDrop:
		return s.settleAttempt(ctx, f, Drop(a.DropReason, a.Error, &run), a, latency)
	}
	// Retryable. After the last allowed attempt the message is returned at
	// once: the queue's redrive limit moves it to the dead-letter queue,
	// whose consumer settles retries_exhausted.
	wait := time.Duration(0)
	if n < s.retry.MaxAttempts() {
		wait = s.retry.Wait(n, a.RetryAfter)
	}
	if _, err := s.store.Apply(ctx, f.ID, Release(f, run, end.Add(wait))); err != nil {
		return s.lostClaim(ctx, f, err)
	}
	msg := "attempt failed; will retry"
	if n >= s.retry.MaxAttempts() {
		msg = "attempt failed; no retry left: to the dead-letter queue"
	}
	attrs := []any{"followup_id", f.ID, "thread_id", f.ThreadID, "attempt", n, "outcome", a.Outcome, "http_status", a.HTTPStatus, "retry_in", wait}
	if e := loggable(run); e != "" {
		attrs = append(attrs, "error", e)
	}
	s.log.InfoContext(ctx, msg, attrs...)
	return RetryAfter(wait)
}

// settleAttempt records a terminal attempt.
func (s *Service) settleAttempt(ctx context.Context, f *Followup, r Result, a Attempt, latency time.Duration) Verdict {
	done, err := s.store.Apply(ctx, f.ID, Settle(f, r, r.Run.FinishedAt))
	if err != nil {
		return s.lostClaim(ctx, f, err)
	}
	msg := "followup delivered"
	if done.Status == StatusFailedDropped {
		msg = "followup dropped"
	}
	s.settled(ctx, done, msg, "attempt", r.Run.Attempt, "outcome", r.Run.Outcome, "http_status", a.HTTPStatus,
		"duration_ms", latency.Milliseconds())
	return Ack
}

// lostClaim handles a result that could not be recorded: the store failed,
// or the lease expired and another delivery took the followup over. The
// message comes back and finds the followup as it then stands; a repeat
// dispatch carries the same Idempotency-Key, so the thread can deduplicate.
func (s *Service) lostClaim(ctx context.Context, f *Followup, err error) Verdict {
	s.log.WarnContext(ctx, "could not record the attempt's result", "followup_id", f.ID, "thread_id", f.ThreadID,
		"attempt", f.Attempts, "error", err)
	return RetryAfter(time.Second)
}

// settleNoAttempt drops a scheduled followup without dispatching it.
func (s *Service) settleNoAttempt(ctx context.Context, f *Followup, r Result, msg string, attrs ...any) Verdict {
	done, err := s.store.Apply(ctx, f.ID, Settle(f, r, s.clock.Now()))
	switch {
	case errors.Is(err, ErrConflict):
		return RetryAfter(time.Second) // it changed under us; look again
	case err != nil:
		s.log.ErrorContext(ctx, "settle failed", "followup_id", f.ID, "error", err)
		return RetryAfter(storeRetry)
	}
	s.settled(ctx, done, "followup dropped: "+msg, attrs...)
	return Ack
}

// dropInvalid handles a message naming a followup but no thread: the
// followup, when it exists and waits, is dropped as invalid_message.
func (s *Service) dropInvalid(ctx context.Context, m Message, why string) Verdict {
	f, err := s.store.Get(ctx, m.FollowupID)
	switch {
	case errors.Is(err, ErrNotFound):
		return s.keepInvalid(ctx, mustJSON(m), nil, why)
	case err != nil:
		return RetryAfter(storeRetry)
	case f.Status != StatusScheduled:
		return Ack
	}
	return s.settleNoAttempt(ctx, f, Drop(DropInvalidMessage, "invalid queue message: "+why, nil), why)
}

// keepInvalid keeps a message nobody can act on, so it is not lost.
func (s *Service) keepInvalid(ctx context.Context, body []byte, attrs map[string]string, why string) Verdict {
	now := s.clock.Now()
	d := DeadLetterRecord{ID: s.newID(), Body: string(body), Attributes: attrs, Error: why, ReceivedAt: now}
	if err := s.store.KeepDeadLetter(ctx, d); err != nil {
		s.log.ErrorContext(ctx, "could not keep an invalid message", "error", err)
		return RetryAfter(storeRetry)
	}
	f := &Followup{Status: StatusFailedDropped, DropReason: DropInvalidMessage, LastError: why, UpdatedAt: now, SettledAt: &now}
	s.obs.Settled(f, 0)
	s.log.WarnContext(ctx, "invalid queue message kept as a dead letter", "dead_letter_id", d.ID,
		"drop_reason", DropInvalidMessage, "error", why, "body_bytes", len(body))
	return Ack
}

// recordMissing settles a message whose followup has no record by writing
// a settled record in its place, so the drop is visible under the id and a
// create that is somehow still in flight can never land behind it.
func (s *Service) recordMissing(ctx context.Context, m Message, reason DropReason, why string) Verdict {
	now := s.clock.Now()
	f := &Followup{
		ID: m.FollowupID, ThreadID: m.ThreadID, RunAt: now, Status: StatusFailedDropped,
		DropReason: reason, LastError: why, Runs: []Run{}, CreatedAt: now, UpdatedAt: now, SettledAt: &now,
		Version: 1, NextAttemptAt: now,
	}
	_, err := s.store.Create(ctx, Creation{Followup: f})
	switch {
	case errors.Is(err, ErrExists):
		return RetryAfter(time.Second) // it exists after all; handle it as it is
	case err != nil:
		s.log.ErrorContext(ctx, "could not record a missing followup", "followup_id", m.FollowupID, "error", err)
		return RetryAfter(storeRetry)
	}
	s.settled(ctx, f, "followup dropped: "+why)
	return Ack
}

// loggable is the error of a run as it may be logged. An error that quotes
// the thread API's answer (any run with an HTTP status) may carry its body,
// which is never logged; the status says enough.
func loggable(r Run) string {
	if r.HTTPStatus != 0 {
		return ""
	}
	return r.Error
}

func lastError(f *Followup) string {
	if f.LastError != "" {
		return f.LastError
	}
	return fmt.Sprintf("the queue gave up after %d attempts", f.Attempts)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // a Message always encodes
	return b
}
