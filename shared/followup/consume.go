package followup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"
	"unicode/utf8"
)

// Fire handles one delivery of a fire-queue message: claim the followup,
// make one attempt, and record what happened. Rules.Decide says what to do
// at each step; Fire only carries the steps out. The verdict tells the
// queue whether to delete the message or bring it back later, so no
// handler ever sleeps and a retrying followup never delays another.
func (s *Service) Fire(ctx context.Context, d Delivery) Verdict {
	return s.consume(ctx, FireQueue, d)
}

// DeadLetter handles one delivery from the dead-letter queue: a followup
// whose attempts ran out (settled retries_exhausted with the last
// concrete error), a message the fire queue gave up on while attempts
// were left (sent back, then settled queue_exhausted), or a schedule
// EventBridge Scheduler could not deliver (settled
// schedule_delivery_failed). A message it cannot read is kept, not lost.
func (s *Service) DeadLetter(ctx context.Context, d Delivery) Verdict {
	return s.consume(ctx, DeadLetterQueue, d)
}

// maxRounds bounds the steps of one delivery; each round is a store
// write or read that found the followup changed.
const maxRounds = 6

func (s *Service) consume(ctx context.Context, q QueueSide, d Delivery) Verdict {
	sit := Situation{Queue: q, Delivery: d}
	sit.Message, sit.Invalid = parseBody(q, d.Body)
	look := true
	for range maxRounds {
		if look && sit.Message.FollowupID != "" {
			s.look(ctx, &sit)
		}
		step := s.rules.Decide(sit, s.clock.Now())
		v, next := s.carry(ctx, &sit, step)
		switch next {
		case done:
			return v
		case lookAgain:
			look = true
		case decideAgain:
			look = false
		}
	}
	return RetryAfter(time.Second)
}

// look claims the followup of a fire-queue message, or reads it (a dead
// letter, or a message that does not say its thread).
func (s *Service) look(ctx context.Context, sit *Situation) {
	id := sit.Message.FollowupID
	var (
		f   *Followup
		err error
	)
	claim := sit.Queue == FireQueue && sit.Message.ThreadID != ""
	if claim {
		f, err = s.store.Apply(ctx, id, Claim(s.clock.Now(), s.timing.Lease, s.retry.MaxAttempts))
	} else {
		f, err = s.store.Get(ctx, id)
	}
	sit.Stored, sit.Claimed, sit.NotFound, sit.StoreErr, sit.Attempt = nil, false, false, nil, nil
	var conflict *ConflictError
	switch {
	case err == nil:
		sit.Stored, sit.Claimed = f, claim
	case errors.Is(err, ErrNotFound):
		sit.NotFound = true
	case errors.As(err, &conflict):
		sit.Stored = conflict.Current
	default:
		sit.StoreErr = err
	}
}

// next says what the consumer does after carrying out one step.
type next uint8

const (
	done        next = iota // the verdict is final
	lookAgain               // claim or read the followup again, then decide
	decideAgain             // decide again on the situation as it now is
)

// carry carries out step.
func (s *Service) carry(ctx context.Context, sit *Situation, step Step) (Verdict, next) {
	if step.Write != nil {
		if n, ok := s.write(ctx, sit, step); !ok {
			return s.waitForStore(ctx, sit, n)
		}
	}
	m := sit.Message
	switch step.Then {
	case Acknowledge:
		s.log.DebugContext(ctx, "message acknowledged", "queue", sit.Queue.String(), "followup_id", m.FollowupID, "why", step.Why)
		return Ack, done
	case Hide:
		s.logHide(ctx, sit, step)
		return RetryAfter(step.Wait), done
	case Requeue:
		if err := s.queues.SendFire(ctx, sit.Delivery.Body, sit.Delivery.Attributes, step.Wait); err != nil {
			return s.waitForQueue(ctx, sit, "send an early message back", err)
		}
		s.log.DebugContext(ctx, "early message sent back for the rest", "followup_id", m.FollowupID, "due_in", step.Wait)
		return Ack, done
	case MoveToDeadLetter:
		if err := s.queues.SendDeadLetter(ctx, sit.Delivery.Body, sit.Delivery.Attributes); err != nil {
			return s.waitForQueue(ctx, sit, "move a message to the dead-letter queue", err)
		}
		return Ack, done
	case SendBack:
		attrs := maps.Clone(sit.Delivery.Attributes)
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs[ReturnsAttribute] = strconv.Itoa(Returns(sit.Delivery.Attributes) + 1)
		if err := s.queues.SendFire(ctx, sit.Delivery.Body, attrs, step.Wait); err != nil {
			return s.waitForQueue(ctx, sit, "send a message back to the fire queue", err)
		}
		s.log.WarnContext(ctx, "queue gave up on a followup with attempts left; sent back", "followup_id", m.FollowupID,
			"thread_id", m.ThreadID, "status", sit.Stored.Status, "attempts", sit.Stored.Attempts, "why", step.Why)
		return Ack, done
	case Dispatch:
		sit.Attempt = s.attempt(ctx, sit.Stored)
		return Verdict{}, decideAgain
	case LookAgain:
		return Verdict{}, lookAgain
	case KeepDeadLetter:
		return s.keepInvalid(ctx, sit, step.Why)
	case RecordMissing:
		return s.recordMissing(ctx, sit, step)
	}
	panic(fmt.Sprintf("followup: unknown action %d", step.Then))
}

