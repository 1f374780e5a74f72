// Package telemetry is how Followups reports what it does: JSON log lines
// through log/slog, CloudWatch Embedded Metric Format (EMF) lines for the
// Lambda functions, and Prometheus metrics for followupd. The EMF and
// Prometheus types implement followup.Observer, so the services report
// events once and each runner chooses where they go; Multi sends them to
// several places.
//
// The metric names, units and dimensions are part of the contract of
// DESIGN §5: they are exported as constants, and EmittedMetrics lists every
// (metric, dimension set) the EMF observer can publish, so that alarms can
// be checked against it.
//
// Nothing here ever writes a followup's prompt, reason or metadata: the
// attribute helpers and both observers read only ids, status, counts,
// outcomes and drop reasons.
//
// The package reads no environment and starts no goroutines; runners parse
// LOG_LEVEL and FOLLOWUPS_METRICS_NAMESPACE and pass the values in.
package telemetry
