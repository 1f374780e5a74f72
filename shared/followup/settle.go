package followup

import "time"

// Result is a terminal outcome for Settle to record.
type Result struct {
	// Status is StatusDelivered, StatusFailedDropped or StatusCancelled.
	Status Status
	// DropReason is set with StatusFailedDropped.
	DropReason DropReason
	// Error is the concrete error kept in last_error; for a drop that
	// follows an attempt it is that attempt's error.
	Error string
	// Run is the attempt that ended the followup, when one did.
	Run *Run
}

// Settle decides every terminal transition, on every path: delivery, a drop
// in the fire path, a drop from the dead-letter queue, and cancellation.
//
// f is the followup as the caller last saw it, or nil when the caller has
// not read it (a cancel by id). The transition it returns only applies to
// the state the result is about:
//
//   - an attempt's result (Run set) applies to the claimed, dispatching
//     followup at the version the claim returned, so a worker whose lease
//     was taken over cannot settle over the new holder;
//   - a drop without an attempt (retries_exhausted, schedule_delivery_failed,
//     invalid_message) applies to a scheduled followup at the version read;
//   - a cancel applies to any scheduled followup, so cancel and claim race
//     on the status alone and exactly one wins.
//
// Terminal followups satisfy none of these, so they never change again.
func Settle(f *Followup, r Result, now time.Time) Transition {
	t := Transition{
		Name:       "settle " + string(r.Status),
		To:         r.Status,
		LeaseUntil: Clear[time.Time](),
		SweepAt:    Clear[time.Time](),
		At:         now,
	}
	if r.Status == StatusFailedDropped {
		t.Name = "settle " + string(r.DropReason)
		reason := r.DropReason
		t.DropReason = &reason
	}
	if r.Error != "" {
		msg := r.Error
		t.LastError = &msg
	}
	switch {
	case r.Run != nil:
		run := *r.Run
		t.AppendRun = &run
		t.From = []Status{StatusDispatching}
	default:
		t.From = []Status{StatusScheduled}
	}
	if f != nil && r.Status != StatusCancelled {
		t.Version = f.Version
	}
	return t
}

// Cancel is the transition of DELETE /followups/{id} and of replace per run.
func Cancel(now time.Time) Transition {
	return Settle(nil, Result{Status: StatusCancelled}, now)
}

// Drop is a shorthand for a failed_dropped Result.
func Drop(reason DropReason, err string, run *Run) Result {
	return Result{Status: StatusFailedDropped, DropReason: reason, Error: err, Run: run}
}
