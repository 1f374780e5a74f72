package followup

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"time"
)

// MaxRetryAfter caps a thread API's Retry-After: twelve hours is the most an
// SQS message's visibility can be extended, and longer is not a retry.
const MaxRetryAfter = 12 * time.Hour

// The defaults of RetryPolicy (FOLLOWUPS_MAX_RETRIES, FOLLOWUPS_RETRY_BASE,
// FOLLOWUPS_RETRY_MAX).
const (
	DefaultMaxAttempts = 4 // the first attempt and 3 retries
	DefaultRetryBase   = 2 * time.Second
	DefaultRetryMax    = 5 * time.Minute
)

// RetryPolicy says how often and how long to wait between attempts.
type RetryPolicy struct {
	// MaxAttempts is the first attempt plus every retry: 1 + max_retries.
	MaxAttempts int
	// Base is the wait before the first retry; each later wait doubles.
	Base time.Duration
	// Max caps the doubling (not a Retry-After).
	Max time.Duration
	// Float64 returns a number in [0, 1); nil uses math/rand/v2.
	Float64 func() float64
}

// DefaultRetryPolicy is the default: 4 attempts, 2 s doubling to 5 min.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: DefaultMaxAttempts, Base: DefaultRetryBase, Max: DefaultRetryMax}

// withDefaults fills the zero fields, one by one.
func (p RetryPolicy) withDefaults() RetryPolicy {
	p.MaxAttempts = cmp.Or(p.MaxAttempts, DefaultMaxAttempts)
	p.Base = cmp.Or(p.Base, DefaultRetryBase)
	p.Max = cmp.Or(p.Max, DefaultRetryMax)
	if p.Float64 == nil {
		p.Float64 = rand.Float64
	}
	return p
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1:
		return fmt.Errorf("retry policy: %d attempts; at least 1", p.MaxAttempts)
	case p.Base < 0 || p.Max < 0:
		return fmt.Errorf("retry policy: negative wait (base %s, max %s)", p.Base, p.Max)
	}
	return nil
}

// MaxRetries is the number of retries after the first attempt.
func (p RetryPolicy) MaxRetries() int { return p.MaxAttempts - 1 }

// Wait returns the wait before retry n (n from 1): d = min(Max, Base×2^(n−1)),
// drawn uniformly from [d/2, d] and never zero, then raised to retryAfter
// (capped at MaxRetryAfter) when that is longer. Jitter spreads the retries
// of many followups that failed together.
func (p RetryPolicy) Wait(n int, retryAfter time.Duration) time.Duration {
	return max(jittered(p.Base, p.Max, n, p.Float64), min(retryAfter, MaxRetryAfter))
}

// jittered is min(limit, base×2^(n−1)) drawn uniformly from [d/2, d], at
// least a millisecond.
func jittered(base, limit time.Duration, n int, rand01 func() float64) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	if rand01 == nil {
		rand01 = rand.Float64
	}
	w := d/2 + time.Duration(rand01()*float64(d-d/2))
	return max(w, time.Millisecond)
}

// A receive that makes no attempt because the store failed under it waits
// before the message comes back, longer each time it happens to one
// message (counted by the message's receives), up to StoreRetryMax, which
// stays under SweepGrace: a store that is down for half an hour costs each
// waiting message about twenty receives (the fire queue's default limit)
// and no attempt; a longer outage sends the messages through the
// dead-letter queue and back (MaxReturns).
const (
	StoreRetryBase = time.Second
	StoreRetryMax  = 2 * time.Minute
)

// StoreBackoff is the wait after the receiveCount-th receive of a message
// found the store failing.
func StoreBackoff(receiveCount int, rand01 func() float64) time.Duration {
	return jittered(StoreRetryBase, StoreRetryMax, max(receiveCount, 1), rand01)
}
