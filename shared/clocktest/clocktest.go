// Package clocktest holds a clock for tests: it tells a time and rings
// alarms only when the test moves it.
package clocktest

import (
	"sync"
	"testing"
	"time"
)

// Clock is a memqueue.Clock that moves only when a test advances it, so
// tests never sleep to wait for a timer they could advance.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	alarms map[*alarm]struct{}
	armed  chan struct{} // closed, and replaced, whenever an alarm is armed
}

type alarm struct {
	at   time.Time
	ring chan time.Time
}

// New returns a Clock at start.
func New(start time.Time) *Clock {
	return &Clock{now: start, alarms: map[*alarm]struct{}{}, armed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Alarm returns a channel that rings once the clock reaches at.
func (c *Clock) Alarm(at time.Time) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := &alarm{at: at, ring: make(chan time.Time, 1)}
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
func (c *Clock) Advance(d time.Duration) {
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

// WaitForAlarm blocks until something waits for the clock to reach at. The
// queue and the timer arm an alarm for the earliest thing they wait for, so
// once this returns, advancing to just before at is sure to wake nothing.
func (c *Clock) WaitForAlarm(t testing.TB, at time.Time) {
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
