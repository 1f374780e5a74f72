// Command dlq is the Lambda function behind the dead-letter queue. Three
// kinds of message land there: fire messages the fire function moved
// after a followup's last allowed attempt failed (settled failed_dropped /
// retries_exhausted with the last concrete error); fire messages the
// queue itself gave up on (its maxReceiveCount) while the followup still
// had attempts (sent back to the fire queue, at most three times, then
// settled queue_exhausted); and schedules EventBridge Scheduler could not
// deliver (String attributes ERROR_CODE, ERROR_MESSAGE and so on),
// settled schedule_delivery_failed. A message it cannot read is kept in
// the table as a dead-letter record, not lost.
package main

import (
	"context"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/events"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/followups/followups/shared/config"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/lambdafn"
	"github.com/followups/followups/shared/lambdasqs"
	"github.com/followups/followups/shared/sqs"
)

// settings are the variables the function reads. The retry budget and the
// fire queue's receive limit decide whether a dead letter's followup had
// attempts left.
var settings = []config.Setting{
	config.Table, config.FireQueueURL, config.DLQURL, config.MetricsNamespace,
	config.MaxRetries, config.MaxReceiveCount, config.DispatchTimeout, config.Retention, config.LogLevel,
}

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
	client := awssqs.NewFromConfig(env.AWS)
	dlq := sqs.New(client, cfg.DLQURL)
	svc, err := followup.New(followup.Config{
		Store:       env.Store(),
		Queues:      sqs.Queues{Fire: sqs.New(client, cfg.FireQueueURL), DeadLetter: dlq},
		Observer:    env.Metrics(stdout),
		Log:         log,
		Retry:       cfg.Retry,
		Timing:      cfg.Timing(),
		MaxReceives: cfg.MaxReceives,
		Retention:   cfg.Retention,
	})
	if err != nil {
		return nil, err
	}
	return lambdafn.Invocation(log, env.Calls, func(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		return lambdasqs.Batch(ctx, e.Records, svc.DeadLetter, dlq.ChangeVisibility, log), nil
	}), nil
}
