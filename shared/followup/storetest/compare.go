package storetest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// requireSame fails unless got is want field by field: times compared with
// Equal (any location), nil and empty Runs and Metadata alike.
func requireSame(t *testing.T, what string, want, got *followup.Followup) {
	t.Helper()
	if diff := diffFollowup(want, got); diff != "" {
		t.Fatalf("%s: %s", what, diff)
	}
}

func diffFollowup(want, got *followup.Followup) string {
	if want == nil || got == nil {
		if want == got {
			return ""
		}
		return fmt.Sprintf("got %v, want %v", got, want)
	}
	var d []string
	field := func(name string, w, g any) {
		if w != g {
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, g, w))
		}
	}
	tm := func(name string, w, g time.Time) {
		if !w.Equal(g) {
			d = append(d, fmt.Sprintf("%s = %s, want %s", name, g.Format(time.RFC3339Nano), w.Format(time.RFC3339Nano)))
		}
	}
	field("ID", want.ID, got.ID)
	field("ThreadID", want.ThreadID, got.ThreadID)
	field("Prompt", want.Prompt, got.Prompt)
	field("Reason", want.Reason, got.Reason)
	field("OriginatingRunID", want.OriginatingRunID, got.OriginatingRunID)
	if !bytes.Equal(want.Metadata, got.Metadata) {
		d = append(d, fmt.Sprintf("Metadata = %q, want %q", got.Metadata, want.Metadata))
	}
	tm("RunAt", want.RunAt, got.RunAt)
	switch {
	case (want.DelaySecondsRequested == nil) != (got.DelaySecondsRequested == nil):
		d = append(d, fmt.Sprintf("DelaySecondsRequested set = %v, want %v", got.DelaySecondsRequested != nil, want.DelaySecondsRequested != nil))
	case want.DelaySecondsRequested != nil:
		field("DelaySecondsRequested", *want.DelaySecondsRequested, *got.DelaySecondsRequested)
	}
	field("Status", want.Status, got.Status)
	field("Attempts", want.Attempts, got.Attempts)
	field("LastError", want.LastError, got.LastError)
	field("DropReason", want.DropReason, got.DropReason)
	if len(want.Runs) != len(got.Runs) {
		d = append(d, fmt.Sprintf("len(Runs) = %d, want %d", len(got.Runs), len(want.Runs)))
	} else {
		for i := range want.Runs {
			w, g := want.Runs[i], got.Runs[i]
			p := fmt.Sprintf("Runs[%d].", i)
			field(p+"Attempt", w.Attempt, g.Attempt)
			tm(p+"StartedAt", w.StartedAt, g.StartedAt)
			tm(p+"FinishedAt", w.FinishedAt, g.FinishedAt)
			field(p+"DurationMS", w.DurationMS, g.DurationMS)
			field(p+"Outcome", w.Outcome, g.Outcome)
			field(p+"HTTPStatus", w.HTTPStatus, g.HTTPStatus)
			field(p+"Error", w.Error, g.Error)
		}
	}
	tm("CreatedAt", want.CreatedAt, got.CreatedAt)
	tm("UpdatedAt", want.UpdatedAt, got.UpdatedAt)
	switch {
	case (want.SettledAt == nil) != (got.SettledAt == nil):
		d = append(d, fmt.Sprintf("SettledAt set = %v, want %v", got.SettledAt != nil, want.SettledAt != nil))
	case want.SettledAt != nil:
		tm("SettledAt", *want.SettledAt, *got.SettledAt)
	}
	field("Version", want.Version, got.Version)
	tm("NextAttemptAt", want.NextAttemptAt, got.NextAttemptAt)
	tm("LeaseUntil", want.LeaseUntil, got.LeaseUntil)
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprintf("followup %s differs:\n\t%s", want.ID, strings.Join(d, "\n\t"))
}

// applied returns what f becomes under tr, as every store must write it.
func applied(f *followup.Followup, tr followup.Transition) *followup.Followup {
	w := f.Clone()
	tr.Apply(w)
	return w
}

// ids returns the ids of fs, in order.
func ids(fs []*followup.Followup) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}
