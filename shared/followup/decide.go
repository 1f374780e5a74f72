package followup

import (
	"fmt"
	"strconv"
	"time"
)

// QueueSide names the queue a delivery came from.
type QueueSide uint8

const (
	// FireQueue carries followups that are due.
	FireQueue QueueSide = iota
	// DeadLetterQueue carries what the fire path gave up on: a followup
	// whose attempts ran out, a message the queue itself gave up on, and
	// what EventBridge Scheduler could not deliver.
	DeadLetterQueue
)

func (q QueueSide) String() string {
	if q == DeadLetterQueue {
		return "dead_letter"
	}
	return "fire"
}

// Situation is what a consumer knows when it decides what to do with a
// delivery: the message, the followup as stored, and what it just did.
type Situation struct {
	Queue    QueueSide
	Delivery Delivery
	// Message is the body as parsed. FollowupID is empty when the body
	// names none; Invalid then says what is wrong with it.
	Message Message
	Invalid string
	// Stored is the followup as the store last returned it: just claimed
	// (Claimed), refused a claim (the ConflictError's Current), or read.
	// It is nil with NotFound or StoreErr.
	Stored   *Followup
	Claimed  bool
	NotFound bool
	StoreErr error
	// Attempt is the attempt just made on the claimed followup, if any.
	Attempt *Attempted
}

// Attempted is one attempt as it went, with the run that records it.
type Attempted struct {
	Attempt Attempt
	Run     Run
}

// Action is what becomes of a message.
type Action uint8

const (
	// Acknowledge deletes the message.
	Acknowledge Action = iota
	// Hide keeps the message, visible again after Step.Wait; its next
	// receive counts toward the queue's receive limit.
	Hide
	// Requeue sends a copy to the fire queue as a new message, delayed by
	// Step.Wait, and deletes this one: an early message costs no receive.
	Requeue
	// MoveToDeadLetter sends the message to the dead-letter queue and
	// deletes it here.
	MoveToDeadLetter
	// SendBack sends the message to the fire queue with one return more
	// (ReturnsAttribute), delayed by Step.Wait, and deletes it here.
	SendBack
	// Dispatch makes one attempt on the claimed followup; then the
	// consumer decides again.
	Dispatch
	// LookAgain claims or reads the followup again, then decides again:
	// it changed since it was seen.
	LookAgain
	// KeepDeadLetter stores the body as a dead-letter record (it names no
	// followup anyone could act on) and deletes the message.
	KeepDeadLetter
	// RecordMissing writes a settled record in place of the missing one,
	// with Step.Reason, and deletes the message.
	RecordMissing
)

var actionNames = [...]string{"acknowledge", "hide", "requeue", "move to dead letter", "send back", "dispatch", "look again", "keep dead letter", "record missing"}

func (a Action) String() string { return actionNames[a] }

// Step is what a consumer does next.
type Step struct {
	// Write, when set, is applied to the stored followup first. When the
	// store refuses it (the followup changed), the consumer looks again
	// instead of doing Then.
	Write *Transition
	Then  Action
	// Wait is how long the message stays hidden (Hide), or the delay of
	// the message sent (Requeue, SendBack).
	Wait time.Duration
	// Reason is the drop reason of RecordMissing.
	Reason DropReason
	// Why says what led to the step, for the log (and a kept dead letter).
	Why string
}

// ReturnsAttribute is the message attribute that counts how often the
// dead-letter consumer sent a message back to the fire queue because the
// queue gave up on it while its followup had attempts left.
const ReturnsAttribute = "FollowupsReturns"

// MaxReturns is how often a message is sent back before its followup
// settles queue_exhausted.
const MaxReturns = 3

// The attributes EventBridge Scheduler sets on an event it could not
// deliver and sent to the dead-letter queue instead. A message redriven
// by SQS from the fire queue has none of them.
const (
	SchedulerErrorCode    = "ERROR_CODE"
	SchedulerErrorMessage = "ERROR_MESSAGE"
)

