// Command dlq is the Lambda function behind the dead-letter queue. Two
// kinds of message land there: fire messages SQS gave up on after the last
// allowed receive, settled failed_dropped / retries_exhausted with the last
// concrete error, and schedules EventBridge Scheduler could not deliver
// (their String attributes ERROR_CODE, ERROR_MESSAGE and so on), settled
// failed_dropped / schedule_delivery_failed. A message it cannot read is
// kept in the table as a dead-letter record, not lost.
package main

import (
	"context"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/followups/followups/shared/config"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/lambdafn"
	"github.com/followups/followups/shared/lambdasqs"
	"github.com/followups/followups/shared/telemetry"
)

// settings are the variables the function reads (DESIGN §6).
var settings = []config.Setting{config.Table, config.MetricsNamespace, config.Retention, config.LogLevel}

func main() {
	lambdafn.Main("dlq", func() (handler, error) {
		return newHandler(context.Background(), os.LookupEnv, os.Stdout, os.Stderr)
	})
}

type handler = func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// newHandler builds the Lambda handler from the environment: metrics
// (EMF) go to stdout, logs to stderr.
func newHandler(ctx context.Context, lookup func(string) (string, bool), stdout, stderr io.Writer) (handler, error) {
	env, err := lambdafn.Setup(ctx, lookup, settings, stderr)
	if err != nil {
		return nil, err
	}
	cfg, log := env.Config, env.Log
	svc := followup.New(followup.Config{
		Store:     dynamo.New(dynamodb.NewFromConfig(env.AWS), cfg.Table, dynamo.Options{Retention: cfg.Retention}),
		Observer:  telemetry.NewEMF(stdout, cfg.MetricsNamespace, nil),
		Log:       log,
		Retention: cfg.Retention,
	})
	// A dead letter to look at again (its followup's attempt is still in
	// flight) is reported as a failure and comes back after the queue's
	// visibility timeout: the function knows the queue only from the
	// event, so it does not change visibility itself.
	settle := func(ctx context.Context, body []byte, attrs map[string]string) followup.Verdict {
		return svc.DeadLetter(ctx, body, attrs)
	}
	return lambdafn.Invocation(log, env.Calls, func(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		return lambdasqs.Batch(ctx, e.Records, settle, nil, log), nil
	}), nil
}
