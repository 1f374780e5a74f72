package inmem

import (
	"context"
	"sync"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Scheduler records schedules; tests fire them by hand.
type Scheduler struct {
	mu        sync.Mutex
	schedules map[string]Schedule
	// Fail, when set, makes Schedule return it.
	Fail error
}

// Schedule is one pending schedule.
type Schedule struct {
	Message followup.Message
	At      time.Time
}

// NewScheduler returns an empty Scheduler.
func NewScheduler() *Scheduler { return &Scheduler{schedules: map[string]Schedule{}} }

// Schedule implements followup.Scheduler.
func (s *Scheduler) Schedule(_ context.Context, f *followup.Followup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return s.Fail
	}
	s.schedules[f.ID] = Schedule{Message: followup.MessageFor(f), At: f.NextAttemptAt}
	return nil
}

// Unschedule implements followup.Scheduler.
func (s *Scheduler) Unschedule(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.schedules, id)
	return nil
}

// Pending returns the schedule of id, if any.
func (s *Scheduler) Pending(id string) (Schedule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.schedules[id]
	return sc, ok
}

var _ followup.Scheduler = (*Scheduler)(nil)
