package followup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// MinIdempotencyMemory is how long an Idempotency-Key is remembered at
// least, whatever the retention of settled records.
const MinIdempotencyMemory = 24 * time.Hour

// DefaultRetention is FOLLOWUPS_RETENTION's default.
const DefaultRetention = 168 * time.Hour

// The fire queue's receive limit (its maxReceiveCount, and followupd's
// queue's). It is a safety net for receives that make no attempt, well
// above the retry budget: at least MinMaxReceives, as AWS advises for a
// queue Lambda polls (throttling alone spends receives), and at least one
// more than the attempts.
const (
	DefaultMaxReceives = 20
	MinMaxReceives     = 5
)

// Config is what a Service is built from. Zero fields take their defaults,
// one by one.
type Config struct {
	// Store is required.
	Store Store
	// Scheduler makes schedules; nil suits a consumer that never creates
	// (Create then fails as unavailable).
	Scheduler Scheduler
	// Queues carries the messages the consumers send; nil suits a runner
	// that only serves the API (Fire and DeadLetter then cannot move
	// messages and keep them for later).
	Queues Queues
	// Dispatcher makes attempts; nil means no thread API is configured,
	// and every attempt drops with dispatcher_unconfigured.
	Dispatcher Dispatcher
	Clock      Clock
	Observer   Observer
	Log        *slog.Logger
	Limits     Limits
	Retry      RetryPolicy
	Timing     Timing
	// MaxReceives is the fire queue's receive limit.
	MaxReceives int
	// Retention is how long settled records are kept; idempotency keys live
	// at least MinIdempotencyMemory.
	Retention time.Duration
	// NewID makes followup ids; nil uses NewID.
	NewID func() string
}

// Service is the one implementation of Followups' behaviour: the API
// operations (Create, Rearm, Get, List, Cancel, CancelThread), the queue
// consumers (Fire, DeadLetter) and the Sweep. Runners on AWS and on one
// machine build it from different adapters and call the same methods.
type Service struct {
	store      Store
	scheduler  Scheduler
	queues     Queues
	dispatcher Dispatcher
	clock      Clock
	obs        Observer
	log        *slog.Logger
	limits     Limits
	retry      RetryPolicy
	timing     Timing
	rules      Rules
	retention  time.Duration
	newID      func() string
}

// New returns a Service, or an error saying which part of c is unusable.
func New(c Config) (*Service, error) {
	if c.Store == nil {
		return nil, errors.New("followup service: no store")
	}
	if c.Timing == (Timing{}) {
		c.Timing = NewTiming(0)
	}
	s := &Service{
		store:      c.Store,
		scheduler:  cmp.Or[Scheduler](c.Scheduler, noScheduler{}),
		queues:     cmp.Or[Queues](c.Queues, noQueues{}),
		dispatcher: cmp.Or[Dispatcher](c.Dispatcher, unconfigured{}),
		clock:      cmp.Or[Clock](c.Clock, SystemClock{}),
		obs:        cmp.Or[Observer](c.Observer, NopObserver{}),
		log:        c.Log,
		limits: Limits{
			MinDelay: cmp.Or(c.Limits.MinDelay, DefaultLimits.MinDelay),
			MaxDelay: cmp.Or(c.Limits.MaxDelay, DefaultLimits.MaxDelay),
		},
		retry:     c.Retry.withDefaults(),
		timing:    c.Timing,
		retention: cmp.Or(c.Retention, DefaultRetention),
		newID:     c.NewID,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.newID == nil {
		s.newID = NewID
	}
	maxReceives := cmp.Or(c.MaxReceives, DefaultMaxReceives)
	s.rules = Rules{Retry: s.retry, Timing: s.timing, MaxReceives: maxReceives}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("followup service: %w", err)
	}
	return s, nil
}

