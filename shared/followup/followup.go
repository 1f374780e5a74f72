package followup

import (
	"encoding/json"
	"log/slog"
	"slices"
	"time"

	"github.com/followups/followups/internal/jsonw"
)

// Status is where a followup is in its life.
type Status string

// The statuses. Delivered, FailedDropped and Cancelled are terminal.
const (
	StatusScheduled     Status = "scheduled"
	StatusDispatching   Status = "dispatching"
	StatusDelivered     Status = "delivered"
	StatusFailedDropped Status = "failed_dropped"
	StatusCancelled     Status = "cancelled"
)

// Statuses lists every status, in life order.
var Statuses = []Status{StatusScheduled, StatusDispatching, StatusDelivered, StatusFailedDropped, StatusCancelled}

// Terminal reports whether s never changes again.
func (s Status) Terminal() bool {
	return s == StatusDelivered || s == StatusFailedDropped || s == StatusCancelled
}

// Valid reports whether s is one of the five statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// LogValue logs the status as the string it is (slog would otherwise
// encode the named type with encoding/json's reflection).
func (s Status) LogValue() slog.Value { return slog.StringValue(string(s)) }

// DropReason says why a followup settled failed_dropped.
type DropReason string

// The drop reasons (the README's "Drop reasons").
const (
	DropThreadNotFound         DropReason = "thread_not_found"
	DropThreadInactive         DropReason = "thread_inactive"
	DropRejected               DropReason = "rejected"
	DropInvalidMessage         DropReason = "invalid_message"
	DropDispatcherUnconfigured DropReason = "dispatcher_unconfigured"
	DropRecordMissing          DropReason = "record_missing"
	DropRetriesExhausted       DropReason = "retries_exhausted"
	DropQueueExhausted         DropReason = "queue_exhausted"
	DropScheduleDeliveryFailed DropReason = "schedule_delivery_failed"
)

// DropReasons lists every drop reason.
var DropReasons = []DropReason{
	DropThreadNotFound, DropThreadInactive, DropRejected, DropInvalidMessage,
	DropDispatcherUnconfigured, DropRecordMissing, DropRetriesExhausted, DropQueueExhausted, DropScheduleDeliveryFailed,
}

// Fault reports whether a drop of this reason points at a fault of the
// system (its configuration, its queues, a bug) rather than at a thread
// that was deleted or closed, which a busy deployment sees every day.
func (r DropReason) Fault() bool { return r != DropThreadNotFound && r != DropThreadInactive }

// LogValue logs the reason as the string it is.
func (r DropReason) LogValue() slog.Value { return slog.StringValue(string(r)) }

// Outcome is how one dispatch attempt ended.
type Outcome string

// LogValue logs the outcome as the string it is.
func (o Outcome) LogValue() slog.Value { return slog.StringValue(string(o)) }

// The attempt outcomes.
const (
	OutcomeSuccess        Outcome = "success"
	OutcomeRetryableError Outcome = "retryable_error"
	OutcomeDrop           Outcome = "drop"
)

