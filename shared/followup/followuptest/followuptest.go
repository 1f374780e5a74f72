// Package followuptest holds fixtures for tests of the packages that report
// on followups (logs, metrics): followups whose user content carries a
// marker that must never reach a log or metric line, and typical attempts.
package followuptest

import (
	"encoding/json"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Secret marks user content; it must never reach a log or metric line.
const Secret = "SECRET-7f3a9c-user-content"

// Now is the fixtures' time.
var Now = time.Date(2030, 5, 6, 7, 8, 9, 123_000_000, time.UTC)

// Sample returns a followup in status whose user content carries Secret
// everywhere it can.
func Sample(status followup.Status) *followup.Followup {
	return &followup.Followup{
		ID:               "fu_01",
		ThreadID:         "th_01",
		Prompt:           "please check " + Secret,
		Reason:           "because " + Secret,
		OriginatingRunID: "run_01",
		Metadata:         json.RawMessage(`{"note":"` + Secret + `"}`),
		RunAt:            Now.Add(-2 * time.Second),
		Status:           status,
		Attempts:         1,
		CreatedAt:        Now.Add(-time.Minute),
		UpdatedAt:        Now,
	}
}

// Dropped returns a Sample settled failed_dropped for reason r.
func Dropped(r followup.DropReason) *followup.Followup {
	f := Sample(followup.StatusFailedDropped)
	f.DropReason = r
	f.LastError = "thread API said 404"
	return f
}

// Outcomes lists every attempt outcome.
var Outcomes = []followup.Outcome{followup.OutcomeSuccess, followup.OutcomeRetryableError, followup.OutcomeDrop}

// AttemptOf returns a typical attempt ending in o.
func AttemptOf(o followup.Outcome) followup.Attempt {
	switch o {
	case followup.OutcomeSuccess:
		return followup.Attempt{Outcome: o, HTTPStatus: 201}
	case followup.OutcomeRetryableError:
		return followup.Attempt{Outcome: o, HTTPStatus: 503, Error: "thread API: 503", RetryAfter: 2 * time.Second}
	default:
		return followup.Attempt{Outcome: o, DropReason: followup.DropThreadNotFound, HTTPStatus: 404, Error: "thread API: 404"}
	}
}