// Rules decide what the queue consumers do. They hold the retry budget,
// the lease and the fire queue's receive limit; Decide is a pure function
// of the situation and the time.
type Rules struct {
	Retry  RetryPolicy
	Timing Timing
	// MaxReceives is the fire queue's receive limit (its maxReceiveCount),
	// for the message of a queue_exhausted drop.
	MaxReceives int
}

// Decide returns what to do next with a delivery in situation s at now.
func (r Rules) Decide(s Situation, now time.Time) Step {
	switch {
	case s.Message.FollowupID == "":
		return Step{Then: KeepDeadLetter, Why: s.Invalid}
	case s.StoreErr != nil:
		return Step{Then: Hide, Wait: StoreBackoff(s.Delivery.ReceiveCount, r.Retry.Float64), Why: "the store failed: " + s.StoreErr.Error()}
	}
	if s.Queue == DeadLetterQueue {
		return r.deadLetter(s, now)
	}
	return r.fire(s, now)
}

// fire decides for a fire-queue delivery.
func (r Rules) fire(s Situation, now time.Time) Step {
	f := s.Stored
	switch {
	case s.Message.ThreadID == "":
		// The followup was read, not claimed: the message cannot say
		// which thread it is for.
		switch {
		case s.NotFound:
			return Step{Then: KeepDeadLetter, Why: "message has no thread_id"}
		case f.Status == StatusScheduled:
			return settle(f, Drop(DropInvalidMessage, "invalid queue message: message has no thread_id", nil), now)
		}
		return Step{Then: Acknowledge, Why: "message has no thread_id; the followup is " + string(f.Status)}
	case s.NotFound:
		return Step{Then: RecordMissing, Reason: DropRecordMissing, Why: "the schedule fired but the followup record does not exist"}
	case s.Claimed && s.Attempt != nil:
		return r.afterAttempt(f, s.Attempt, now)
	case s.Claimed && s.Message.ThreadID != f.ThreadID:
		why := "queue message thread_id does not match the followup's thread"
		run := Run{Attempt: f.Attempts, StartedAt: now, FinishedAt: now, Outcome: OutcomeDrop, Error: why}
		return settle(f, Drop(DropInvalidMessage, why, &run), now)
	case s.Claimed:
		return Step{Then: Dispatch}
	}
	switch {
	case f.Status.Terminal():
		// A late or duplicate message: acknowledged, nothing dispatched.
		return Step{Then: Acknowledge, Why: "the followup is " + string(f.Status)}
	case f.Status == StatusDispatching:
		return r.leased(f, now)
	case f.Attempts >= r.Retry.MaxAttempts:
		// The last attempt failed and its message did not reach the
		// dead-letter queue (or this is a duplicate of it).
		return Step{Then: MoveToDeadLetter, Why: "no attempt left"}
	case f.NextAttemptAt.After(now):
		// Early: a schedule that fired ahead of run_at, or a duplicate
		// during a retry wait. A new message comes back when it is due
		// (in hops of MaxQueueDelay), and spends no receive.
		return Step{Then: Requeue, Wait: min(f.NextAttemptAt.Sub(now), MaxQueueDelay), Why: "early"}
	}
	// Due, within budget and scheduled: the claim raced another write.
	return Step{Then: LookAgain, Why: "the followup changed during the claim"}
}

// afterAttempt records an attempt on the claimed followup f.
func (r Rules) afterAttempt(f *Followup, a *Attempted, now time.Time) Step {
	run := a.Run
	switch a.Attempt.Outcome {
	case OutcomeSuccess:
		return settle(f, Result{Status: StatusDelivered, Run: &run}, run.FinishedAt)
	case OutcomeDrop:
		return settle(f, Drop(a.Attempt.DropReason, a.Attempt.Error, &run), run.FinishedAt)
	}
	if run.Attempt >= r.Retry.MaxAttempts {
		// The last allowed attempt failed: the dead-letter consumer
		// settles retries_exhausted with this error.
		t := Release(f, run, run.FinishedAt)
		return Step{Write: &t, Then: MoveToDeadLetter, Why: "attempt failed; no retry left: to the dead-letter queue"}
	}
	wait := r.Retry.Wait(run.Attempt, a.Attempt.RetryAfter)
	t := Release(f, run, run.FinishedAt.Add(wait))
	return Step{Write: &t, Then: Hide, Wait: wait, Why: "attempt failed; will retry"}
}

