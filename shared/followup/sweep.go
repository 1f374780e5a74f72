package followup

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
)

// SweepLimit is the most overdue followups one sweep run sends again; the
// next run takes the rest.
const SweepLimit = 1000

// sweepSenders is how many messages one run sends at once.
const sweepSenders = 8

// Sweep finds every pending followup whose message may be lost (scheduled
// more than SweepGrace past its next attempt, or dispatching more than
// SweepGrace past its lease: Store.Overdue, one query) and sends its fire
// message again, at most once every RedriveEvery per followup. A duplicate
// is harmless: the claim decides. Each one is logged at WARN and counted
// (Observer.Redriven). It returns how many it sent; an error means the
// store could not be asked.
//
// Why: a schedule deleted by hand, a purged queue or a bug would otherwise
// leave a followup scheduled for ever, silently. With the sweep a lost
// message delays a followup by minutes and never loses it.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.clock.Now()
	lost, err := s.store.Overdue(ctx, now, SweepLimit)
	if err != nil {
		return 0, s.storeError(ctx, "find overdue followups", err)
	}
	var (
		sent atomic.Int64
		wg   sync.WaitGroup
		work = make(chan OverdueFollowup)
	)
	for range min(sweepSenders, len(lost)) {
		wg.Go(func() {
			for o := range work {
				if s.redrive(ctx, o) {
					sent.Add(1)
				}
			}
		})
	}
	for _, o := range lost {
		if ctx.Err() != nil {
			break
		}
		work <- o
	}
	close(work)
	wg.Wait()
	return int(sent.Load()), nil
}

// redrive sends o's message and then notes it, so the next run skips o
// for a while. Sending first means a failed note costs a duplicate next
// run, never a followup.
func (s *Service) redrive(ctx context.Context, o OverdueFollowup) bool {
	body, _ := json.Marshal(Message{FollowupID: o.ID, ThreadID: o.ThreadID}) // a Message always encodes
	if err := s.queues.SendFire(ctx, body, nil, 0); err != nil {
		s.log.ErrorContext(ctx, "sweep could not send an overdue followup's message; the next run tries again",
			"followup_id", o.ID, "thread_id", o.ThreadID, "error", err)
		return false
	}
	if _, err := s.store.Apply(ctx, o.ID, Redrive(o.Status, s.clock.Now())); err != nil && !IsConflict(err) {
		s.log.ErrorContext(ctx, "sweep could not note a redrive; it may send the message again", "followup_id", o.ID, "error", err)
	}
	s.obs.Redriven(o)
	s.log.WarnContext(ctx, "followup redriven: its message seems lost, so the sweep sent it again", "followup_id", o.ID,
		"thread_id", o.ThreadID, "status", o.Status, "sweep_at", o.SweepAt)
	return true
}
