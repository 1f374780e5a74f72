// Package lambdafn holds what the four Lambda functions (schedule, fire,
// dlq, sweep) share: their start-up (Setup reads the function's settings,
// builds its JSON logger and loads the AWS configuration with every call
// counted; Store and Metrics build the table and the metrics every
// function uses; Main fails a cold start with a line naming the setting),
// a log handler that stamps every line with the invocation's request id,
// and a wrapper that logs, once per invocation, the AWS API calls it made.
//
// The settings a function reads are its own list, passed to Setup; its
// main wires the rest (queues, scheduler, dispatcher).
package lambdafn
