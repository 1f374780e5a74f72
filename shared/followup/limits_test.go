package followup_test

import (
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
)

func TestLimitsString(t *testing.T) {
	for _, tc := range []struct {
		l    followup.Limits
		want string
	}{
		{followup.DefaultLimits, "60 to 86400 seconds (1 minute to 24 hours)"},
		{followup.Limits{MinDelay: time.Second, MaxDelay: 72 * time.Hour}, "1 to 259200 seconds (1 second to 3 days)"},
		{followup.Limits{MinDelay: 90 * time.Second, MaxDelay: followup.MaxDelayLimit}, "90 to 31536000 seconds (90 seconds to 365 days)"},
		{followup.Limits{MinDelay: 1500 * time.Millisecond, MaxDelay: 25 * time.Hour}, "1 to 90000 seconds (1.5s to 25 hours)"},
	} {
		if got := tc.l.String(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.l, got, tc.want)
		}
	}
}

func TestServiceLimits(t *testing.T) {
	want := followup.Limits{MinDelay: 2 * time.Minute, MaxDelay: 3 * time.Hour}
	svc, err := followup.New(followup.Config{Store: inmem.NewStore(), Limits: want})
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.Limits(); got != want {
		t.Errorf("Limits() = %v, want %v", got, want)
	}
	if lo, hi := svc.Limits().DelaySeconds(); lo != 120 || hi != 10800 {
		t.Errorf("DelaySeconds() = %d, %d", lo, hi)
	}
}
