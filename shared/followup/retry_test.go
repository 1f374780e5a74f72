package followup_test

import (
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

func TestRetryWait(t *testing.T) {
	p := followup.RetryPolicy{MaxAttempts: 4, Base: 2 * time.Second, Max: 5 * time.Minute}
	tests := []struct {
		name       string
		n          int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{"first", 1, 0, time.Second, 2 * time.Second},
		{"second", 2, 0, 2 * time.Second, 4 * time.Second},
		{"third", 3, 0, 4 * time.Second, 8 * time.Second},
		{"capped", 20, 0, 150 * time.Second, 5 * time.Minute},
		{"huge n does not overflow", 500, 0, 150 * time.Second, 5 * time.Minute},
		{"retry-after raises", 1, 10 * time.Second, 10 * time.Second, 10 * time.Second},
		{"retry-after above max", 1, time.Hour, time.Hour, time.Hour},
		{"retry-after capped at 12h", 1, 48 * time.Hour, 12 * time.Hour, 12 * time.Hour},
		{"short retry-after does not shorten", 3, time.Second, 4 * time.Second, 8 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []float64{0, 0.5, 0.999999} {
				p.Float64 = func() float64 { return r }
				if w := p.Wait(tt.n, tt.retryAfter); w < tt.lo || w > tt.hi {
					t.Fatalf("rand %v: Wait = %v, want in [%v, %v]", r, w, tt.lo, tt.hi)
				}
			}
		})
	}
	tiny := followup.RetryPolicy{Base: time.Nanosecond, Max: time.Nanosecond, Float64: func() float64 { return 0 }}
	if w := tiny.Wait(1, 0); w <= 0 {
		t.Fatalf("wait %v is zero", w)
	}
}
