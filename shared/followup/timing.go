package followup

import (
	"fmt"
	"time"
)

// The margins Timing adds to an attempt. They are named here, once, so that
// every runner derives the same limits from the same dispatch timeout.
const (
	// RecordTime is what one attempt needs beyond its request: the claim
	// before it and the write of its result after, with the store's own
	// retries. A consumer with less time left does not start an attempt.
	RecordTime = 5 * time.Second
	// LeaseMargin is added to an attempt and its writes to make the lease:
	// room for a slow store, a garbage collection, clocks a little apart.
	LeaseMargin = 25 * time.Second
	// VisibilityMargin is added to the lease to make a queue's visibility
	// timeout: the queue must not hand a message to a second worker while
	// the first may still record its attempt.
	VisibilityMargin = 30 * time.Second
	// DefaultDispatchTimeout is FOLLOWUPS_DISPATCH_TIMEOUT's default.
	DefaultDispatchTimeout = 10 * time.Second
)

// Timing is every time limit of the fire path, derived from the dispatch
// timeout by NewTiming and checked against the others by Validate: a lease
// shorter than an attempt would let a second worker take a followup over
// while the first is still talking to the thread, and a visibility shorter
// than the lease would let the queue deliver the message again before the
// lease could be taken over, which only wastes a receive.
type Timing struct {
	// Dispatch bounds one attempt's request to the thread API.
	Dispatch time.Duration
	// Lease is how long a claim holds a followup. A worker that crashed
	// mid-attempt holds it no longer; the next delivery records the lost
	// attempt as interrupted and claims again.
	Lease time.Duration
	// Visibility is how long a queue hides a message while its handler
	// runs (followupd's queue; the fire queue on AWS has its own, longer
	// one, for whole invocations).
	Visibility time.Duration
}

// NewTiming derives the limits from the dispatch timeout (zero means
// DefaultDispatchTimeout).
func NewTiming(dispatch time.Duration) Timing {
	if dispatch == 0 {
		dispatch = DefaultDispatchTimeout
	}
	lease := dispatch + RecordTime + LeaseMargin
	return Timing{Dispatch: dispatch, Lease: lease, Visibility: lease + VisibilityMargin}
}

// AttemptTime is the time one attempt needs, its writes included: a
// consumer whose invocation ends sooner gives the message back unclaimed.
func (t Timing) AttemptTime() time.Duration { return t.Dispatch + RecordTime }

// Validate checks the limits against each other.
func (t Timing) Validate() error {
	switch {
	case t.Dispatch <= 0:
		return fmt.Errorf("dispatch timeout %s: must be positive", t.Dispatch)
	case t.Lease < t.AttemptTime():
		return fmt.Errorf("lease %s is shorter than one attempt (dispatch timeout %s and %s to record it)", t.Lease, t.Dispatch, RecordTime)
	case t.Visibility <= t.Lease:
		return fmt.Errorf("queue visibility %s is not longer than the lease %s", t.Visibility, t.Lease)
	}
	return nil
}
