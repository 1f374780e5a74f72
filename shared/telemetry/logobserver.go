package telemetry

import (
	"context"
	"log/slog"
	"time"

	"github.com/followups/followups/shared/followup"
)

// LogObserver writes one log line per followup event: schedules,
// successful attempts, deliveries and cancellations at INFO; retryable
// attempts and every drop (the failed attempt and the settle) at WARN, as
// DESIGN §5 asks.
type LogObserver struct {
	log *slog.Logger
}

var _ followup.Observer = (*LogObserver)(nil)

// NewLogObserver returns an Observer that logs to l.
func NewLogObserver(l *slog.Logger) *LogObserver {
	return &LogObserver{log: l}
}

// Scheduled logs a created followup.
func (o *LogObserver) Scheduled(f *followup.Followup) {
	attrs := FollowupAttrs(f)
	if f != nil {
		attrs = append(attrs, slog.Time(KeyRunAt, f.RunAt))
	}
	o.log.LogAttrs(context.Background(), slog.LevelInfo, "followup scheduled", attrs...)
}

// Attempted logs one dispatch attempt; f is the claimed record, whose
// Attempts already counts this attempt.
func (o *LogObserver) Attempted(f *followup.Followup, a followup.Attempt, latency time.Duration) {
	var attrs []slog.Attr
	if f != nil {
		attrs = append(attrs,
			slog.String(KeyFollowupID, f.ID),
			slog.String(KeyThreadID, f.ThreadID),
			slog.Int(KeyAttempt, f.Attempts))
	}
	attrs = append(attrs, AttemptAttrs(a)...)
	attrs = append(attrs, slog.Float64(KeyLatencyMS, millis(latency)))
	level := slog.LevelInfo
	if a.Outcome != followup.OutcomeSuccess {
		level = slog.LevelWarn
	}
	o.log.LogAttrs(context.Background(), level, "dispatch attempt", attrs...)
}

// Settled logs a followup reaching a terminal status; other statuses are
// ignored.
func (o *LogObserver) Settled(f *followup.Followup, lateness time.Duration) {
	if f == nil {
		return
	}
	attrs := FollowupAttrs(f)
	switch f.Status {
	case followup.StatusDelivered:
		attrs = append(attrs, slog.Float64(KeyLatenessMS, millis(lateness)))
		o.log.LogAttrs(context.Background(), slog.LevelInfo, "followup delivered", attrs...)
	case followup.StatusFailedDropped:
		if f.LastError != "" {
			attrs = append(attrs, slog.String(KeyError, f.LastError))
		}
		o.log.LogAttrs(context.Background(), slog.LevelWarn, "followup dropped", attrs...)
	case followup.StatusCancelled:
		o.log.LogAttrs(context.Background(), slog.LevelInfo, "followup cancelled", attrs...)
	}
}
