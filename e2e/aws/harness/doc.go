// Package harness runs the four Lambda functions of the AWS side as real
// processes, with no AWS account and no Docker, for the end-to-end tests in
// e2e/aws.
//
// Each function's bootstrap, built for the host, runs under the Lambda
// Runtime Interface Emulator (aws-lambda-rie), the same runtime API that
// sam local invoke uses inside its container. Their AWS SDK clients talk
// to moto's server through AWS_ENDPOINT_URL. Two things on AWS call the
// functions and neither exists in moto or the emulator, so the harness
// plays them, as AWS documents them:
//
//   - EventBridge Scheduler (Scheduler): at a schedule's at() time it sends
//     the target input to the target queue, sends what it could not deliver
//     to the schedule's dead-letter queue with the attributes Scheduler
//     sets, and deletes the schedule (ActionAfterCompletion DELETE).
//   - The SQS event source mapping (Poller): receive a batch, invoke the
//     function with the event Lambda builds, delete every record not named
//     in batchItemFailures, and leave the rest to their visibility timeout.
//     SQS redrive to the dead-letter queue is moto's own.
//
// API Gateway is played by API, which turns a request into a payload
// format 2.0 event for the schedule function.
//
// The harness is not a Lambda or Scheduler emulator for general use: it
// does what the Followups deployment needs (standard queues, one-time
// at() schedules in UTC, SQS targets) and fails loudly on anything else.
package harness
