package mcp

import (
	"time"

	"github.com/followups/followups/shared/followup"
)

// timeFormat writes times as the API does: RFC 3339 in UTC, with the
// fraction when there is one.
const timeFormat = time.RFC3339Nano

// shownFollowup is a followup as the tools show it: schedule_followup's and
// cancel_followup's structured result (openapi.json's ToolFollowup).
type shownFollowup struct {
	FollowupID            string            `json:"followup_id"`
	Status                followup.Status   `json:"status"`
	ThreadID              string            `json:"thread_id"`
	OriginatingRunID      string            `json:"originating_run_id,omitempty"`
	ScheduledFor          time.Time         `json:"scheduled_for"`
	ScheduledForUnix      int64             `json:"scheduled_for_unix"`
	DelaySecondsRequested *int64            `json:"delay_seconds_requested,omitempty"`
	Reason                string            `json:"reason,omitempty"`
	ReplacedPrevious      *replacedFollowup `json:"replaced_previous,omitempty"`
}

// replacedFollowup is the followup of the same run a schedule replaced.
type replacedFollowup struct {
	FollowupID   string          `json:"followup_id"`
	Status       followup.Status `json:"status"`
	ScheduledFor time.Time       `json:"scheduled_for"`
}

// listed is one followup of list_followups: shown, with what came of it.
type listed struct {
	shownFollowup
	Attempts   int                 `json:"attempts"`
	DropReason followup.DropReason `json:"drop_reason,omitempty"`
	LastError  string              `json:"last_error,omitempty"`
}

// listResult is list_followups' structured result (ToolFollowupPage).
type listResult struct {
	Followups  []listed `json:"followups"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

func shown(f *followup.Followup) shownFollowup {
	s := shownFollowup{
		FollowupID:            f.ID,
		Status:                f.Status,
		ThreadID:              f.ThreadID,
		OriginatingRunID:      f.OriginatingRunID,
		ScheduledFor:          f.RunAt.UTC(),
		ScheduledForUnix:      f.RunAt.Unix(),
		DelaySecondsRequested: f.DelaySecondsRequested,
		Reason:                f.Reason,
	}
	if r := f.ReplacedPrevious; r != nil {
		s.ReplacedPrevious = &replacedFollowup{FollowupID: r.ID, Status: r.Status, ScheduledFor: r.RunAt.UTC()}
	}
	return s
}

func listedOf(f *followup.Followup) listed {
	return listed{shownFollowup: shown(f), Attempts: f.Attempts, DropReason: f.DropReason, LastError: f.LastError}
}
