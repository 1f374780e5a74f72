package followup

import (
	"fmt"
	"slices"
	"time"
)

// Transition is one conditional change to a stored followup. The domain
// decides transitions (Claim, Release, Interrupt, Settle); stores only check
// and write them, atomically, so each store is a thin translation: an
// in-process store calls Check and Apply inside one transaction, DynamoDB
// turns the fields into a condition and an update expression.
type Transition struct {
	// Name says what the transition is, for errors and logs.
	Name string

	// Conditions, all of which must hold.

	// From lists the statuses the followup may be in.
	From []Status
	// Version, when non-zero, must equal the stored version: the writer
	// acts on what it read and nothing happened since.
	Version int64
	// DueBy, when set, requires NextAttemptAt <= DueBy.
	DueBy time.Time
	// AttemptsBelow, when non-zero, requires Attempts < AttemptsBelow: the
	// retry budget is kept by the record, not by a queue's receive count.
	AttemptsBelow int

	// Changes.

	// To is the new status.
	To Status
	// CountAttempt adds one to Attempts.
	CountAttempt bool
	// AppendRun, when set, is added to Runs.
	AppendRun *Run
	// LeaseUntil replaces the lease; zero clears it.
	LeaseUntil time.Time
	// NextAttemptAt, when set, replaces NextAttemptAt.
	NextAttemptAt time.Time
	// LastError, when set, replaces LastError.
	LastError *string
	// DropReason is set with To == StatusFailedDropped.
	DropReason DropReason
	// At is the time of the change: UpdatedAt, and SettledAt when To is
	// terminal.
	At time.Time
}

// Check reports whether t may apply to f, as a *ConflictError when not.
func (t *Transition) Check(f *Followup) error {
	switch {
	case !slices.Contains(t.From, f.Status):
		return &ConflictError{Current: f.Clone(), Reason: fmt.Sprintf("%s needs status %v", t.Name, t.From)}
	case t.Version != 0 && f.Version != t.Version:
		return &ConflictError{Current: f.Clone(), Reason: fmt.Sprintf("%s expected version %d, found %d", t.Name, t.Version, f.Version)}
	case !t.DueBy.IsZero() && f.NextAttemptAt.After(t.DueBy):
		return &ConflictError{Current: f.Clone(), Reason: fmt.Sprintf("%s: not due until %s", t.Name, f.NextAttemptAt.UTC().Format(time.RFC3339Nano))}
	case t.AttemptsBelow != 0 && f.Attempts >= t.AttemptsBelow:
		return &ConflictError{Current: f.Clone(), Reason: fmt.Sprintf("%s: %d attempts made, budget %d", t.Name, f.Attempts, t.AttemptsBelow)}
	}
	return nil
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
	f.LeaseUntil = t.LeaseUntil
	if !t.NextAttemptAt.IsZero() {
		f.NextAttemptAt = t.NextAttemptAt
	}
	if t.LastError != nil {
		f.LastError = *t.LastError
	}
	if t.To == StatusFailedDropped {
		f.DropReason = t.DropReason
	}
	f.UpdatedAt = t.At
	if t.To.Terminal() {
		at := t.At
		f.SettledAt = &at
	}
	f.Version++
}

// Claim moves a due scheduled followup to dispatching for one attempt,
// counting the attempt up front (an attempt lost to a crash still counts)
// and leasing it until now+lease. A worker that dies mid-attempt holds the
// followup no longer than its lease; after that the next delivery of its
// message finds the lease expired and Interrupt records the lost attempt.
func Claim(now time.Time, lease time.Duration, maxAttempts int) Transition {
	return Transition{
		Name:          "claim",
		From:          []Status{StatusScheduled},
		DueBy:         now,
		AttemptsBelow: maxAttempts,
		To:            StatusDispatching,
		CountAttempt:  true,
		LeaseUntil:    now.Add(lease),
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
		NextAttemptAt: next,
		LastError:     &run.Error,
		At:            run.FinishedAt,
	}
}

// ErrAttemptInterrupted is the error recorded for an attempt whose worker
// vanished (crash, kill, timeout) before it reported.
const ErrAttemptInterrupted = "attempt interrupted"

// Interrupt records the attempt of a dispatching followup whose lease
// expired as a retryable_error "attempt interrupted" and puts it back to
// scheduled, due now.
func Interrupt(f *Followup, now time.Time) Transition {
	msg := ErrAttemptInterrupted
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
		NextAttemptAt: now,
		LastError:     &msg,
		At:            now,
	}
}

// LeaseExpired reports whether f is dispatching under a lease that ended.
func LeaseExpired(f *Followup, now time.Time) bool {
	return f.Status == StatusDispatching && !f.LeaseUntil.After(now)
}
