// Package sqs is what the functions need of the fire queue and the
// dead-letter queue beyond the Lambda events that deliver their messages:
// setting a received message's visibility timeout (the wait before a
// retry), and sending messages: a followup due soon straight to the fire
// queue with a delay, an early message back for the rest, an exhausted
// one to the dead-letter queue, one the queue gave up on back to the fire
// queue (Queues).
//
// It neither receives nor deletes messages: the Lambda event source
// mapping does, deleting what the function reports as handled.
package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/followups/followups/shared/followup"
)

// SQS's limits.
const (
	// MaxVisibility is the longest visibility timeout ChangeVisibility
	// sets. SQS allows 12 hours counted from the receive, and refuses
	// more rather than trimming it; the receive was up to one Lambda
	// invocation (at most 15 minutes) ago, so 15 minutes are left out.
	MaxVisibility = 12*time.Hour - 15*time.Minute
	// MaxDelay is the longest delay SQS allows on a message.
	MaxDelay = 15 * time.Minute
)

// Queue is one SQS queue, by URL. It is safe for concurrent use.
type Queue struct {
	client *sqs.Client
	url    string
}

// New returns the queue at queueURL.
func New(client *sqs.Client, queueURL string) *Queue {
	return &Queue{client: client, url: queueURL}
}

// ChangeVisibility makes the received message with receiptHandle visible
// again after d, in whole seconds rounded up (never early) and clamped to
// 0..MaxVisibility. With redrive, that next receive counts toward the
// queue's maxReceiveCount.
func (q *Queue) ChangeVisibility(ctx context.Context, receiptHandle string, d time.Duration) error {
	secs := seconds(d, MaxVisibility)
	_, err := q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(q.url),
		ReceiptHandle:     aws.String(receiptHandle),
		VisibilityTimeout: secs,
	})
	if err != nil {
		return fmt.Errorf("change visibility of a message on %s to %ds: %w", q.url, secs, err)
	}
	return nil
}

// Send puts m on the queue, to be delivered after delay, in whole seconds
// rounded up and clamped to SQS's 0 to 15 minutes. A longer wait is the
// caller's to split: the fire path puts back a message that arrives before
// its followup is due.
func (q *Queue) Send(ctx context.Context, m followup.Message, delay time.Duration) error {
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("send followup %s: %w", m.FollowupID, err)
	}
	return q.SendBody(ctx, body, nil, delay)
}

// SendBody puts a message with String attributes on the queue, delivered
// after delay (whole seconds, rounded up, at most 15 minutes).
func (q *Queue) SendBody(ctx context.Context, body []byte, attrs map[string]string, delay time.Duration) error {
	secs := seconds(delay, MaxDelay)
	in := &sqs.SendMessageInput{
		QueueUrl:     aws.String(q.url),
		MessageBody:  aws.String(string(body)),
		DelaySeconds: secs,
	}
	if len(attrs) > 0 {
		in.MessageAttributes = make(map[string]types.MessageAttributeValue, len(attrs))
		for k, v := range attrs {
			in.MessageAttributes[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	if _, err := q.client.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("send a message to %s with delay %ds: %w", q.url, secs, err)
	}
	return nil
}

// Queues is the fire queue and its dead-letter queue, as the consumers
// send to them.
type Queues struct {
	Fire, DeadLetter *Queue
}

// SendFire implements followup.Queues.
func (q Queues) SendFire(ctx context.Context, body []byte, attrs map[string]string, delay time.Duration) error {
	return q.Fire.SendBody(ctx, body, attrs, delay)
}

// SendDeadLetter implements followup.Queues.
func (q Queues) SendDeadLetter(ctx context.Context, body []byte, attrs map[string]string) error {
	return q.DeadLetter.SendBody(ctx, body, attrs, 0)
}

var _ followup.Queues = Queues{}

// seconds is d in whole seconds rounded up, within [0, limit].
func seconds(d, limit time.Duration) int32 {
	d = min(max(d, 0), limit)
	return int32((d + time.Second - 1) / time.Second)
}
