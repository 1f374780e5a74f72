package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Attribute keys shared by every log line, so that one Logs Insights query
// works across the functions and followupd.
const (
	KeyFollowupID   = "followup_id"
	KeyThreadID     = "thread_id"
	KeyStatus       = "status"
	KeyAttempt      = "attempt"  // the number of one dispatch attempt
	KeyAttempts     = "attempts" // attempts made so far
	KeyOutcome      = "outcome"
	KeyDropReason   = "drop_reason"
	KeyHTTPStatus   = "http_status"
	KeyError        = "error"
	KeyRunAt        = "run_at"
	KeyLatencyMS    = "latency_ms"
	KeyLatenessMS   = "lateness_ms"
	KeyRetryAfterMS = "retry_after_ms"
	KeyRequestID    = "request_id"
	KeyMessageID    = "message_id"
	KeyMethod       = "method"
	KeyPath         = "path"
	KeyDurationMS   = "duration_ms"
)

// timeFormat is RFC 3339 in UTC with fixed milliseconds, so lines sort as
// text and every time has the same width.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// NewLogger returns a logger writing one JSON object per line to w, for
// records at level and above. Every time, the record's own and any time
// attribute, is written in UTC RFC 3339.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: utcTimes,
	}))
}

// utcTimes rewrites time values as UTC RFC 3339 text; slog's default keeps
// the local offset, which differs between a laptop and Lambda.
func utcTimes(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindTime {
		a.Value = slog.StringValue(a.Value.Time().UTC().Format(timeFormat))
	}
	return a
}

// ParseLevel reads a LOG_LEVEL-style setting: debug, info, warn (or
// warning) or error, in any case, optionally with an offset as slog
// writes it ("info+2"). An empty or unknown value is an error, so a
// runner never silently replaces a bad setting by a default.
func ParseLevel(s string) (slog.Level, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v == "" {
		return 0, fmt.Errorf("parse log level: empty")
	}
	if v == "warning" {
		v = "warn"
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, fmt.Errorf("parse log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// FollowupAttrs returns the attributes that identify f in a log line: id,
// thread id, status, attempts and, when set, drop reason. It never
// includes the prompt, reason or metadata, which are the user's content.
func FollowupAttrs(f *followup.Followup) []slog.Attr {
	if f == nil {
		return nil
	}
	attrs := []slog.Attr{
		slog.String(KeyFollowupID, f.ID),
		slog.String(KeyThreadID, f.ThreadID),
		slog.String(KeyStatus, string(f.Status)),
		slog.Int(KeyAttempts, f.Attempts),
	}
	if f.DropReason != "" {
		attrs = append(attrs, slog.String(KeyDropReason, string(f.DropReason)))
	}
	return attrs
}

// AttemptAttrs returns the attributes of one dispatch attempt: outcome and,
// when set, drop reason, HTTP status, error and Retry-After.
func AttemptAttrs(a followup.Attempt) []slog.Attr {
	attrs := []slog.Attr{slog.String(KeyOutcome, string(a.Outcome))}
	if a.DropReason != "" {
		attrs = append(attrs, slog.String(KeyDropReason, string(a.DropReason)))
	}
	if a.HTTPStatus != 0 {
		attrs = append(attrs, slog.Int(KeyHTTPStatus, a.HTTPStatus))
	}
	if a.Error != "" {
		attrs = append(attrs, slog.String(KeyError, a.Error))
	}
	if a.RetryAfter > 0 {
		attrs = append(attrs, slog.Float64(KeyRetryAfterMS, millis(a.RetryAfter)))
	}
	return attrs
}

// millis is d in milliseconds, keeping sub-millisecond precision.
func millis(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}
