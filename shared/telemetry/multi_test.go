package telemetry_test

import (
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/telemetry"
)

// counter counts the events it hears.
type counter struct{ scheduled, attempted, settled int }

func (c *counter) Scheduled(*followup.Followup)                                  { c.scheduled++ }
func (c *counter) Attempted(*followup.Followup, followup.Attempt, time.Duration) { c.attempted++ }
func (c *counter) Settled(*followup.Followup, time.Duration)                     { c.settled++ }

func TestMulti(t *testing.T) {
	a, b, c := &counter{}, &counter{}, &counter{}
	o := telemetry.Multi(a, nil, telemetry.Multi(b, c))
	o.Scheduled(sample(followup.StatusScheduled))
	o.Attempted(sample(followup.StatusDispatching), attempt(followup.OutcomeSuccess), time.Millisecond)
	o.Settled(sample(followup.StatusDelivered), time.Second)
	for i, got := range []*counter{a, b, c} {
		if *got != (counter{1, 1, 1}) {
			t.Errorf("observer %d heard %+v, want one of each", i, *got)
		}
	}
}

func TestMultiOfNothing(t *testing.T) {
	o := telemetry.Multi()
	o.Scheduled(sample(followup.StatusScheduled)) // must not panic
	if only := (&counter{}); telemetry.Multi(nil, only) != only {
		t.Error("Multi of one observer does not return it")
	}
}
