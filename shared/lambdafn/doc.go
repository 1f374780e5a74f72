// Package lambdafn holds what the four Lambda functions (schedule, fire,
// dlq, sweep) share around each invocation: a log handler that stamps every line
// with the invocation's request id, and a wrapper that logs, once per
// invocation, the AWS API calls it made.
//
// It reads no environment and loads no AWS configuration; each function's
// main does that and passes the results in.
package lambdafn