// Run records one dispatch attempt.
type Run struct {
	Attempt    int       `json:"attempt"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	DurationMS int64     `json:"duration_ms"`
	Outcome    Outcome   `json:"outcome"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// Followup is one scheduled synthetic user turn: the record clients see.
type Followup struct {
	ID                    string          `json:"id"`
	ThreadID              string          `json:"thread_id"`
	Prompt                string          `json:"prompt"`
	Reason                string          `json:"reason,omitempty"`
	OriginatingRunID      string          `json:"originating_run_id,omitempty"`
	Metadata              json.RawMessage `json:"metadata,omitempty"`
	RunAt                 time.Time       `json:"run_at"`
	DelaySecondsRequested *int64          `json:"delay_seconds_requested,omitempty"`
	Status                Status          `json:"status"`
	Attempts              int             `json:"attempts"`
	LastError             string          `json:"last_error,omitempty"`
	DropReason            DropReason      `json:"drop_reason,omitempty"`
	Runs                  []Run           `json:"runs"`
	ReplacedPrevious      *Followup       `json:"replaced_previous,omitempty"`
	RearmedFrom           string          `json:"rearmed_from,omitempty"`
	CreatedAt             time.Time       `json:"created_at"`
	UpdatedAt             time.Time       `json:"updated_at"`
	SettledAt             *time.Time      `json:"settled_at,omitempty"`

	// Bookkeeping the API does not show.

	// Version counts writes; conditional writes compare it.
	Version int64 `json:"-"`
	// NextAttemptAt is when the followup may next be claimed: run_at at
	// first, then the end of each retry wait.
	NextAttemptAt time.Time `json:"-"`
	// LeaseUntil is when a dispatching claim expires: a worker that crashed
	// mid-attempt holds the followup no longer than this.
	LeaseUntil time.Time `json:"-"`
	// SweepAt is when the sweep takes a pending followup's message for
	// lost and sends it again (Sweep): SweepGrace after its next attempt
	// or lease end, or RedriveEvery after the sweep last sent it. Zero
	// once terminal. Stores index it; every transition sets it.
	SweepAt time.Time `json:"-"`
}

// Clone returns a deep copy of f, so callers may change it freely.
func (f *Followup) Clone() *Followup {
	if f == nil {
		return nil
	}
	c := *f
	c.Runs = append([]Run(nil), f.Runs...)
	if f.Metadata != nil {
		c.Metadata = append(json.RawMessage(nil), f.Metadata...)
	}
	if f.DelaySecondsRequested != nil {
		d := *f.DelaySecondsRequested
		c.DelaySecondsRequested = &d
	}
	if f.SettledAt != nil {
		t := *f.SettledAt
		c.SettledAt = &t
	}
	c.ReplacedPrevious = f.ReplacedPrevious.Clone()
	return &c
}

// MarshalJSON writes the client view: times in UTC and runs never null.
func (f *Followup) MarshalJSON() ([]byte, error) { return f.AppendJSON(nil), nil }

// AppendJSON appends the client view, as MarshalJSON writes it, to dst.
// It writes what encoding/json would write for the fields and their tags,
// byte for byte, without reflection (a test holds it to that).
func (f *Followup) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = jsonw.String(dst, f.ID, true)
	dst = append(dst, `,"thread_id":`...)
	dst = jsonw.String(dst, f.ThreadID, true)
	dst = append(dst, `,"prompt":`...)
	dst = jsonw.String(dst, f.Prompt, true)
	if f.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = jsonw.String(dst, f.Reason, true)
	}
	if f.OriginatingRunID != "" {
		dst = append(dst, `,"originating_run_id":`...)
		dst = jsonw.String(dst, f.OriginatingRunID, true)
	}
	if len(f.Metadata) > 0 {
		dst = append(dst, `,"metadata":`...)
		dst = jsonw.Raw(dst, f.Metadata, true)
	}
	dst = append(dst, `,"run_at":`...)
	dst = jsonw.Time(dst, f.RunAt.UTC())
	if f.DelaySecondsRequested != nil {
		dst = append(dst, `,"delay_seconds_requested":`...)
		dst = jsonw.Int(dst, *f.DelaySecondsRequested)
	}
	dst = append(dst, `,"status":`...)
	dst = jsonw.String(dst, string(f.Status), true)
	dst = append(dst, `,"attempts":`...)
	dst = jsonw.Int(dst, int64(f.Attempts))
	if f.LastError != "" {
		dst = append(dst, `,"last_error":`...)
		dst = jsonw.String(dst, f.LastError, true)
	}
	if f.DropReason != "" {
		dst = append(dst, `,"drop_reason":`...)
		dst = jsonw.String(dst, string(f.DropReason), true)
	}
	dst = append(dst, `,"runs":[`...)
	for i := range f.Runs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = f.Runs[i].appendJSON(dst)
	}
	dst = append(dst, ']')
	if f.ReplacedPrevious != nil {
		dst = append(dst, `,"replaced_previous":`...)
		dst = f.ReplacedPrevious.AppendJSON(dst)
	}
	if f.RearmedFrom != "" {
		dst = append(dst, `,"rearmed_from":`...)
		dst = jsonw.String(dst, f.RearmedFrom, true)
	}
	dst = append(dst, `,"created_at":`...)
	dst = jsonw.Time(dst, f.CreatedAt.UTC())
	dst = append(dst, `,"updated_at":`...)
	dst = jsonw.Time(dst, f.UpdatedAt.UTC())
	if f.SettledAt != nil {
		dst = append(dst, `,"settled_at":`...)
		dst = jsonw.Time(dst, f.SettledAt.UTC())
	}
	return append(dst, '}')
}

func (r *Run) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"attempt":`...)
	dst = jsonw.Int(dst, int64(r.Attempt))
	dst = append(dst, `,"started_at":`...)
	dst = jsonw.Time(dst, r.StartedAt)
	dst = append(dst, `,"finished_at":`...)
	dst = jsonw.Time(dst, r.FinishedAt)
	dst = append(dst, `,"duration_ms":`...)
	dst = jsonw.Int(dst, r.DurationMS)
	dst = append(dst, `,"outcome":`...)
	dst = jsonw.String(dst, string(r.Outcome), true)
	if r.HTTPStatus != 0 {
		dst = append(dst, `,"http_status":`...)
		dst = jsonw.Int(dst, int64(r.HTTPStatus))
	}
	if r.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = jsonw.String(dst, r.Error, true)
	}
	return append(dst, '}')
}

// Message is what the fire queue carries: just enough to find the record.
// The prompt never travels through the queue.
type Message struct {
	FollowupID string `json:"followup_id"`
	ThreadID   string `json:"thread_id"`
}

// MessageFor returns the queue message for f.
func MessageFor(f *Followup) Message {
	return Message{FollowupID: f.ID, ThreadID: f.ThreadID}
}
