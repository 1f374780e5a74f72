package followup_test

import (
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// BenchmarkParseCreate measures validating a POST /followups body, the
// part of a create that does not touch the clock or the store.
func BenchmarkParseCreate(b *testing.B) {
	bodies := []struct{ name, body string }{
		{"minimal", `{"thread_id":"t-123","prompt":"Check the build.","delay_seconds":3600}`},
		{"typical", `{"thread_id":"bench-t123","prompt":"Check whether the nightly build finished and report back with the failing tests, if any.","reason":"waiting on CI","metadata":{"channel":"load","seq":123456},"delay_seconds":82800}`},
		{"local-run_at", `{"thread_id":"slack/C024BE91L/1700000000.000100","prompt":"Check whether the nightly build finished and report back with the failing tests, if any.","run_at":"2026-11-28T09:30:00","timezone":"Europe/Paris","reason":"waiting on CI","originating_run_id":"run-42","metadata":{"channel":"slack","user":"U024BE7LH","tags":["ci","nightly"]}}`},
		{"large-prompt", `{"thread_id":"t-123","prompt":"` + strings.Repeat("Summarise the build log and list every failing test. ", 300) + `","delay_seconds":3600}`},
	}
	for _, bb := range bodies {
		body := []byte(bb.body)
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := followup.ParseCreate(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSettle measures the settle of a delivered attempt as a store
// makes it: decide the transition, check it against the stored followup,
// and apply it to a copy.
func BenchmarkSettle(b *testing.B) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	delay := int64(3600)
	claimed := &followup.Followup{
		ID: "fu_01JDQ7Z8X9Y0A1B2C3D4E5F6G7", ThreadID: "thread-123",
		Prompt: strings.Repeat("p", 100), Reason: "waiting on CI", Metadata: []byte(`{"channel":"slack"}`),
		RunAt: now.Add(-time.Second), DelaySecondsRequested: &delay,
		Status: followup.StatusDispatching, Attempts: 1, Runs: []followup.Run{},
		CreatedAt: now.Add(-time.Hour), UpdatedAt: now, Version: 2,
		NextAttemptAt: now.Add(-time.Second), LeaseUntil: now.Add(40 * time.Second),
	}
	run := followup.Run{Attempt: 1, StartedAt: now, FinishedAt: now.Add(20 * time.Millisecond), DurationMS: 20,
		Outcome: followup.OutcomeSuccess, HTTPStatus: 201}
	b.ReportAllocs()
	for b.Loop() {
		tr := followup.Settle(claimed, followup.Result{Status: followup.StatusDelivered, Run: &run}, run.FinishedAt)
		if err := tr.Check(claimed); err != nil {
			b.Fatal(err)
		}
		next := claimed.Clone()
		tr.Apply(next)
		if next.Status != followup.StatusDelivered {
			b.Fatal(next.Status)
		}
	}
}
