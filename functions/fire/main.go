// Command fire is the Lambda function behind the fire queue: for each due
// followup's message it claims the followup, makes one attempt to post it
// to its thread, and records the outcome. A message to retry is reported
// as a partial batch failure after its visibility timeout is set to the
// retry wait, so no invocation ever sleeps. A message that arrives early
// goes back as a new message for the rest; after the last allowed attempt
// fails the function moves the message to the dead-letter queue itself,
// where the dlq function settles it retries_exhausted.
//
// The thread API token and the signing secret are read from Secrets
// Manager at cold start (THREAD_API_TOKEN_SECRET_ARN,
// FOLLOWUPS_SIGNING_SECRET_ARN), so no secret sits in the function's
// configuration.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/followups/followups/shared/config"
	"github.com/followups/followups/shared/dispatch"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/lambdafn"
	"github.com/followups/followups/shared/lambdasqs"
	"github.com/followups/followups/shared/secrets"
	"github.com/followups/followups/shared/sqs"
)

// settings are the variables the function reads. The fire queue's ARN is
// checked at start though only its URL is used.
var settings = []config.Setting{
	config.Table, config.FireQueueURL, config.FireQueueARN, config.DLQURL, config.MetricsNamespace,
	config.ThreadAPIURL, config.ThreadAPIToken, config.SigningSecret, config.ThreadAPITokenSecretARN, config.SigningSecretARN,
	config.MaxRetries, config.RetryBase, config.RetryMax, config.DispatchTimeout, config.MaxReceiveCount,
	config.Retention, config.LogLevel,
}

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
	if err := readSecrets(ctx, env); err != nil {
		return nil, err
	}

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

	client := awssqs.NewFromConfig(env.AWS)
	fireQueue := sqs.New(client, cfg.FireQueueURL)
	svc, err := followup.New(followup.Config{
		Store:       env.Store(),
		Queues:      sqs.Queues{Fire: fireQueue, DeadLetter: sqs.New(client, cfg.DLQURL)},
		Dispatcher:  disp,
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
	fire := lambdasqs.NeedTime(cfg.Timing().AttemptTime(), svc.Fire, log)
	return lambdafn.Invocation(log, env.Calls, func(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		return lambdasqs.Batch(ctx, e.Records, fire, fireQueue.ChangeVisibility, log), nil
	}), nil
}

// readSecrets reads the secrets the template names into the configuration,
// once: a secret that is missing or unreadable fails the cold start,
// naming the variable.
func readSecrets(ctx context.Context, env *lambdafn.Env) error {
	cfg := env.Config
	wanted := []struct {
		arn  string
		from config.Setting
		into config.Setting
	}{
		{cfg.ThreadAPITokenSecretARN, config.ThreadAPITokenSecretARN, config.ThreadAPIToken},
		{cfg.SigningSecretARN, config.SigningSecretARN, config.SigningSecret},
	}
	var client *secretsmanager.Client
	for _, w := range wanted {
		if w.arn == "" {
			continue
		}
		if client == nil {
			client = secretsmanager.NewFromConfig(env.AWS)
		}
		v, err := secrets.Read(ctx, client, w.arn)
		if err != nil {
			return fmt.Errorf("%s: %w", w.from, err)
		}
		if err := w.into.Set(cfg, v); err != nil {
			return fmt.Errorf("%s: the secret's value: %w", w.from, err)
		}
	}
	return nil
}
