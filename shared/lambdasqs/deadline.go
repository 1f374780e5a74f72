package lambdasqs

import (
	"context"
	"log/slog"
	"time"

	"github.com/followups/followups/shared/followup"
)

// NeedTime returns a Handle that runs handle only when ctx leaves at least
// need before its deadline (the Lambda invocation's). Otherwise the
// message is given back untouched, visible again at once, for an
// invocation with time to spare.
//
// Why: the fire handler claims a followup, dispatches it and records the
// result. Cut short by the invocation's timeout, the claim would hold the
// followup until its lease expires, the attempt would count as
// interrupted, and the thread might get the message without the result
// being recorded. Not starting is cheaper than all of that. need is the
// dispatch timeout plus the time to claim and record. The message's
// receive still counts toward the queue's redrive limit, as every
// delivery does. log may be nil.
func NeedTime(need time.Duration, handle Handle, log *slog.Logger) Handle {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, d followup.Delivery) followup.Verdict {
		if deadline, ok := ctx.Deadline(); ok {
			if left := time.Until(deadline); left < need {
				log.WarnContext(ctx, "too little time left in this invocation to dispatch; message given back unclaimed",
					"time_left_ms", left.Milliseconds(), "time_needed_ms", need.Milliseconds())
				return followup.RetryAfter(0)
			}
		}
		return handle(ctx, d)
	}
}
