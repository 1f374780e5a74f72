// Package lambdasqs runs a followup queue consumer (Service.Fire or
// Service.DeadLetter) over the SQS batches Lambda's event source mapping
// delivers, and reports what to keep as partial batch failures
// (ReportBatchItemFailures). It knows nothing of followups beyond the
// Verdict a consumer returns, and makes no AWS call of its own: the
// caller passes how to change a message's visibility.
package lambdasqs
