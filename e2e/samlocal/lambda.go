package samlocal

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/followups/followups/e2e/aws/harness"
)

// NewLambdaClient returns a Lambda client for the Invoke API of sam local
// start-lambda at url. It makes one attempt per call: a retry would hide
// what start-lambda answered.
func NewLambdaClient(url string) *lambda.Client {
	return lambda.NewFromConfig(aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		// The fire function's timeout (120 s) and some.
		HTTPClient: &http.Client{Timeout: 3 * time.Minute},
		Retryer:    func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *lambda.Options) { o.BaseEndpoint = aws.String(url) })
}

// Lambda invokes one function through the Lambda Invoke API: a
// harness.Invoker, so harness.Poller can play the function's event source
// mapping against sam local start-lambda.
type Lambda struct {
	Client *lambda.Client
	// Function is the function's logical id in the template.
	Function string
}

var _ harness.Invoker = (*Lambda)(nil)

// FunctionName returns the function's logical id.
func (l *Lambda) FunctionName() string { return l.Function }

// Invoke calls the function synchronously (RequestResponse). A function
// error is in the Invocation's Err, from X-Amz-Function-Error and the
// error document, as the emulator's are, or from an empty answer. Output stays empty: sam keeps
// the function's output in its own log.
func (l *Lambda) Invoke(ctx context.Context, payload []byte) (*harness.Invocation, error) {
	inv := &harness.Invocation{Start: time.Now()}
	out, err := l.Client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(l.Function), Payload: payload})
	inv.Took = time.Since(inv.Start)
	if err != nil {
		return nil, fmt.Errorf("invoke %s through the Lambda API: %w", l.Function, err)
	}
	inv.Status, inv.Payload = int(out.StatusCode), out.Payload
	inv.RequestID, _ = middleware.GetRequestIDMetadata(out.ResultMetadata)
	if out.FunctionError == nil && len(out.Payload) == 0 {
		// Where Lambda answers a failed runtime (a cold start that exited,
		// say) with X-Amz-Function-Error and an error document, start-lambda
		// answers 200 and nothing. Every handler here returns JSON, so
		// nothing is a failure, not an empty success.
		inv.Err = &harness.FunctionError{Type: "Runtime.Failure", Message: "sam local start-lambda answered nothing: the function's runtime failed (see start-lambda's output)"}
		return inv, nil
	}
	if out.FunctionError != nil {
		fe := &harness.FunctionError{}
		if json.Unmarshal(out.Payload, fe) != nil || (fe.Type == "" && fe.Message == "") {
			fe.Type, fe.Message = aws.ToString(out.FunctionError), string(out.Payload)
		}
		inv.Err = fe
	}
	return inv, nil
}
