package telemetry_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/telemetry"
)

// jsonLines parses every line of buf as a JSON object.
func jsonLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func TestNewLoggerWritesJSONLinesInUTC(t *testing.T) {
	var buf bytes.Buffer
	l := telemetry.NewLogger(&buf, slog.LevelInfo)
	paris := time.FixedZone("CEST", 2*60*60)
	l.Debug("hidden")
	l.Info("dispatch attempt",
		telemetry.KeyFollowupID, "fu_01",
		telemetry.KeyThreadID, "th_01",
		telemetry.KeyAttempt, 2,
		telemetry.KeyOutcome, "success",
		telemetry.KeyRunAt, time.Date(2030, 5, 6, 9, 0, 0, 0, paris))
	l.Warn("followup dropped", telemetry.KeyDropReason, "thread_not_found")

	lines := jsonLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (debug filtered out)", len(lines))
	}
	for _, m := range lines {
		ts, _ := m["time"].(string)
		parsed, err := time.Parse(time.RFC3339, ts)
		if err != nil || !strings.HasSuffix(ts, "Z") || parsed.Location() != time.UTC {
			t.Errorf("time %q is not UTC RFC 3339", ts)
		}
	}
	first := lines[0]
	for k, want := range map[string]any{
		"level": "INFO", "msg": "dispatch attempt",
		"followup_id": "fu_01", "thread_id": "th_01", "attempt": 2.0, "outcome": "success",
		"run_at": "2030-05-06T07:00:00.000Z",
	} {
		if first[k] != want {
			t.Errorf("%s = %v, want %v", k, first[k], want)
		}
	}
	if lines[1]["level"] != "WARN" || lines[1]["drop_reason"] != "thread_not_found" {
		t.Errorf("second line = %v", lines[1])
	}
}

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		give string
		want slog.Level
		ok   bool
	}{
		{"debug", slog.LevelDebug, true},
		{"INFO", slog.LevelInfo, true},
		{" warn ", slog.LevelWarn, true},
		{"warning", slog.LevelWarn, true},
		{"Error", slog.LevelError, true},
		{"info+2", slog.LevelInfo + 2, true},
		{"", 0, false},
		{"verbose", 0, false},
		{"3", 0, false},
	} {
		t.Run(tc.give, func(t *testing.T) {
			got, err := telemetry.ParseLevel(tc.give)
			if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
				t.Errorf("ParseLevel(%q) = %v, %v; want %v, ok=%v", tc.give, got, err, tc.want, tc.ok)
			}
		})
	}
}
