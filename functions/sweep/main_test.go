package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/followups/followups/functions/internal/fntest"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
)

func validEnv() map[string]string {
	return map[string]string{
		"FOLLOWUPS_TABLE":          "followups-dev-FollowupsTable-1QW2ER3TY4UI",
		"FOLLOWUPS_FIRE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/fire",
	}
}

func TestBadSettingFailsColdStart(t *testing.T) {
	fntest.ColdStartFails(t, validEnv, func(lookup func(string) (string, bool)) error {
		_, err := newHandler(context.Background(), lookup, &fntest.Output{}, &fntest.Output{})
		return err
	}, []fntest.BadSetting{
		{Name: "missing table", Variable: "FOLLOWUPS_TABLE", Value: "<unset>"},
		{Name: "missing fire queue URL", Variable: "FOLLOWUPS_FIRE_QUEUE_URL", Value: "<unset>"},
		{Name: "bad fire queue URL", Variable: "FOLLOWUPS_FIRE_QUEUE_URL", Value: "fire"},
		{Name: "bad log level", Variable: "FOLLOWUPS_LOG_LEVEL", Value: "loud"},
	})
}

// TestMainExitsOnBadSetting runs main in a child process without its
// settings: a failed cold start is exit status 1 with one line naming the
// variable on stderr.
func TestMainExitsOnBadSetting(t *testing.T) {
	if fntest.RunMainIfAsked(main) {
		return
	}
	fntest.MainExits(t, "TestMainExitsOnBadSetting", nil, "sweep: FOLLOWUPS_TABLE")
}

type ago time.Duration

func (a ago) Now() time.Time { return time.Now().Add(-time.Duration(a)) }

type lostScheduler struct{}

func (lostScheduler) Schedule(context.Context, *followup.Followup) error { return nil }
func (lostScheduler) Unschedule(context.Context, string) error           { return nil }

// On moto: the sample event's run finds the followup whose schedule was
// lost, sends its message in one SendMessage, and notes it; a followup
// still within its grace is left alone.
func TestSweepOnAWS(t *testing.T) {
	cfg := fntest.AWSEnv(t)
	stack := fntest.NewStack(t, cfg, 20)
	store := dynamo.New(dynamodb.NewFromConfig(cfg), stack.Table, dynamo.Options{})
	create := func(madeAgo time.Duration) *followup.Followup {
		svc, err := followup.New(followup.Config{Store: store, Scheduler: lostScheduler{}, Clock: ago(madeAgo)})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := followup.ParseCreate([]byte(`{"thread_id":"t-1","prompt":"p","delay_seconds":60}`))
		c, err := svc.Create(context.Background(), req, "")
		if err != nil {
			t.Fatal(err)
		}
		return c.Followup
	}
	lost, fresh := create(7*time.Minute), create(2*time.Minute)

	stdout, stderr := &fntest.Output{}, &fntest.Output{}
	handle, err := newHandler(context.Background(), fntest.Lookup(map[string]string{
		"FOLLOWUPS_TABLE": stack.Table, "FOLLOWUPS_FIRE_QUEUE_URL": stack.FireQueueURL, "FOLLOWUPS_LOG_LEVEL": "debug",
	}), stdout, stderr)
	if err != nil {
		t.Fatal(err)
	}
	stderr.Take(t)
	var e events.EventBridgeEvent
	fntest.ReadEvent(t, "sweep.json", &e)
	res, err := handle(fntest.Invocation(t, "req-sweep", time.Minute), e)
	if err != nil || res.Redriven != 1 {
		t.Fatalf("sweep = %+v, %v; want one redriven", res, err)
	}
	calls := fntest.Calls(t, stderr.Take(t), "req-sweep")
	if calls["DynamoDB.Query"] != 1 || calls["SQS.SendMessage"] != 1 || calls["DynamoDB.UpdateItem"] != 1 || len(calls) != 3 {
		t.Errorf("one redrive made %v, want one Query, one SendMessage, one UpdateItem", calls)
	}
	out, err := awssqs.NewFromConfig(cfg).ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(stack.FireQueueURL), WaitTimeSeconds: 2})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("fire queue: %v, %v; want the lost followup's message", out, err)
	}
	var m followup.Message
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &m); err != nil || m != followup.MessageFor(lost) {
		t.Fatalf("message %s, want %+v", aws.ToString(out.Messages[0].Body), followup.MessageFor(lost))
	}
	redriven := 0
	for _, l := range stdout.Take(t) {
		if l["FollowupRedriven"] == 1.0 && l["followup_id"] == lost.ID {
			redriven++
		}
	}
	if redriven != 1 {
		t.Errorf("FollowupRedriven printed %d times for %s", redriven, lost.ID)
	}
	// Sent at most once an hour; the fresh one is not overdue yet.
	if res, err := handle(fntest.Invocation(t, "req-sweep-2", time.Minute), e); err != nil || res.Redriven != 0 {
		t.Fatalf("second run = %+v, %v; want none", res, err)
	}
	if got, _ := store.Get(context.Background(), fresh.ID); got.Status != followup.StatusScheduled {
		t.Errorf("the fresh followup is %s", got.Status)
	}
}
