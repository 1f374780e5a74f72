package followup_test

import (
	"errors"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

func TestTerminalNeverChanges(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	run := &followup.Run{Attempt: 1, Outcome: followup.OutcomeSuccess}
	results := map[string]followup.Result{
		"delivered":         {Status: followup.StatusDelivered, Run: run},
		"drop after run":    followup.Drop(followup.DropThreadNotFound, "404", run),
		"retries exhausted": followup.Drop(followup.DropRetriesExhausted, "503", nil),
		"cancelled":         {Status: followup.StatusCancelled},
	}
	transitions := map[string]func(f *followup.Followup) followup.Transition{
		"claim":     func(*followup.Followup) followup.Transition { return followup.Claim(now, time.Minute, 4) },
		"cancel":    func(*followup.Followup) followup.Transition { return followup.Cancel(now) },
		"interrupt": func(f *followup.Followup) followup.Transition { return followup.Interrupt(f, now) },
		"release":   func(f *followup.Followup) followup.Transition { return followup.Release(f, *run, now) },
	}
	for name, r := range results {
		transitions["settle "+name] = func(f *followup.Followup) followup.Transition { return followup.Settle(f, r, now) }
	}
	for _, status := range []followup.Status{followup.StatusDelivered, followup.StatusFailedDropped, followup.StatusCancelled} {
		for name, tr := range transitions {
			t.Run(string(status)+"/"+name, func(t *testing.T) {
				f := &followup.Followup{ID: "fu_x", Status: status, Version: 3}
				tt := tr(f)
				var conflict *followup.ConflictError
				if err := tt.Check(f); !errors.As(err, &conflict) || conflict.Current.Status != status {
					t.Fatalf("Check = %v, want a conflict", err)
				}
			})
		}
	}
}

func TestSettleConditions(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	run := &followup.Run{Attempt: 1, Outcome: followup.OutcomeSuccess}
	claimed := &followup.Followup{ID: "fu_x", Status: followup.StatusDispatching, Version: 5, Attempts: 1}
	tests := []struct {
		name    string
		current followup.Followup
		tr      followup.Transition
		allowed bool
	}{
		{"delivery on the claim", *claimed, followup.Settle(claimed, followup.Result{Status: followup.StatusDelivered, Run: run}, now), true},
		{"delivery after a takeover", followup.Followup{Status: followup.StatusDispatching, Version: 7}, followup.Settle(claimed, followup.Result{Status: followup.StatusDelivered, Run: run}, now), false},
		{"delivery on a scheduled one", followup.Followup{Status: followup.StatusScheduled, Version: 5}, followup.Settle(claimed, followup.Result{Status: followup.StatusDelivered, Run: run}, now), false},
		{"cancel scheduled", followup.Followup{Status: followup.StatusScheduled, Version: 9}, followup.Cancel(now), true},
		{"cancel dispatching", followup.Followup{Status: followup.StatusDispatching, Version: 9}, followup.Cancel(now), false},
		{"exhausted on scheduled as read", followup.Followup{Status: followup.StatusScheduled, Version: 5}, followup.Settle(&followup.Followup{Version: 5}, followup.Drop(followup.DropRetriesExhausted, "e", nil), now), true},
		{"exhausted on dispatching", followup.Followup{Status: followup.StatusDispatching, Version: 5}, followup.Settle(&followup.Followup{Version: 5}, followup.Drop(followup.DropRetriesExhausted, "e", nil), now), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.current
			err := tt.tr.Check(&f)
			if (err == nil) != tt.allowed {
				t.Fatalf("Check = %v, allowed want %v", err, tt.allowed)
			}
			if err == nil {
				tt.tr.Apply(&f)
				if !f.Status.Terminal() || f.SettledAt == nil || f.Version != tt.current.Version+1 {
					t.Fatalf("after Apply: %+v", f)
				}
			}
		})
	}
}