// write applies step.Write. On a refusal it puts the followup as it now
// stands into sit and says to decide again; ok is false when the store
// failed.
func (s *Service) write(ctx context.Context, sit *Situation, step Step) (_ next, ok bool) {
	t := step.Write
	f, err := s.store.Apply(ctx, sit.Message.FollowupID, *t)
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		if sit.Claimed {
			// The lease expired and another delivery took the followup
			// over. A repeat dispatch carries the same Idempotency-Key, so
			// the thread can deduplicate.
			s.log.WarnContext(ctx, "could not record the attempt's result: the followup changed", "followup_id", sit.Message.FollowupID,
				"thread_id", sit.Message.ThreadID, "status", conflict.Current.Status, "transition", t.Name)
		}
		sit.Stored, sit.Claimed, sit.Attempt = conflict.Current, false, nil
		return decideAgain, false
	case errors.Is(err, ErrNotFound):
		return lookAgain, false
	case err != nil:
		sit.StoreErr = fmt.Errorf("%s: %w", t.Name, err)
		return done, false
	}
	prev := sit.Stored
	sit.Stored, sit.Claimed = f, false
	switch {
	case f.Status.Terminal():
		var attrs []slog.Attr
		if r := t.AppendRun; r != nil {
			attrs = []slog.Attr{slog.Int("attempt", r.Attempt), slog.String("outcome", string(r.Outcome)),
				slog.Int("http_status", r.HTTPStatus), slog.Int64("duration_ms", r.DurationMS)}
		}
		s.settled(ctx, f, settledMessage(f, t), attrs...)
	case t.Name == "interrupt":
		s.log.WarnContext(ctx, "attempt interrupted: its lease expired", "followup_id", f.ID, "thread_id", f.ThreadID, "attempt", prev.Attempts)
	case t.AppendRun != nil:
		s.logRetry(ctx, f, *t.AppendRun, step)
	}
	return decideAgain, true
}

// waitForStore turns a failed or refused write into its next move: a
// refusal decides again on the followup as it stands; a store failure
// hides the message for a while.
func (s *Service) waitForStore(ctx context.Context, sit *Situation, n next) (Verdict, next) {
	if n != done {
		return Verdict{}, n
	}
	step := s.rules.Decide(*sit, s.clock.Now()) // StoreErr is set: a Hide
	s.logHide(ctx, sit, step)
	return RetryAfter(step.Wait), done
}

// waitForQueue hides a message whose send failed; the next receive does
// the step again.
func (s *Service) waitForQueue(ctx context.Context, sit *Situation, what string, err error) (Verdict, next) {
	wait := StoreBackoff(sit.Delivery.ReceiveCount, s.retry.Float64)
	s.log.ErrorContext(ctx, "could not "+what+"; the message comes back later", "followup_id", sit.Message.FollowupID,
		"error", err, "retry_in", wait)
	return RetryAfter(wait), done
}

func (s *Service) logHide(ctx context.Context, sit *Situation, step Step) {
	attrs := []any{"queue", sit.Queue.String(), "followup_id", sit.Message.FollowupID, "thread_id", sit.Message.ThreadID,
		"receive_count", sit.Delivery.ReceiveCount, "retry_in", step.Wait}
	switch {
	case sit.StoreErr != nil:
		s.log.ErrorContext(ctx, "store failed; the message comes back later, no attempt spent", append(attrs, "error", sit.StoreErr)...)
	case step.Why != "attempt failed; will retry":
		s.log.DebugContext(ctx, "message comes back later: "+step.Why, attrs...)
	}
}

// logRetry logs an attempt that failed and was released for a retry or
// the dead-letter queue.
func (s *Service) logRetry(ctx context.Context, f *Followup, run Run, step Step) {
	attrs := []any{"followup_id", f.ID, "thread_id", f.ThreadID, "attempt", run.Attempt, "outcome", run.Outcome, "http_status", run.HTTPStatus}
	if step.Then == Hide {
		attrs = append(attrs, "retry_in", step.Wait)
	}
	if e := loggable(run); e != "" {
		attrs = append(attrs, "error", e)
	}
	s.log.InfoContext(ctx, step.Why, attrs...)
}

func settledMessage(f *Followup, t *Transition) string {
	switch {
	case f.Status == StatusDelivered:
		return "followup delivered"
	case t.AppendRun != nil:
		return "followup dropped"
	}
	return "followup dropped: " + string(f.DropReason)
}

