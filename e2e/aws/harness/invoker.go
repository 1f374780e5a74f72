package harness

import "context"

// Invoker invokes one Lambda function with a payload, as Lambda's Invoke
// API does: a function error is in Invocation.Err, not the error. A
// Function, the bootstrap under the emulator, is one; the sam local tests
// (e2e/samlocal) invoke through the Lambda Invoke API of sam local
// start-lambda instead.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) (*Invocation, error)
	// FunctionName names the function in messages.
	FunctionName() string
}

var _ Invoker = (*Function)(nil)

// FunctionName returns the function's name.
func (f *Function) FunctionName() string { return f.Name }
