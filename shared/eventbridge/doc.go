// Package eventbridge is the followup.Scheduler of the AWS deployment: one
// EventBridge Scheduler one-time schedule per followup, which at the
// followup's time sends its followup.Message to the fire queue and then
// deletes itself (ActionAfterCompletion DELETE), so a fired or failed
// schedule never fires again. What Scheduler cannot deliver goes to the
// dead-letter queue, where the dlq function settles it
// schedule_delivery_failed.
//
// It only creates and deletes schedules; the schedule group, the queues
// and the role Scheduler assumes belong to template.yaml.
package eventbridge