// attempt dispatches a claimed followup once.
func (s *Service) attempt(ctx context.Context, f *Followup) *Attempted {
	n := f.Attempts
	start := s.clock.Now()
	a := s.dispatcher.Dispatch(ctx, f, n)
	end := s.clock.Now()
	latency := end.Sub(start)
	s.obs.Attempted(f, a, latency)
	return &Attempted{Attempt: a, Run: Run{
		Attempt: n, StartedAt: start, FinishedAt: end, DurationMS: latency.Milliseconds(),
		Outcome: a.Outcome, HTTPStatus: a.HTTPStatus, Error: a.Error,
	}}
}

// keepInvalid keeps a message nobody can act on, so it is not lost.
func (s *Service) keepInvalid(ctx context.Context, sit *Situation, why string) (Verdict, next) {
	now := s.clock.Now()
	body := sit.Delivery.Body
	d := DeadLetterRecord{ID: s.newID(), Body: string(body), Attributes: sit.Delivery.Attributes, Error: why, ReceivedAt: now}
	if err := s.store.KeepDeadLetter(ctx, d); err != nil {
		sit.StoreErr = fmt.Errorf("keep an invalid message: %w", err)
		return s.waitForStore(ctx, sit, done)
	}
	f := &Followup{Status: StatusFailedDropped, DropReason: DropInvalidMessage, LastError: why, UpdatedAt: now, SettledAt: &now}
	s.obs.Settled(f, 0)
	s.log.WarnContext(ctx, "invalid queue message kept as a dead letter", "queue", sit.Queue.String(), "dead_letter_id", d.ID,
		"drop_reason", DropInvalidMessage, "error", why, "body_bytes", len(body))
	return Ack, done
}

// recordMissing settles a message whose followup has no record by writing
// a settled record in its place, so the drop is visible under the id and a
// create that is somehow still in flight can never land behind it.
func (s *Service) recordMissing(ctx context.Context, sit *Situation, step Step) (Verdict, next) {
	now := s.clock.Now()
	m := sit.Message
	f := &Followup{
		ID: m.FollowupID, ThreadID: m.ThreadID, RunAt: now, Status: StatusFailedDropped,
		DropReason: step.Reason, LastError: step.Why, Runs: []Run{}, CreatedAt: now, UpdatedAt: now, SettledAt: &now,
		Version: 1, NextAttemptAt: now,
	}
	_, err := s.store.Create(ctx, Creation{Followup: f})
	switch {
	case errors.Is(err, ErrExists):
		return Verdict{}, lookAgain // it exists after all; handle it as it is
	case err != nil:
		sit.StoreErr = fmt.Errorf("record a missing followup: %w", err)
		return s.waitForStore(ctx, sit, done)
	}
	s.settled(ctx, f, "followup dropped: "+step.Why)
	return Ack, done
}

// parseBody reads a queue message body. A dead letter from EventBridge
// Scheduler may hold the schedule's input itself, or (the form AWS
// documents for an SQS target) a JSON object whose MessageBody string
// holds it, beside QueueUrl.
func parseBody(q QueueSide, body []byte) (Message, string) {
	if m, ok := parseOwnMessage(body); ok {
		return m, ""
	}
	var m struct {
		Message
		MessageBody *string `json:"MessageBody"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return Message{}, fmt.Sprintf("%s message is not a followup message: %v", q, err)
	}
	if q == DeadLetterQueue && m.MessageBody != nil && m.FollowupID == "" {
		if err := json.Unmarshal([]byte(*m.MessageBody), &m.Message); err != nil {
			return Message{}, fmt.Sprintf("dead letter's MessageBody is not a followup message: %v", err)
		}
	}
	if m.FollowupID == "" {
		return Message{}, fmt.Sprintf("%s message has no followup_id", q)
	}
	return m.Message, ""
}

// parseOwnMessage reads a message exactly as MessageFor's JSON writes it
// when neither id needs an escape: nearly every message, without the
// decoder's reflection. Anything else is not ok, for parseBody's decoder.
func parseOwnMessage(body []byte) (Message, bool) {
	const head, mid, tail = `{"followup_id":"`, `","thread_id":"`, `"}`
	rest, ok := bytes.CutPrefix(body, []byte(head))
	if !ok {
		return Message{}, false
	}
	id, rest, ok := bytes.Cut(rest, []byte(mid))
	if !ok {
		return Message{}, false
	}
	thread, ok := bytes.CutSuffix(rest, []byte(tail))
	if !ok || len(id) == 0 || !plainJSONText(id) || !plainJSONText(thread) {
		return Message{}, false
	}
	return Message{FollowupID: string(id), ThreadID: string(thread)}, true
}

// plainJSONText reports whether b is the inside of a JSON string that is
// its own value: valid UTF-8 with no quote, backslash or control byte.
func plainJSONText(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.Valid(b)
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