// leased decides for a dispatching followup nobody here holds.
func (r Rules) leased(f *Followup, now time.Time) Step {
	if LeaseExpired(f, now) {
		t := Interrupt(f, now)
		return Step{Write: &t, Then: LookAgain, Why: "attempt interrupted: its lease expired"}
	}
	// Another worker holds a live claim; look again when it ends.
	return Step{Then: Hide, Wait: max(f.LeaseUntil.Sub(now), time.Second), Why: "another worker holds the followup"}
}

// deadLetter decides for a dead-letter delivery.
func (r Rules) deadLetter(s Situation, now time.Time) Step {
	code, fromScheduler := s.Delivery.Attributes[SchedulerErrorCode]
	schedulerErr := fmt.Sprintf("EventBridge Scheduler could not deliver: %s: %s", code, s.Delivery.Attributes[SchedulerErrorMessage])
	f := s.Stored
	switch {
	case s.NotFound && s.Message.ThreadID == "":
		return Step{Then: KeepDeadLetter, Why: "dead letter names a followup that does not exist, and no thread"}
	case s.NotFound && fromScheduler:
		return Step{Then: RecordMissing, Reason: DropScheduleDeliveryFailed, Why: schedulerErr}
	case s.NotFound:
		return Step{Then: RecordMissing, Reason: DropRecordMissing, Why: "a dead-lettered message names a followup whose record does not exist"}
	case f.Status.Terminal():
		return Step{Then: Acknowledge, Why: "the followup is " + string(f.Status)}
	case f.Status == StatusDispatching:
		return r.leased(f, now)
	case fromScheduler && f.Attempts > 0:
		// The followup reached the fire path another way (the sweep);
		// its own message decides.
		return Step{Then: Acknowledge, Why: "the schedule failed, but the followup is already in the fire path"}
	case fromScheduler:
		return settle(f, Drop(DropScheduleDeliveryFailed, schedulerErr, nil), now)
	case f.Attempts >= r.Retry.MaxAttempts:
		return settle(f, Drop(DropRetriesExhausted, lastError(f), nil), now)
	}
	// The queue gave up on the message before the attempts were made.
	returns := Returns(s.Delivery.Attributes)
	if returns < MaxReturns {
		return Step{Then: SendBack, Wait: min(max(f.NextAttemptAt.Sub(now), 0), MaxQueueDelay),
			Why: fmt.Sprintf("the fire queue gave up on the message with %d of %d attempts made; sent back (%d of %d)",
				f.Attempts, r.Retry.MaxAttempts, returns+1, MaxReturns)}
	}
	why := fmt.Sprintf("the fire queue gave up on this followup's message %d times, after about %d receives (%d each), with %d of %d attempts made",
		returns+1, (returns+1)*r.MaxReceives, r.MaxReceives, f.Attempts, r.Retry.MaxAttempts)
	if f.LastError != "" {
		why += "; last error: " + f.LastError
	}
	return settle(f, Drop(DropQueueExhausted, why, nil), now)
}

// settle is the step that records a terminal result and acknowledges.
func settle(f *Followup, res Result, now time.Time) Step {
	t := Settle(f, res, now)
	return Step{Write: &t, Then: Acknowledge}
}

// Returns reads ReturnsAttribute: 0 when absent or not a count.
func Returns(attrs map[string]string) int {
	n, err := strconv.Atoi(attrs[ReturnsAttribute])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// lastError is the last concrete error of a followup whose attempts ran
// out.
func lastError(f *Followup) string {
	if f.LastError != "" {
		return f.LastError
	}
	return fmt.Sprintf("%d attempts made; none recorded an error", f.Attempts)
}
