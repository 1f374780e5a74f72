package followup

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// MinIdempotencyMemory is how long an Idempotency-Key is remembered at
// least, whatever the retention of settled records.
const MinIdempotencyMemory = 24 * time.Hour

// Config is what a Service is built from. Zero fields take the defaults of
// DESIGN §6.
type Config struct {
	Store      Store
	Scheduler  Scheduler
	Dispatcher Dispatcher
	Clock      Clock
	Observer   Observer
	Log        *slog.Logger
	Limits     Limits
	Retry      RetryPolicy
	// Lease bounds how long one attempt may hold a followup; it must exceed
	// the dispatch timeout plus the time to record the result.
	Lease time.Duration
	// Retention is how long settled records are kept; idempotency keys live
	// at least MinIdempotencyMemory.
	Retention time.Duration
	// NewID makes followup ids; nil uses NewID.
	NewID func() string
}

// DefaultLease fits DESIGN's default 10 s dispatch timeout with room to
// record the result.
const DefaultLease = 40 * time.Second

// DefaultRetention is DESIGN §6's FOLLOWUPS_RETENTION default.
const DefaultRetention = 168 * time.Hour

// Service is the one implementation of Followups' behaviour: the API
// operations (Create, Get, List, Cancel, CancelThread) and the queue
// consumers (Fire, DeadLetter). Runners on AWS and on one machine build it
// from different adapters and call the same methods.
type Service struct {
	store      Store
	scheduler  Scheduler
	dispatcher Dispatcher
	clock      Clock
	obs        Observer
	log        *slog.Logger
	limits     Limits
	retry      RetryPolicy
	lease      time.Duration
	retention  time.Duration
	newID      func() string
}

// New returns a Service. Store is required. A nil Scheduler suits a
// consumer that never creates (the fire and dlq functions): Create then
// fails as unavailable. A nil Dispatcher means no thread API is configured,
// and every attempt drops with dispatcher_unconfigured.
func New(c Config) *Service {
	s := &Service{
		store: c.Store, scheduler: c.Scheduler, dispatcher: c.Dispatcher, clock: c.Clock,
		obs: c.Observer, log: c.Log, limits: c.Limits, retry: c.Retry, lease: c.Lease,
		retention: c.Retention, newID: c.NewID,
	}
	if s.dispatcher == nil {
		s.dispatcher = unconfigured{}
	}
	if s.scheduler == nil {
		s.scheduler = noScheduler{}
	}
	if s.clock == nil {
		s.clock = SystemClock{}
	}
	if s.obs == nil {
		s.obs = NopObserver{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.limits == (Limits{}) {
		s.limits = DefaultLimits
	}
	if s.retry.Base == 0 {
		s.retry = DefaultRetryPolicy
	}
	if s.lease == 0 {
		s.lease = DefaultLease
	}
	if s.retention == 0 {
		s.retention = DefaultRetention
	}
	if s.newID == nil {
		s.newID = NewID
	}
	return s
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

// Create schedules the followup req describes. With an idempotency key it
// first returns the original of an earlier create with the same key and
// body (Created.Replayed). A 2xx means the followup will fire; an error
// means it never will.
func (s *Service) Create(ctx context.Context, req *CreateRequest, idempotencyKey string) (Created, error) {
	now := s.clock.Now()
	var hash string
	if idempotencyKey != "" {
		hash = req.Hash()
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
		CreatedAt:             now,
		UpdatedAt:             now,
		Version:               1,
		NextAttemptAt:         runAt,
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
	s.log.InfoContext(ctx, "followup scheduled", "followup_id", f.ID, "thread_id", f.ThreadID,
		"run_at", f.RunAt, "originating_run_id", f.OriginatingRunID)
	if r := created.Replaced; r != nil {
		if r.Status == StatusCancelled {
			s.unschedule(ctx, r.ID)
			s.settled(ctx, r, "followup replaced by a newer one of the same run", "replaced_by", f.ID)
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
func (s *Service) settled(ctx context.Context, f *Followup, msg string, attrs ...any) {
	var lateness time.Duration
	if f.SettledAt != nil {
		lateness = f.SettledAt.Sub(f.RunAt)
	}
	s.obs.Settled(f, lateness)
	attrs = append([]any{"followup_id", f.ID, "thread_id", f.ThreadID, "status", f.Status, "attempts", f.Attempts}, attrs...)
	if f.Status == StatusFailedDropped {
		errText := f.LastError
		if n := len(f.Runs); n > 0 && f.Runs[n-1].HTTPStatus != 0 {
			errText = loggable(f.Runs[n-1])
		}
		attrs = append(attrs, "drop_reason", f.DropReason)
		if errText != "" {
			attrs = append(attrs, "error", errText)
		}
		s.log.WarnContext(ctx, msg, attrs...)
		return
	}
	s.log.InfoContext(ctx, msg, attrs...)
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