func (s *Service) validate() error {
	l := s.limits
	switch {
	case l.MinDelay <= 0 || l.MinDelay > l.MaxDelay || l.MaxDelay > MaxDelayLimit:
		return fmt.Errorf("delay limits %s..%s: want 0 < min <= max <= %s", l.MinDelay, l.MaxDelay, MaxDelayLimit)
	case s.retention < 0:
		return fmt.Errorf("retention %s is negative", s.retention)
	}
	if err := s.retry.validate(); err != nil {
		return err
	}
	if err := s.timing.Validate(); err != nil {
		return err
	}
	return CheckMaxReceives(s.rules.MaxReceives, s.retry.MaxAttempts)
}

// CheckMaxReceives checks a fire queue's receive limit against the
// attempts it must leave room for.
func CheckMaxReceives(maxReceives, maxAttempts int) error {
	if least := max(MinMaxReceives, maxAttempts+1); maxReceives < least {
		return fmt.Errorf("the fire queue's receive limit %d is below %d: at least %d, and one more than the %d attempts",
			maxReceives, least, MinMaxReceives, maxAttempts)
	}
	return nil
}

// unconfigured stands in for the thread API when none is configured: every
// attempt is one drop, so the followup settles visibly instead of retrying
// against nothing.
type unconfigured struct{}

func (unconfigured) Dispatch(context.Context, *Followup, int) Attempt {
	return Attempt{Outcome: OutcomeDrop, DropReason: DropDispatcherUnconfigured, Error: "no thread API URL is configured (THREAD_API_URL)"}
}

// noScheduler stands in where no scheduler is wired.
type noScheduler struct{}

func (noScheduler) Schedule(context.Context, *Followup) error {
	return errors.New("no scheduler is configured")
}
func (noScheduler) Unschedule(context.Context, string) error { return nil }

// noQueues stands in where no queue is wired.
type noQueues struct{}

func (noQueues) SendFire(context.Context, []byte, map[string]string, time.Duration) error {
	return errors.New("no fire queue is configured")
}
func (noQueues) SendDeadLetter(context.Context, []byte, map[string]string) error {
	return errors.New("no dead-letter queue is configured")
}

// Create schedules the followup req describes. With an idempotency key it
// first returns the original of an earlier create with the same key and
// body (Created.Replayed). A 2xx means the followup will fire; an error
// means it never will.
func (s *Service) Create(ctx context.Context, req *CreateRequest, idempotencyKey string) (Created, error) {
	var hash string
	if idempotencyKey != "" {
		hash = req.Hash()
	}
	return s.create(ctx, req, idempotencyKey, hash, "")
}

// Rearm schedules a new followup from a failed_dropped one, with a fresh
// attempt budget and RearmedFrom set; the dropped one is unchanged. req
// gives the time (nil, or no time, means after the minimum delay).
// Replace per run and idempotency apply as in Create. It returns an
// *Error with CodeNotFound for an unknown id and CodeConflict for a
// followup in another status.
func (s *Service) Rearm(ctx context.Context, id string, req *RearmRequest, idempotencyKey string) (Created, error) {
	if req == nil {
		req = &RearmRequest{}
	}
	var hash string
	if idempotencyKey != "" {
		hash = req.Hash(id)
		orig, err := s.store.Replay(ctx, idempotencyKey, hash, s.clock.Now())
		if err != nil {
			return Created{}, s.storeError(ctx, "replay idempotency key", err)
		}
		if orig != nil {
			return Created{Followup: orig, Replayed: true}, nil
		}
	}
	dropped, err := s.store.Get(ctx, id)
	if err != nil {
		return Created{}, s.storeError(ctx, "get followup to rearm", err)
	}
	if dropped.Status != StatusFailedDropped {
		return Created{}, Errorf(CodeConflict, "followup %s is %s; only a failed_dropped followup can be re-armed", id, dropped.Status)
	}
	return s.create(ctx, req.create(dropped, s.limits), idempotencyKey, hash, id)
}

