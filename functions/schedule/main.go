// Command schedule is the Followups HTTP API as a Lambda function behind an
// API Gateway HTTP API (payload format 2.0). It keeps followups in
// DynamoDB. A followup due within 15 minutes goes straight to the fire
// queue with a delay; a later one gets an EventBridge Scheduler schedule,
// which puts its message on the fire queue a minute ahead of its time.
//
// Authentication is API Gateway's (IAM or JWT), so FOLLOWUPS_API_TOKEN is
// not read. It dispatches nothing, so the thread API settings are not read
// either.
package main

import (
	"context"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/followups/followups/shared/api"
	"github.com/followups/followups/shared/apigw"
	"github.com/followups/followups/shared/config"
	"github.com/followups/followups/shared/eventbridge"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/lambdafn"
	"github.com/followups/followups/shared/sqs"
)

// settings are the variables the function reads: the fire queue's URL for
// short delays, its ARN as the schedules' target.
var settings = []config.Setting{
	config.Table, config.FireQueueURL, config.FireQueueARN, config.DLQARN,
	config.ScheduleGroup, config.SchedulerRoleARN, config.MetricsNamespace,
	config.MinDelay, config.MaxDelay, config.DirectWithin, config.Retention, config.LogLevel,
}

// threadRoute is the API route whose thread_id may hold a "/", which an
// HTTP API decodes into a path separator (see shared/apigw).
const threadRoute = "/threads/{thread_id}/followups"

func main() {
	lambdafn.Main("schedule", func() (handler, error) {
		return newHandler(context.Background(), os.LookupEnv, os.Stdout, os.Stderr)
	})
}

type handler = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// newHandler builds the Lambda handler from the environment: metrics
// (EMF) go to stdout, logs to stderr.
func newHandler(ctx context.Context, lookup func(string) (string, bool), stdout, stderr io.Writer) (handler, error) {
	env, err := lambdafn.Setup(ctx, lookup, settings, stderr)
	if err != nil {
		return nil, err
	}
	cfg, log := env.Config, env.Log

	svc, err := followup.New(followup.Config{
		Store: env.Store(),
		Scheduler: eventbridge.New(scheduler.NewFromConfig(env.AWS), eventbridge.Config{
			Group: cfg.ScheduleGroup, QueueARN: cfg.FireQueueARN, RoleARN: cfg.SchedulerRoleARN, DeadLetterARN: cfg.DLQARN,
			Direct: sqs.New(awssqs.NewFromConfig(env.AWS), cfg.FireQueueURL), DirectWithin: cfg.DirectWithin,
		}),
		Observer:  env.Metrics(stdout),
		Log:       log,
		Limits:    cfg.Limits,
		Retention: cfg.Retention,
	})
	if err != nil {
		return nil, err
	}
	h := apigw.Rejoin(api.New(api.Options{Service: svc, Log: log}), threadRoute)
	return lambdafn.Invocation(log, env.Calls, apigw.Handler(h)), nil
}
