package telemetry_test

import (
	"time"

	"github.com/followups/followups/shared/followup/followuptest"
)

// fixedClock always tells the same time.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var (
	now      = followuptest.Now
	secret   = followuptest.Secret
	sample   = followuptest.Sample
	dropped  = followuptest.Dropped
	attempt  = followuptest.AttemptOf
	outcomes = followuptest.Outcomes
)
