package followup

import (
	"fmt"
	"time"
)

// DefaultListLimit and MaxListLimit bound a page of a thread's followups.
const (
	DefaultListLimit = 50
	MaxListLimit     = 100
)

// Limits returns the delay bounds the service enforces, so that what
// describes the API to clients (the OpenAPI document, the MCP tools) states
// the bounds in force.
func (s *Service) Limits() Limits { return s.limits }

// DelaySeconds returns the bounds of delay_seconds, as CreateRequest.When
// checks them: whole seconds of MinDelay and MaxDelay.
func (l Limits) DelaySeconds() (lo, hi int64) {
	return int64(l.MinDelay / time.Second), int64(l.MaxDelay / time.Second)
}

// NotFound is the error for a followup id that names no followup, as the
// API words it.
func NotFound(id string) *Error {
	return Errorf(CodeNotFound, "followup %q not found", id)
}

// String states the bounds for people and agents: "60 to 86400 seconds
// (1 minute to 24 hours)".
func (l Limits) String() string {
	lo, hi := l.DelaySeconds()
	return fmt.Sprintf("%d to %d seconds (%s to %s)", lo, hi, spoken(l.MinDelay), spoken(l.MaxDelay))
}

// spoken writes d in the largest unit that divides it exactly, days from
// two of them on ("24 hours", "3 days").
func spoken(d time.Duration) string {
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		if d >= u.size && d%u.size == 0 && (u.name != "day" || d >= 48*time.Hour) {
			n := int64(d / u.size)
			if n == 1 {
				return "1 " + u.name
			}
			return fmt.Sprintf("%d %ss", n, u.name)
		}
	}
	return d.String()
}
