package followup

import (
	"context"
	"time"
)

// Store keeps followups durably. Every state change goes through Apply, a
// conditional write, so two workers (or a worker and a cancel) racing on one
// followup have exactly one winner. Any error not named below is the store
// failing (a dependency that is down); callers wait and try again.
type Store interface {
	// Create writes a new followup atomically with its idempotency key and
	// the replace-per-run rule (see Creation). Returns ErrExists when the
	// id is taken, and an *Error with CodeIdempotencyConflict when the key
	// was used with a different request. Nothing is written on error.
	Create(ctx context.Context, c Creation) (Created, error)

	// Replay returns the followup created earlier under key, or nil when the
	// key is unknown or expired. Returns an *Error with
	// CodeIdempotencyConflict when the key was used with another request.
	Replay(ctx context.Context, key, requestHash string, now time.Time) (*Followup, error)

	// Get returns the followup. Returns ErrNotFound when there is none.
	Get(ctx context.Context, id string) (*Followup, error)

	// List returns up to q.Limit followups of one thread ordered by run_at
	// then id, starting after q.After, and whether more follow. Returns an
	// *Error with CodeInvalidArgument for a limit below 1.
	List(ctx context.Context, q ListQuery) (page []*Followup, more bool, err error)

	// Apply checks t against the stored followup and, when t.Check passes,
	// writes t.Apply's result, all atomically, and returns the followup as
	// written. Returns ErrNotFound when there is none, and a
	// *ConflictError carrying the current record when t.Check fails.
	Apply(ctx context.Context, id string, t Transition) (*Followup, error)

	// Overdue returns up to limit pending followups whose SweepAt is at or
	// before now, earliest first: those whose message may be lost. The
	// store answers from an index; the sweep calls it once a run.
	Overdue(ctx context.Context, now time.Time, limit int) ([]OverdueFollowup, error)

	// KeepDeadLetter stores a message that could not be understood, so it is
	// not lost; an operator can read it later.
	KeepDeadLetter(ctx context.Context, d DeadLetterRecord) error
}

// OverdueFollowup is what Store.Overdue reports of one followup: enough to
// send its message again and note that it did.
type OverdueFollowup struct {
	ID       string
	ThreadID string
	Status   Status
	SweepAt  time.Time
}

// Creation is everything Store.Create writes in one atomic step.
type Creation struct {
	// Followup is the new record; its ID must not exist yet.
	Followup *Followup
	// IdempotencyKey, when set, is remembered with RequestHash until
	// KeyExpiresAt. A key still live at Followup.CreatedAt with the same hash
	// makes Create return the original (Created.Replayed); with another hash,
	// CodeIdempotencyConflict.
	IdempotencyKey string
	RequestHash    string
	KeyExpiresAt   time.Time
	// Replace, when the followup has an OriginatingRunID, is applied to the
	// thread's current pending followup of that run, if any (the service
	// passes Cancel), and the new followup takes the run's slot. With Replace
	// nil the slot still moves and nothing is changed.
	Replace *Transition
}

// Created is what Store.Create did.
type Created struct {
	Followup *Followup
	// Replaced is the followup of the same thread and originating run that
	// was pending (scheduled or dispatching) when this one was created, as it
	// stands now: cancelled, or still dispatching.
	Replaced *Followup
	// Replayed is true when the idempotency key matched an earlier create:
	// Followup is that original and nothing was written.
	Replayed bool
}

// ListQuery selects a page of one thread's followups.
type ListQuery struct {
	ThreadID string
	Status   Status    // empty for every status
	After    *Position // nil for the first page
	Limit    int
}

// Position is a place in a thread's listing order (run_at, then id).
type Position struct {
	RunAt time.Time
	ID    string
}

// PositionOf returns the listing position of f.
func PositionOf(f *Followup) Position { return Position{RunAt: f.RunAt, ID: f.ID} }

// Less orders positions as listings do.
func (p Position) Less(q Position) bool {
	if !p.RunAt.Equal(q.RunAt) {
		return p.RunAt.Before(q.RunAt)
	}
	return p.ID < q.ID
}

// DeadLetterRecord is a queue message nobody could understand, kept verbatim.
type DeadLetterRecord struct {
	ID         string
	Body       string
	Attributes map[string]string
	Error      string
	ReceivedAt time.Time
}

