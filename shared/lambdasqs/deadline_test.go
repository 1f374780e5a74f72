package lambdasqs_test

import (
	"context"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/lambdasqs"
)

func TestNeedTime(t *testing.T) {
	const need = 15 * time.Second
	tests := []struct {
		name        string
		deadline    time.Duration // from now; 0 for none
		wantHandled bool
	}{
		{name: "no deadline", wantHandled: true},
		{name: "plenty of time", deadline: 2 * time.Minute, wantHandled: true},
		{name: "too little time", deadline: 5 * time.Second},
		{name: "deadline passed", deadline: -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.deadline != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, time.Now().Add(tt.deadline))
				defer cancel()
			}
			handled := false
			handle := lambdasqs.NeedTime(need, func(context.Context, followup.Delivery) followup.Verdict {
				handled = true
				return followup.Ack
			}, nil)
			v := handle(ctx, followup.Delivery{Body: []byte(`{}`)})
			if handled != tt.wantHandled {
				t.Fatalf("handled = %v, want %v", handled, tt.wantHandled)
			}
			if want := followup.RetryAfter(0); !tt.wantHandled && v != want {
				t.Errorf("verdict = %+v, want %+v (given back at once)", v, want)
			}
		})
	}
}
