// Package followup is the domain of Followups: the followup record, request
// validation, the state machine and its one Settle function, the retry
// policy, and the ports (Store, Scheduler, Dispatcher, Clock, Observer) that
// adapters implement.
//
// It has no infrastructure imports: no AWS, no database, no HTTP server.
// The HTTP API lives in shared/api, the thread client in shared/dispatch, and
// the adapters in shared/embedded, shared/dynamo, shared/eventbridge and
// shared/sqs. Runners (cmd/followupd, functions/*) wire them together.
package followup
