// Package awscount counts the AWS API calls an aws-sdk-go-v2 client makes,
// per service and operation. Tests use it to hold the adapters to their
// call budgets (a create is one DynamoDB write, a claim one UpdateItem, and
// so on), which decide both latency and cost on AWS.
//
// A call is one operation invoked on a client: the SDK's own retries of
// that call are not counted again.
package awscount

import (
	"context"
	"maps"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts API calls. The zero value is ready; it is safe for
// concurrent use.
type Counter struct {
	mu    sync.Mutex
	calls map[string]int
}

// Add makes every client built from cfg report its calls to c.
func (c *Counter) Add(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, c.APIOption)
}

// APIOption installs the counting middleware on one operation's stack. Pass
// it in a config's APIOptions, or to a single client with its service's
// WithAPIOptions.
func (c *Counter) APIOption(stack *middleware.Stack) error {
	// Initialize runs once per operation call, before the retry loop.
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("awscount",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.count(Key(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)))
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

func (c *Counter) count(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[key]++
}

// Key names an operation as Snapshot does: the service id, a dot, the
// operation name, e.g. "DynamoDB.UpdateItem".
func Key(service, operation string) string { return service + "." + operation }

// Snapshot returns the calls counted so far, keyed like "DynamoDB.UpdateItem".
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// Reset forgets every call counted so far.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.calls)
}

// Delta returns the calls counted since before, a Snapshot taken earlier.
// Operations with no new call are left out.
func (c *Counter) Delta(before map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range c.Snapshot() {
		if d := n - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// Total returns how many calls were made to service (a service id such as
// "DynamoDB") in counts, a Snapshot or a Delta; an empty service counts
// every call.
func Total(counts map[string]int, service string) int {
	n := 0
	for k, v := range counts {
		if service == "" || (len(k) > len(service) && k[:len(service)] == service && k[len(service)] == '.') {
			n += v
		}
	}
	return n
}
