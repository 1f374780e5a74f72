// Command sweep is the Lambda function that finds followups whose message
// was lost (a schedule deleted by hand, a purged queue, a bug): every five
// minutes an EventBridge rule invokes it, it reads the table's sweep index
// once for the pending followups overdue by more than five minutes, and
// sends each one's fire message again (at most once an hour per followup),
// logging each at WARN and counting it (FollowupRedriven). A lost message
// therefore delays a followup by minutes and never loses it.
//
// It is a function of its own, not a second trigger of fire or dlq: it
// needs none of their secrets or thread API settings, its role is exactly
// one index read, one update and one send, and its errors and duration
// have alarms and graphs of their own.
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
	"github.com/followups/followups/shared/sqs"
)

// settings are the variables the function reads.
var settings = []config.Setting{config.Table, config.FireQueueURL, config.MetricsNamespace, config.Retention, config.LogLevel}

func main() {
	lambdafn.Main("sweep", func() (handler, error) {
		return newHandler(context.Background(), os.LookupEnv, os.Stdout, os.Stderr)
	})
}

// Result is what one run did.
type Result struct {
	// Redriven counts the followups whose message was sent again.
	Redriven int `json:"redriven"`
}

type handler = func(context.Context, events.EventBridgeEvent) (Result, error)

// newHandler builds the Lambda handler from the environment: metrics
// (EMF) go to stdout, logs to stderr.
func newHandler(ctx context.Context, lookup func(string) (string, bool), stdout, stderr io.Writer) (handler, error) {
	env, err := lambdafn.Setup(ctx, lookup, settings, stderr)
	if err != nil {
		return nil, err
	}
	cfg, log := env.Config, env.Log
	fire := sqs.New(awssqs.NewFromConfig(env.AWS), cfg.FireQueueURL)
	svc, err := followup.New(followup.Config{
		Store:     env.Store(),
		Queues:    sqs.Queues{Fire: fire},
		Observer:  env.Metrics(stdout),
		Log:       log,
		Retention: cfg.Retention,
	})
	if err != nil {
		return nil, err
	}
	// The event says only that it is time; the run uses its own clock.
	return lambdafn.Invocation(log, env.Calls, func(ctx context.Context, _ events.EventBridgeEvent) (Result, error) {
		n, err := svc.Sweep(ctx)
		if err != nil {
			return Result{}, err
		}
		log.InfoContext(ctx, "sweep done", "redriven", n)
		return Result{Redriven: n}, nil
	}), nil
}
