// Command fire is the Lambda function behind the fire queue: for each due
// followup's message it claims the followup, makes one attempt to post it
// to its thread, and records the outcome. A message to retry is reported
// as a partial batch failure after its visibility timeout is set to the
// retry wait, so no invocation ever sleeps; after the last allowed receive
// SQS moves it to the dead-letter queue, where the dlq function settles it.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/followups/followups/shared/config"
	"github.com/followups/followups/shared/dispatch"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/lambdafn"
	"github.com/followups/followups/shared/lambdasqs"
	"github.com/followups/followups/shared/sqs"
	"github.com/followups/followups/shared/telemetry"
)

// settings are the variables the function reads (DESIGN §6). The fire
// queue's ARN is checked at start though only its URL is used today.
var settings = []config.Setting{
	config.Table, config.FireQueueURL, config.FireQueueARN, config.MetricsNamespace,
	config.ThreadAPIURL, config.ThreadAPIToken, config.SigningSecret,
	config.MaxRetries, config.RetryBase, config.RetryMax, config.DispatchTimeout,
	config.Retention, config.LogLevel,
}

// recordTime is what one record needs beyond the dispatch timeout: the
// claim and the write of the result, with room for SDK retries. A record
// that starts with less of the invocation left is given back unclaimed.
const recordTime = 5 * time.Second

func main() {
	lambdafn.Main("fire", func() (handler, error) {
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

	// Without a thread API the dispatcher stays nil: the service then
	// settles every followup dispatcher_unconfigured, visibly, instead of
	// retrying against nothing.
	var disp followup.Dispatcher
	if cfg.ThreadAPIURL != nil {
		c, err := dispatch.New(dispatch.Options{
			BaseURL: cfg.ThreadAPIURL, Token: cfg.ThreadAPIToken,
			SigningSecret: []byte(cfg.SigningSecret), Timeout: cfg.DispatchTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("%s, %s: %w", config.ThreadAPIURL.Env, config.ThreadAPIToken.Env, err)
		}
		disp = c
	} else {
		log.Warn("no thread API configured: every followup will be dropped as dispatcher_unconfigured", "setting", config.ThreadAPIURL.Env)
	}

	svc := followup.New(followup.Config{
		Store:      dynamo.New(dynamodb.NewFromConfig(env.AWS), cfg.Table, dynamo.Options{Retention: cfg.Retention}),
		Dispatcher: disp,
		Observer:   telemetry.NewEMF(stdout, cfg.MetricsNamespace, nil),
		Log:        log,
		Retry:      cfg.Retry,
		Lease:      cfg.Lease(),
		Retention:  cfg.Retention,
	})
	queue := sqs.New(awssqs.NewFromConfig(env.AWS), cfg.FireQueueURL)
	fire := lambdasqs.NeedTime(cfg.DispatchTimeout+recordTime,
		func(ctx context.Context, body []byte, _ map[string]string) followup.Verdict {
			return svc.Fire(ctx, body)
		}, log)
	return lambdafn.Invocation(log, env.Calls, func(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		return lambdasqs.Batch(ctx, e.Records, fire, queue.ChangeVisibility, log), nil
	}), nil
}
