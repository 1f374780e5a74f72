package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/followups/followups/functions/internal/fntest"
	"github.com/followups/followups/shared/awscount"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
)

func TestBadSettingFailsColdStart(t *testing.T) {
	fntest.ColdStartFails(t, func() map[string]string {
		return map[string]string{
			"FOLLOWUPS_TABLE":          "followups-dev-FollowupsTable-1QW2ER3TY4UI",
			"FOLLOWUPS_FIRE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/fire",
			"FOLLOWUPS_DLQ_URL":        "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
		}
	}, func(lookup func(string) (string, bool)) error {
		_, err := newHandler(context.Background(), lookup, &fntest.Output{}, &fntest.Output{})
		return err
	}, []fntest.BadSetting{
		{Name: "missing table", Variable: "FOLLOWUPS_TABLE", Value: "<unset>"},
		{Name: "bad table", Variable: "FOLLOWUPS_TABLE", Value: "a"},
		{Name: "bad retention", Variable: "FOLLOWUPS_RETENTION", Value: "forever"},
		{Name: "empty namespace", Variable: "FOLLOWUPS_METRICS_NAMESPACE", Value: ""},
		{Name: "missing fire queue URL", Variable: "FOLLOWUPS_FIRE_QUEUE_URL", Value: "<unset>"},
		{Name: "missing dead-letter queue URL", Variable: "FOLLOWUPS_DLQ_URL", Value: "<unset>"},
		{Name: "receive limit below the retry budget", Variable: "FOLLOWUPS_MAX_RECEIVE_COUNT", Value: "5", Also: map[string]string{"FOLLOWUPS_MAX_RETRIES": "4"}},
	})
}

// TestMainExitsOnBadSetting runs main in a child process without its
// settings: a failed cold start is exit status 1 with one line naming the
// variable on stderr.
func TestMainExitsOnBadSetting(t *testing.T) {
	if fntest.RunMainIfAsked(main) {
		return
	}
	fntest.MainExits(t, "TestMainExitsOnBadSetting", nil, "dlq: FOLLOWUPS_TABLE")
}

// record returns the only record of the sample event file, with its body
// naming f (when f is not nil).
func record(t *testing.T, file string, f *followup.Followup) events.SQSMessage {
	t.Helper()
	var e events.SQSEvent
	fntest.ReadEvent(t, file, &e)
	if len(e.Records) != 1 {
		t.Fatalf("%s has %d records, want 1", file, len(e.Records))
	}
	r := e.Records[0]
	if f != nil {
		b, _ := json.Marshal(followup.MessageFor(f))
		r.Body = string(b)
	}
	return r
}

