package embedded_test

import (
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/shared/embedded"
)

// clockStart is where every manualClock starts.
var clockStart = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// manualClock is an embedded.Clock that moves only when a test advances it.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	alarms map[*manualAlarm]struct{}
	armed  chan struct{} // closed, and replaced, whenever an alarm is armed
}

type manualAlarm struct {
	at   time.Time
	ring chan time.Time
}

var _ embedded.Clock = (*manualClock)(nil)

func newManualClock() *manualClock {
	return &manualClock{now: clockStart, alarms: map[*manualAlarm]struct{}{}, armed: make(chan struct{})}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Alarm(at time.Time) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := &manualAlarm{at: at, ring: make(chan time.Time, 1)}
	if !at.After(c.now) {
		a.ring <- c.now
		return a.ring, func() bool { return false }
	}
	c.alarms[a] = struct{}{}
	close(c.armed)
	c.armed = make(chan struct{})
	return a.ring, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, armed := c.alarms[a]
		delete(c.alarms, a)
		return armed
	}
}

// Advance moves the clock on by d and rings every alarm that has come.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for a := range c.alarms {
		if !a.at.After(c.now) {
			a.ring <- c.now
			delete(c.alarms, a)
		}
	}
}

// waitForAlarm blocks until something waits for the clock to reach at. The
// queue and the timer arm an alarm for the earliest thing they wait for, so
// once this returns, advancing to just before at is sure to wake nothing.
func (c *manualClock) waitForAlarm(t testing.TB, at time.Time) {
	t.Helper()
	giveUp := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		for a := range c.alarms {
			if a.at.Equal(at) {
				c.mu.Unlock()
				return
			}
		}
		armed := c.armed
		c.mu.Unlock()
		select {
		case <-armed:
		case <-giveUp:
			t.Fatalf("nothing waits for %s (clock at %s)", at.Format(time.RFC3339Nano), c.Now().Format(time.RFC3339Nano))
		}
	}
}
