package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
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