func TestDeadLettersOnAWS(t *testing.T) {
	cfg := fntest.AWSEnv(t)
	stack := fntest.NewStack(t, cfg, 4)
	store := dynamo.New(dynamodb.NewFromConfig(cfg), stack.Table, dynamo.Options{})
	// Followups made eleven minutes ago, due a minute ago.
	svc, err := followup.New(followup.Config{Store: store, Scheduler: inmem.NewScheduler(), Clock: ago(11 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	create := func(thread string) *followup.Followup {
		req, err := followup.ParseCreate([]byte(`{"thread_id":"` + thread + `","prompt":"p","delay_seconds":600}`))
		if err != nil {
			t.Fatal(err)
		}
		c, err := svc.Create(context.Background(), req, "")
		if err != nil {
			t.Fatal(err)
		}
		return c.Followup
	}
	undelivered, wrapped, exhausted, givenUp := create("t-789"), create("t-790"), create("t-123"), create("t-124")
	// Four attempts failed: the fire function moved its message here.
	now := time.Now()
	for range 4 {
		claimed, err := store.Apply(context.Background(), exhausted.ID, followup.Claim(now, time.Minute, 4))
		if err != nil {
			t.Fatal(err)
		}
		run := followup.Run{Attempt: claimed.Attempts, StartedAt: now, FinishedAt: now, Outcome: followup.OutcomeRetryableError, HTTPStatus: 503, Error: "HTTP 503: down"}
		if _, err := store.Apply(context.Background(), exhausted.ID, followup.Release(claimed, run, now)); err != nil {
			t.Fatal(err)
		}
	}

	stdout, stderr := &fntest.Output{}, &fntest.Output{}
	handle, err := newHandler(context.Background(), fntest.Lookup(map[string]string{
		"FOLLOWUPS_TABLE": stack.Table, "FOLLOWUPS_FIRE_QUEUE_URL": stack.FireQueueURL, "FOLLOWUPS_DLQ_URL": stack.DLQURL,
		"FOLLOWUPS_LOG_LEVEL": "debug",
	}), stdout, stderr)
	if err != nil {
		t.Fatal(err)
	}

	// One batch of every kind of dead letter, from the sample events: the
	// two shapes of Scheduler's, an exhausted followup's, one the queue
	// gave up on with attempts left, and an unparsable one.
	batch := events.SQSEvent{Records: []events.SQSMessage{
		record(t, "dlq-scheduler.json", undelivered),
		wrap(record(t, "dlq-scheduler-wrapped.json", nil), wrapped),
		record(t, "dlq-redriven.json", exhausted),
		record(t, "dlq-redriven.json", givenUp),
		record(t, "dlq-unparsable.json", nil),
	}}
	batch.Records[3].MessageId += "-2"
	resp, err := handle(fntest.Invocation(t, "req-dlq", 30*time.Second), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures = %v, want none", resp.BatchItemFailures)
	}
	calls := fntest.Calls(t, stderr.Take(t), "req-dlq")
	if n := awscount.Total(calls, "DynamoDB"); n > 8 || calls["SQS.SendMessage"] != 1 {
		t.Errorf("five dead letters made %v, want a read and a write each (the unparsable one: one write; the one sent back: a read and a send)", calls)
	}

	tests := []struct {
		f         *followup.Followup
		reason    followup.DropReason
		errorText string
	}{
		{undelivered, followup.DropScheduleDeliveryFailed, "AWS.Scheduler.InternalServerError"},
		{wrapped, followup.DropScheduleDeliveryFailed, "AWS.Scheduler.InternalServerError"},
		{exhausted, followup.DropRetriesExhausted, "HTTP 503: down"},
	}
	for _, tt := range tests {
		got, err := store.Get(context.Background(), tt.f.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != followup.StatusFailedDropped || got.DropReason != tt.reason || !strings.Contains(got.LastError, tt.errorText) {
			t.Errorf("followup %s is %s (%s, %q), want failed_dropped (%s) naming %q",
				got.ID, got.Status, got.DropReason, got.LastError, tt.reason, tt.errorText)
		}
	}
	// The one with attempts left is back on the fire queue, returned once.
	if got, _ := store.Get(context.Background(), givenUp.ID); got.Status != followup.StatusScheduled {
		t.Errorf("a followup with attempts left is %s", got.Status)
	}
	out, err := awssqs.NewFromConfig(cfg).ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
		QueueUrl: aws.String(stack.FireQueueURL), WaitTimeSeconds: 5, MessageAttributeNames: []string{"All"},
	})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("the fire queue holds %v (%v), want the message sent back", out, err)
	}
	var m followup.Message
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &m); err != nil || m.FollowupID != givenUp.ID ||
		aws.ToString(out.Messages[0].MessageAttributes[followup.ReturnsAttribute].StringValue) != "1" {
		t.Errorf("sent back %s %v", aws.ToString(out.Messages[0].Body), out.Messages[0].MessageAttributes)
	}
}

type ago time.Duration

func (a ago) Now() time.Time { return time.Now().Add(-time.Duration(a)) }

// wrap puts f's message into a wrapped Scheduler dead letter's MessageBody.
func wrap(r events.SQSMessage, f *followup.Followup) events.SQSMessage {
	inner, _ := json.Marshal(followup.MessageFor(f))
	b, _ := json.Marshal(map[string]string{"MessageBody": string(inner), "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/fire"})
	r.Body = string(b)
	return r
}
