// Package eventbridge is the followup.Scheduler of the AWS deployment. A
// followup due within 15 minutes of its create goes straight to the fire
// queue with a delay (SQS DelaySeconds, to the second). A later one gets
// one EventBridge Scheduler one-time schedule, a minute early and on the
// minute because Scheduler fires anywhere within the minute of its time
// (the fire function sends the early message back for the rest); at its
// time the schedule sends the followup.Message to the fire queue and then
// deletes itself (ActionAfterCompletion DELETE), so a fired or failed
// schedule never fires again. What Scheduler cannot deliver goes to the
// dead-letter queue, where the dlq function settles it
// schedule_delivery_failed.
//
// It only creates and deletes schedules and sends messages; the schedule
// group, the queues and the role Scheduler assumes belong to template.yaml.
package eventbridge
