package lambdafn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/followups/followups/shared/awscount"
	"github.com/followups/followups/shared/config"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/telemetry"
)

// Env is what every function builds first, from its environment.
type Env struct {
	Config *config.Config
	// Log writes JSON lines to stderr, each with the invocation's
	// aws_request_id when logged with its context.
	Log *slog.Logger
	// AWS is the SDK configuration (it honours AWS_ENDPOINT_URL), with
	// every call counted by Calls.
	AWS   aws.Config
	Calls *awscount.Counter
}

// Setup reads the function's settings through lookup and loads the AWS
// configuration. An error names the setting at fault.
func Setup(ctx context.Context, lookup func(string) (string, bool), settings []config.Setting, stderr io.Writer) (*Env, error) {
	cfg, err := config.Load(lookup, settings...)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	calls := &awscount.Counter{}
	calls.Add(&awsCfg)
	log := slog.New(LogHandler(telemetry.NewLogger(stderr, cfg.LogLevel).Handler()))
	return &Env{Config: cfg, Log: log, AWS: awsCfg, Calls: calls}, nil
}

// Store returns the followups table (FOLLOWUPS_TABLE), which keeps a
// settled record for FOLLOWUPS_RETENTION.
func (e *Env) Store() *dynamo.Store {
	return dynamo.New(dynamodb.NewFromConfig(e.AWS), e.Config.Table, dynamo.Options{Retention: e.Config.Retention})
}

// Metrics returns the observer that writes the function's metrics to w
// (stdout, where Lambda's log agent finds them) in CloudWatch's embedded
// metric format, in FOLLOWUPS_METRICS_NAMESPACE.
func (e *Env) Metrics(w io.Writer) *telemetry.EMF {
	return telemetry.NewEMF(w, e.Config.MetricsNamespace, nil)
}

// Main starts a function whose handler build returns, or fails its cold
// start with build's error, which names the setting at fault.
func Main[H any](name string, build func() (H, error)) {
	handle, err := build()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	lambda.Start(handle)
}
