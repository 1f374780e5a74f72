package followup

import (
	"fmt"
	"slices"
	"time"
)

// Transition is one conditional change to a stored followup. The domain
// decides transitions (Claim, Release, Interrupt, Settle, Redrive); stores
// only check and write them, atomically, so each store is a thin
// translation: an in-process store calls Check and Apply inside one
// transaction, DynamoDB turns the fields into a condition and an update
// expression.
//
// Conditions are met when their field is zero. Changes follow one
// convention: a nil pointer keeps the field, a pointer sets it, and the
// zero value it points to (Clear) clears it: no lease, no error.
type Transition struct {
	// Name says what the transition is, for errors and logs.
	Name string

	// Conditions, all of which must hold.

	// From lists the statuses the followup may be in; empty refuses all.
	From []Status
	// Version, when non-zero, must equal the stored version: the writer
	// acts on what it read and nothing happened since.
	Version int64
	// DueBy, when set, requires NextAttemptAt <= DueBy.
	DueBy time.Time
	// AttemptsBelow, when non-zero, requires Attempts < AttemptsBelow: the
	// retry budget is kept by the record, not by a queue's receive count.
	AttemptsBelow int
	// SweepBy, when set, requires a SweepAt that is set and <= SweepBy.
	SweepBy time.Time

	// Changes.

	// To is the new status.
	To Status
	// CountAttempt adds one to Attempts.
	CountAttempt bool
	// AppendRun, when set, is added to Runs.
	AppendRun *Run
	// LeaseUntil, NextAttemptAt, SweepAt, LastError and DropReason set
	// their fields.
	LeaseUntil    *time.Time
	NextAttemptAt *time.Time
	SweepAt       *time.Time
	LastError     *string
	DropReason    *DropReason
	// At is the time of the change: UpdatedAt, and SettledAt when To is
	// terminal.
	At time.Time
	// Bookkeeping marks a change only the system sees (the sweep's note
	// that it sent a message again): Version and UpdatedAt stay, so it
	// never conflicts with the writes of an attempt.
	Bookkeeping bool
}

// Clear returns a pointer to T's zero value: set through a Transition, it
// clears the field.
func Clear[T any]() *T { return new(T) }

// Check reports whether t may apply to f, as a *ConflictError when not.
func (t *Transition) Check(f *Followup) error {
	var why string
	switch {
	case !slices.Contains(t.From, f.Status):
		why = fmt.Sprintf("%s needs status %v", t.Name, t.From)
	case t.Version != 0 && f.Version != t.Version:
		why = fmt.Sprintf("%s expected version %d, found %d", t.Name, t.Version, f.Version)
	case !t.DueBy.IsZero() && f.NextAttemptAt.After(t.DueBy):
		why = fmt.Sprintf("%s: not due until %s", t.Name, f.NextAttemptAt.UTC().Format(time.RFC3339Nano))
	case t.AttemptsBelow != 0 && f.Attempts >= t.AttemptsBelow:
		why = fmt.Sprintf("%s: %d attempts made, budget %d", t.Name, f.Attempts, t.AttemptsBelow)
	case !t.SweepBy.IsZero() && (f.SweepAt.IsZero() || f.SweepAt.After(t.SweepBy)):
		why = fmt.Sprintf("%s: not overdue", t.Name)
	default:
		return nil
	}
	return &ConflictError{Current: f.Clone(), Reason: why}
}

// Apply changes f as t says. Call Check first.
func (t *Transition) Apply(f *Followup) {
	f.Status = t.To
	if t.CountAttempt {
		f.Attempts++
	}
	if t.AppendRun != nil {
		f.Runs = append(f.Runs, *t.AppendRun)
	}
	set(&f.LeaseUntil, t.LeaseUntil)
	set(&f.NextAttemptAt, t.NextAttemptAt)
	set(&f.SweepAt, t.SweepAt)
	set(&f.LastError, t.LastError)
	set(&f.DropReason, t.DropReason)
	if t.To.Terminal() {
		at := t.At
		f.SettledAt = &at
	}
	if !t.Bookkeeping {
		f.UpdatedAt = t.At
		f.Version++
	}
}

