package followup

import (
	"math/rand/v2"
	"time"
)

// MaxRetryAfter caps a thread API's Retry-After: twelve hours is the most an
// SQS message's visibility can be extended, and longer is not a retry.
const MaxRetryAfter = 12 * time.Hour

// RetryPolicy says how often and how long to wait between attempts.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt.
	MaxRetries int
	// Base is the wait before the first retry; each later wait doubles.
	Base time.Duration
	// Max caps the doubling (not a Retry-After).
	Max time.Duration
	// Float64 returns a number in [0, 1); nil uses math/rand/v2.
	Float64 func() float64
}

// DefaultRetryPolicy is DESIGN §6's default: 3 retries, 2 s doubling to 5 min.
var DefaultRetryPolicy = RetryPolicy{MaxRetries: 3, Base: 2 * time.Second, Max: 5 * time.Minute}

// MaxAttempts is the first attempt plus every retry.
func (p RetryPolicy) MaxAttempts() int { return p.MaxRetries + 1 }

// Wait returns the wait before retry n (n from 1): d = min(Max, Base×2^(n−1)),
// drawn uniformly from [d/2, d] and never zero, then raised to retryAfter
// (capped at MaxRetryAfter) when that is longer. Jitter spreads the retries
// of many followups that failed together.
func (p RetryPolicy) Wait(n int, retryAfter time.Duration) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	r := p.Float64
	if r == nil {
		r = rand.Float64
	}
	w := d/2 + time.Duration(r()*float64(d-d/2))
	w = max(w, time.Millisecond)
	return max(w, min(retryAfter, MaxRetryAfter))
}