func (s *Service) create(ctx context.Context, req *CreateRequest, idempotencyKey, hash, rearmedFrom string) (Created, error) {
	now := s.clock.Now()
	if idempotencyKey != "" && rearmedFrom == "" {
		orig, err := s.store.Replay(ctx, idempotencyKey, hash, now)
		if err != nil {
			return Created{}, s.storeError(ctx, "replay idempotency key", err)
		}
		if orig != nil {
			return Created{Followup: orig, Replayed: true}, nil
		}
	}
	runAt, err := req.When(now, s.limits)
	if err != nil {
		return Created{}, err
	}
	f := &Followup{
		ID:                    s.newID(),
		ThreadID:              req.ThreadID,
		Prompt:                req.Prompt,
		Reason:                req.Reason,
		OriginatingRunID:      req.OriginatingRunID,
		Metadata:              req.Metadata,
		RunAt:                 runAt,
		DelaySecondsRequested: req.DelaySeconds,
		Status:                StatusScheduled,
		Runs:                  []Run{},
		RearmedFrom:           rearmedFrom,
		CreatedAt:             now,
		UpdatedAt:             now,
		Version:               1,
		NextAttemptAt:         runAt,
		SweepAt:               *sweepAfter(runAt),
	}
	// The schedule is made before the record. A crash between the two
	// leaves a schedule without a record, which fires into record_missing
	// and is never dispatched; the other order could leave a record that
	// nothing ever fires, which would never settle.
	if err := s.scheduler.Schedule(ctx, f); err != nil {
		s.log.ErrorContext(ctx, "schedule followup failed", "followup_id", f.ID, "thread_id", f.ThreadID, "error", err)
		return Created{}, Errorf(CodeUnavailable, "the scheduler is unavailable; try again")
	}
	cancel := Cancel(now)
	created, err := s.store.Create(ctx, Creation{
		Followup:       f,
		IdempotencyKey: idempotencyKey,
		RequestHash:    hash,
		KeyExpiresAt:   now.Add(max(s.retention, MinIdempotencyMemory)),
		Replace:        &cancel,
	})
	if err != nil {
		s.abandon(ctx, f)
		if ErrorCode(err) == CodeIdempotencyConflict {
			return Created{}, err
		}
		return Created{}, s.storeError(ctx, "create followup", err)
	}
	if created.Replayed {
		// A concurrent create with the same key won the race.
		s.unschedule(ctx, f.ID)
		return created, nil
	}
	s.obs.Scheduled(created.Followup)
	if s.log.Enabled(ctx, slog.LevelInfo) {
		attrs := []slog.Attr{slog.String("followup_id", f.ID), slog.String("thread_id", f.ThreadID), slog.Time("run_at", f.RunAt),
			slog.String("originating_run_id", f.OriginatingRunID)}
		if rearmedFrom != "" {
			attrs = append(attrs, slog.String("rearmed_from", rearmedFrom))
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "followup scheduled", attrs...)
	}
	if r := created.Replaced; r != nil {
		if r.Status == StatusCancelled {
			s.unschedule(ctx, r.ID)
			s.settled(ctx, r, "followup replaced by a newer one of the same run", slog.String("replaced_by", f.ID))
		}
		created.Followup.ReplacedPrevious = r
	}
	return created, nil
}

// abandon makes a failed create definite. If the record was written after
// all (the store answered an error after committing), it is cancelled, so
// the client's error stays true; the schedule is then removed. When even
// that cannot be told, the schedule stays: it fires into record_missing if
// there is no record, which settles visibly.
func (s *Service) abandon(ctx context.Context, f *Followup) {
	ctx = context.WithoutCancel(ctx)
	_, err := s.store.Apply(ctx, f.ID, Cancel(s.clock.Now()))
	switch {
	case err == nil:
		s.log.WarnContext(ctx, "create failed after its record was written; cancelled it", "followup_id", f.ID, "thread_id", f.ThreadID)
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict):
	default:
		s.log.ErrorContext(ctx, "create failed and its record could not be checked; leaving the schedule to settle it",
			"followup_id", f.ID, "thread_id", f.ThreadID, "error", err)
		return
	}
	s.unschedule(ctx, f.ID)
}

