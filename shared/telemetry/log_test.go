package telemetry_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
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

func TestFollowupAttrsOmitUserContent(t *testing.T) {
	f := dropped(followup.DropRetriesExhausted)
	f.Attempts = 4
	var keys []string
	for _, a := range telemetry.FollowupAttrs(f) {
		keys = append(keys, a.Key)
		if strings.Contains(a.Value.String(), secret) {
			t.Errorf("attribute %s carries user content", a.Key)
		}
	}
	want := []string{"followup_id", "thread_id", "status", "attempts", "drop_reason"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
	if telemetry.FollowupAttrs(nil) != nil {
		t.Error("FollowupAttrs(nil) is not empty")
	}
}

func TestLogObserver(t *testing.T) {
	var buf bytes.Buffer
	o := telemetry.NewLogObserver(telemetry.NewLogger(&buf, slog.LevelDebug))
	o.Scheduled(sample(followup.StatusScheduled))
	for _, oc := range outcomes {
		o.Attempted(sample(followup.StatusDispatching), attempt(oc), 20*time.Millisecond)
	}
	o.Settled(sample(followup.StatusDelivered), 1500*time.Millisecond)
	o.Settled(sample(followup.StatusCancelled), 0)
	for _, r := range followup.DropReasons {
		o.Settled(dropped(r), 0)
	}
	o.Settled(sample(followup.StatusScheduled), 0) // not terminal: nothing
	if strings.Contains(buf.String(), secret) {
		t.Fatalf("user content leaked into the log:\n%s", buf.String())
	}

	lines := jsonLines(t, &buf)
	if want := 1 + len(outcomes) + 2 + len(followup.DropReasons); len(lines) != want {
		t.Fatalf("got %d lines, want %d", len(lines), want)
	}
	drops := 0
	for _, m := range lines {
		if m["followup_id"] != "fu_01" || m["thread_id"] != "th_01" {
			t.Errorf("line without ids: %v", m)
		}
		switch m["msg"] {
		case "followup dropped":
			drops++
			if m["level"] != "WARN" || m["drop_reason"] == nil {
				t.Errorf("drop logged as %v with drop_reason %v, want WARN with a reason", m["level"], m["drop_reason"])
			}
		case "dispatch attempt":
			if m["attempt"] != 1.0 || m["outcome"] == nil || m["latency_ms"] != 20.0 {
				t.Errorf("attempt line lacks attempt, outcome or latency: %v", m)
			}
			if wantWarn := m["outcome"] != "success"; wantWarn != (m["level"] == "WARN") {
				t.Errorf("attempt %v logged at %v", m["outcome"], m["level"])
			}
		case "followup delivered":
			if m["lateness_ms"] != 1500.0 {
				t.Errorf("lateness_ms = %v, want 1500", m["lateness_ms"])
			}
		}
	}
	if drops != len(followup.DropReasons) {
		t.Errorf("logged %d drops, want %d", drops, len(followup.DropReasons))
	}
}
