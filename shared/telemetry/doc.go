// Package telemetry is how Followups reports what it does, in the form
// every runner shares: JSON log lines through log/slog, and CloudWatch
// Embedded Metric Format (EMF) lines, which the Lambda functions write to
// stdout. EMF implements followup.Observer. followupd's Prometheus metrics
// are in shared/prom, so the Lambda bootstraps do not link them.
//
// The metric names, units and dimensions are contract: they are exported as
// constants, and EmittedMetrics lists every (metric, dimension set) the EMF
// observer can publish, so that alarms can be checked against it.
//
// Nothing here ever writes a followup's prompt, reason or metadata: the
// EMF observer reads only ids, status, counts, outcomes and drop reasons.
//
// The package reads no environment and starts no goroutines; runners parse
// FOLLOWUPS_LOG_LEVEL and FOLLOWUPS_METRICS_NAMESPACE and pass the values in.
package telemetry
