package lambdafn

import (
	"context"
	"log/slog"
	"time"

	"github.com/followups/followups/shared/awscount"
)

// MsgAWSCalls is the message of the line Invocation logs at DEBUG after
// each invocation; its aws_calls attribute maps "Service.Operation" (as
// awscount.Key spells it) to the number of calls, e.g.
//
//	{"level":"DEBUG","msg":"aws calls","aws_calls":{"DynamoDB.UpdateItem":2},"duration_ms":41,"aws_request_id":"..."}
//
// Tests read it to hold each path to its call budget.
const MsgAWSCalls = "aws calls"

// Invocation wraps a Lambda handler so that each invocation ends with one
// DEBUG line listing the AWS API calls counted by calls while it ran.
//
// The count is the difference between two snapshots of one process-wide
// counter, which is exact because Lambda runs one invocation at a time in
// an execution environment (lambda.Start handles them in turn unless
// AWS_LAMBDA_MAX_CONCURRENCY says otherwise), and handle does not return
// before the work it started: the fire function's concurrent records all
// belong to the invocation, and are all counted in it. With calls nil the
// line lists nothing.
func Invocation[In, Out any](log *slog.Logger, calls *awscount.Counter, handle func(context.Context, In) (Out, error)) func(context.Context, In) (Out, error) {
	return func(ctx context.Context, in In) (Out, error) {
		start := time.Now()
		var before map[string]int
		if calls != nil {
			before = calls.Snapshot()
		}
		out, err := handle(ctx, in)
		counts := map[string]int{}
		if calls != nil {
			counts = calls.Delta(before)
		}
		log.DebugContext(ctx, MsgAWSCalls, "aws_calls", counts, "duration_ms", time.Since(start).Milliseconds())
		if err != nil {
			log.ErrorContext(ctx, "invocation failed", "error", err)
		}
		return out, err
	}
}