func set[T any](field *T, change *T) {
	if change != nil {
		*field = *change
	}
}

// SweepGrace is how far past its next attempt (or its lease end) a pending
// followup must be before the sweep takes its message for lost.
const SweepGrace = 5 * time.Minute

// RedriveEvery is how often at most the sweep sends one followup's message
// again, so that a backlog is not multiplied.
const RedriveEvery = time.Hour

// sweepAfter is the SweepAt of a followup next due at due.
func sweepAfter(due time.Time) *time.Time {
	at := due.Add(SweepGrace)
	return &at
}

// Claim moves a due scheduled followup to dispatching for one attempt,
// counting the attempt up front (an attempt lost to a crash still counts)
// and leasing it until now+lease. A worker that dies mid-attempt holds the
// followup no longer than its lease; after that the next delivery of its
// message finds the lease expired and Interrupt records the lost attempt.
func Claim(now time.Time, lease time.Duration, maxAttempts int) Transition {
	until := now.Add(lease)
	return Transition{
		Name:          "claim",
		From:          []Status{StatusScheduled},
		DueBy:         now,
		AttemptsBelow: maxAttempts,
		To:            StatusDispatching,
		CountAttempt:  true,
		LeaseUntil:    &until,
		SweepAt:       sweepAfter(until),
		At:            now,
	}
}

// Release ends a claimed attempt that failed with a retryable error: the
// followup goes back to scheduled until next.
func Release(claimed *Followup, run Run, next time.Time) Transition {
	return Transition{
		Name:          "release",
		From:          []Status{StatusDispatching},
		Version:       claimed.Version,
		To:            StatusScheduled,
		AppendRun:     &run,
		LeaseUntil:    Clear[time.Time](),
		NextAttemptAt: &next,
		SweepAt:       sweepAfter(next),
		LastError:     &run.Error,
		At:            run.FinishedAt,
	}
}

// AttemptInterrupted is the error recorded for an attempt whose worker
// vanished (crash, kill, timeout) before it reported.
const AttemptInterrupted = "attempt interrupted"

// Interrupt records the attempt of a dispatching followup whose lease
// expired as a retryable_error "attempt interrupted" and puts it back to
// scheduled, due now.
func Interrupt(f *Followup, now time.Time) Transition {
	msg := AttemptInterrupted
	started := f.UpdatedAt // the claim was the last write
	run := Run{
		Attempt:    f.Attempts,
		StartedAt:  started,
		FinishedAt: now,
		DurationMS: now.Sub(started).Milliseconds(),
		Outcome:    OutcomeRetryableError,
		Error:      msg,
	}
	return Transition{
		Name:          "interrupt",
		From:          []Status{StatusDispatching},
		Version:       f.Version,
		To:            StatusScheduled,
		AppendRun:     &run,
		LeaseUntil:    Clear[time.Time](),
		NextAttemptAt: &now,
		SweepAt:       sweepAfter(now),
		LastError:     &msg,
		At:            now,
	}
}

// Redrive notes that the sweep sent the message of an overdue followup
// again, so it sends it at most once every RedriveEvery. It applies only
// while the followup is still overdue in status, so an attempt that made
// progress meanwhile wins.
func Redrive(status Status, now time.Time) Transition {
	next := now.Add(RedriveEvery)
	return Transition{
		Name:        "redrive",
		From:        []Status{status},
		SweepBy:     now,
		To:          status,
		SweepAt:     &next,
		At:          now,
		Bookkeeping: true,
	}
}

// LeaseExpired reports whether f is dispatching under a lease that ended.
func LeaseExpired(f *Followup, now time.Time) bool {
	return f.Status == StatusDispatching && !f.LeaseUntil.After(now)
}