func (s *Service) unschedule(ctx context.Context, id string) {
	if err := s.scheduler.Unschedule(context.WithoutCancel(ctx), id); err != nil {
		// Harmless: a schedule that fires for a settled followup is acknowledged.
		s.log.WarnContext(ctx, "unschedule failed; the schedule will fire and be ignored", "followup_id", id, "error", err)
	}
}

// Get returns one followup.
func (s *Service) Get(ctx context.Context, id string) (*Followup, error) {
	f, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, s.storeError(ctx, "get followup", err)
	}
	return f, nil
}

// List returns a page of a thread's followups and whether more follow.
func (s *Service) List(ctx context.Context, q ListQuery) ([]*Followup, bool, error) {
	page, more, err := s.store.List(ctx, q)
	if err != nil {
		return nil, false, s.storeError(ctx, "list followups", err)
	}
	return page, more, nil
}

// Cancel cancels a scheduled followup. Once it returns nil the followup is
// never dispatched: the claim of a fire needs status scheduled, so exactly
// one of cancel and fire wins.
func (s *Service) Cancel(ctx context.Context, id string) (*Followup, error) {
	f, err := s.store.Apply(ctx, id, Cancel(s.clock.Now()))
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		return nil, Errorf(CodeConflict, "followup %s is %s; only a scheduled followup can be cancelled", id, conflict.Current.Status)
	case err != nil:
		return nil, s.storeError(ctx, "cancel followup", err)
	}
	s.unschedule(ctx, id)
	s.settled(ctx, f, "followup cancelled")
	return f, nil
}

// CancelThread cancels every scheduled followup of a thread and returns
// them. Followups already dispatching are left alone and not returned.
func (s *Service) CancelThread(ctx context.Context, threadID string) ([]*Followup, error) {
	var cancelled []*Followup
	q := ListQuery{ThreadID: threadID, Status: StatusScheduled, Limit: 100}
	for {
		page, more, err := s.store.List(ctx, q)
		if err != nil {
			return cancelled, s.storeError(ctx, "list followups to cancel", err)
		}
		for _, f := range page {
			c, err := s.Cancel(ctx, f.ID)
			switch {
			case err == nil:
				cancelled = append(cancelled, c)
			case ErrorCode(err) == CodeConflict, ErrorCode(err) == CodeNotFound:
				// It started dispatching (or went) since the listing.
			default:
				return cancelled, err
			}
		}
		if !more || len(page) == 0 {
			return cancelled, nil
		}
		pos := PositionOf(page[len(page)-1])
		q.After = &pos
	}
}

// settled reports a terminal transition to the log and the observer.
func (s *Service) settled(ctx context.Context, f *Followup, msg string, extra ...slog.Attr) {
	var lateness time.Duration
	if f.SettledAt != nil {
		lateness = f.SettledAt.Sub(f.RunAt)
	}
	s.obs.Settled(f, lateness)
	level := slog.LevelInfo
	if f.Status == StatusFailedDropped {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := append(make([]slog.Attr, 0, 8+len(extra)), slog.String("followup_id", f.ID), slog.String("thread_id", f.ThreadID),
		slog.String("status", string(f.Status)), slog.Int("attempts", f.Attempts))
	attrs = append(attrs, extra...)
	if f.Status == StatusFailedDropped {
		errText := f.LastError
		if n := len(f.Runs); n > 0 && f.Runs[n-1].HTTPStatus != 0 {
			errText = loggable(f.Runs[n-1])
		}
		attrs = append(attrs, slog.String("drop_reason", string(f.DropReason)))
		if errText != "" {
			attrs = append(attrs, slog.String("error", errText))
		}
	}
	s.log.LogAttrs(ctx, level, msg, attrs...)
}

// storeError passes client errors through and turns anything else into an
// unavailable error whose cause is logged, not shown: a store that fails is
// a dependency that is down, and the client may retry.
func (s *Service) storeError(ctx context.Context, op string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	s.log.ErrorContext(ctx, op+" failed", "error", err)
	return Errorf(CodeUnavailable, "the followup store is unavailable; try again")
}