// Scheduler arranges for a followup's Message to reach the fire queue at
// its run_at, never after it and, when it cannot be exact, a little before
// (the fire path sends an early message back for the rest). Schedule is
// idempotent per followup id. Unschedule makes sure a schedule does not
// fire; one that cannot be removed (a message already on the queue) is
// acknowledged by the fire path without dispatching, so Unschedule of a
// followup with no schedule is not an error.
type Scheduler interface {
	// Schedule arranges f's message. Returns an error when the schedule
	// may not exist (the create then fails and the client retries with
	// its idempotency key); a schedule that exists already is success.
	Schedule(ctx context.Context, f *Followup) error
	// Unschedule removes the schedule of followup id. Returns nil when
	// there is none; an error only when one may still fire (the fire
	// path then finds the followup cancelled and acknowledges).
	Unschedule(ctx context.Context, id string) error
}

// MaxQueueDelay is the longest delay one message may be sent with (SQS's
// DelaySeconds limit, which followupd's queue keeps too): a message due
// later travels in hops.
const MaxQueueDelay = 15 * time.Minute

// Queues is what the queue consumers send: copies of fire-queue messages
// sent again (early, or back from the dead-letter queue) and messages
// moved to the dead-letter queue. A message is a body and its String
// attributes.
type Queues interface {
	// SendFire puts a new message on the fire queue, visible after delay
	// (at most MaxQueueDelay, rounded up to whole seconds). Returns an
	// error when the message may not have been sent; the consumer then
	// keeps the message it holds, so a failed send loses nothing.
	SendFire(ctx context.Context, body []byte, attrs map[string]string, delay time.Duration) error
	// SendDeadLetter puts a message on the dead-letter queue. Returns an
	// error as SendFire does.
	SendDeadLetter(ctx context.Context, body []byte, attrs map[string]string) error
}

// Delivery is one receive of a queue message, as a consumer sees it.
type Delivery struct {
	Body []byte
	// Attributes are the message's String attributes by name.
	Attributes map[string]string
	// ReceiveCount counts this message's receives, this one included,
	// from 1 (SQS's ApproximateReceiveCount).
	ReceiveCount int
}

// Dispatcher makes one attempt to inject f into its thread. It never
// returns an error: every way an attempt can end is an Attempt.
type Dispatcher interface {
	Dispatch(ctx context.Context, f *Followup, attempt int) Attempt
}

// Attempt is how one dispatch went.
type Attempt struct {
	Outcome Outcome
	// DropReason is set when Outcome is OutcomeDrop.
	DropReason DropReason
	// HTTPStatus is the thread API's answer, 0 when there was none.
	HTTPStatus int
	// Error names what went wrong; empty on success.
	Error string
	// RetryAfter is the thread API's Retry-After, 0 when absent.
	RetryAfter time.Duration
}

// Clock tells the time. Tests pass one they control.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// Observer hears about each thing that happens to a followup, for metrics.
// Its methods must be quick and safe for concurrent use.
type Observer interface {
	// Scheduled: a followup was created.
	Scheduled(f *Followup)
	// Attempted: one dispatch attempt finished, taking latency.
	Attempted(f *Followup, a Attempt, latency time.Duration)
	// Settled: f reached a terminal status. For a delivery, lateness is the
	// delivery time minus run_at.
	Settled(f *Followup, lateness time.Duration)
	// Redriven: the sweep sent the message of an overdue followup again.
	Redriven(f OverdueFollowup)
}

// NopObserver observes nothing.
type NopObserver struct{}

func (NopObserver) Scheduled(*Followup)                         {}
func (NopObserver) Attempted(*Followup, Attempt, time.Duration) {}
func (NopObserver) Settled(*Followup, time.Duration)            {}
func (NopObserver) Redriven(OverdueFollowup)                    {}

// Verdict is what the queue does with a message once its consumer is done.
type Verdict struct {
	// Retry keeps the message: it becomes visible again after After (its
	// visibility timeout), and its next receive counts toward the queue's
	// receive limit. Without Retry the message is deleted.
	Retry bool
	After time.Duration
}

// Ack deletes the message.
var Ack = Verdict{}

// RetryAfter keeps the message for another delivery after d.
func RetryAfter(d time.Duration) Verdict { return Verdict{Retry: true, After: d} }
