package telemetry_test

import (
	"encoding/json"
	"time"

	"github.com/followups/followups/shared/followup"
)

// secret marks user content; it must never reach a log or metric line.
const secret = "SECRET-7f3a9c-user-content"

// fixedClock always tells the same time.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var now = time.Date(2030, 5, 6, 7, 8, 9, 123_000_000, time.UTC)

// sample returns a followup whose user content carries secret everywhere it
// can.
func sample(status followup.Status) *followup.Followup {
	return &followup.Followup{
		ID:               "fu_01",
		ThreadID:         "th_01",
		Prompt:           "please check " + secret,
		Reason:           "because " + secret,
		OriginatingRunID: "run_01",
		Metadata:         json.RawMessage(`{"note":"` + secret + `"}`),
		RunAt:            now.Add(-2 * time.Second),
		Status:           status,
		Attempts:         1,
		CreatedAt:        now.Add(-time.Minute),
		UpdatedAt:        now,
	}
}

func dropped(r followup.DropReason) *followup.Followup {
	f := sample(followup.StatusFailedDropped)
	f.DropReason = r
	f.LastError = "thread API said 404"
	return f
}

var outcomes = []followup.Outcome{followup.OutcomeSuccess, followup.OutcomeRetryableError, followup.OutcomeDrop}

// attempt returns a typical attempt ending in o.
func attempt(o followup.Outcome) followup.Attempt {
	switch o {
	case followup.OutcomeSuccess:
		return followup.Attempt{Outcome: o, HTTPStatus: 201}
	case followup.OutcomeRetryableError:
		return followup.Attempt{Outcome: o, HTTPStatus: 503, Error: "thread API: 503", RetryAfter: 2 * time.Second}
	default:
		return followup.Attempt{Outcome: o, DropReason: followup.DropThreadNotFound, HTTPStatus: 404, Error: "thread API: 404"}
	}
}
