package sqs_test

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/followups/followups/shared/awscount"
	"github.com/followups/followups/shared/awstest"
	"github.com/followups/followups/shared/followup"
	fsqs "github.com/followups/followups/shared/sqs"
)

// fixture is a fresh queue, a Queue on it, and a plain client to look.
type fixture struct {
	queue  *fsqs.Queue
	client *sqs.Client
	url    string
	calls  *awscount.Counter
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := awstest.Config(t)
	client := sqs.NewFromConfig(cfg)
	out, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name("followups-test"))})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	})
	calls := &awscount.Counter{}
	counted := sqs.NewFromConfig(cfg, sqs.WithAPIOptions(calls.APIOption))
	return &fixture{queue: fsqs.New(counted, url), client: client, url: url, calls: calls}
}

// receive waits up to wait for one message.
func (x *fixture) receive(t *testing.T, wait int32) *types.Message {
	t.Helper()
	out, err := x.client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(x.url),
		MaxNumberOfMessages: 1,
		WaitTimeSeconds:     wait,
	})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	if len(out.Messages) == 0 {
		return nil
	}
	return &out.Messages[0]
}

func TestSendWithDelay(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t)
	m := followup.Message{FollowupID: followup.NewID(), ThreadID: "thread/ü"}

	before := x.calls.Snapshot()
	start := time.Now()
	if err := x.queue.Send(t.Context(), m, 1500*time.Millisecond); err != nil { // rounds up to 2 s
		t.Fatalf("Send: %v", err)
	}
	if got := x.calls.Delta(before); !maps.Equal(got, map[string]int{"SQS.SendMessage": 1}) {
		t.Fatalf("Send made calls %v, want one SendMessage", got)
	}
	if msg := x.receive(t, 0); msg != nil {
		t.Fatalf("message visible at once, before its delay")
	}
	msg := x.receive(t, 5)
	if msg == nil {
		t.Fatalf("no message within 5 s of a 2 s delay")
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Fatalf("message delivered after %s, before its 2 s delay", waited)
	}
	var got followup.Message
	if err := json.Unmarshal([]byte(aws.ToString(msg.Body)), &got); err != nil || got != m {
		t.Fatalf("body %s = %+v (%v), want %+v", aws.ToString(msg.Body), got, err, m)
	}
}

func TestSendClampsDelay(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t)
	m := followup.Message{FollowupID: "fu-1", ThreadID: "t-1"}
	// Beyond SQS's limits both ways: clamped, not refused.
	if err := x.queue.Send(t.Context(), m, -time.Second); err != nil {
		t.Fatalf("Send with a negative delay: %v", err)
	}
	if msg := x.receive(t, 2); msg == nil {
		t.Fatalf("a message sent with a negative delay is not delivered at once")
	}
	if err := x.queue.Send(t.Context(), m, 24*time.Hour); err != nil {
		t.Fatalf("Send with a day's delay: %v", err)
	}
}

func TestChangeVisibility(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t)
	if err := x.queue.Send(t.Context(), followup.Message{FollowupID: "fu-1", ThreadID: "t-1"}, 0); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msg := x.receive(t, 2)
	if msg == nil {
		t.Fatalf("no message")
	}

	// 300 ms rounds up to a second: the retry path's wait.
	before := x.calls.Snapshot()
	start := time.Now()
	if err := x.queue.ChangeVisibility(t.Context(), aws.ToString(msg.ReceiptHandle), 300*time.Millisecond); err != nil {
		t.Fatalf("ChangeVisibility: %v", err)
	}
	if got := x.calls.Delta(before); !maps.Equal(got, map[string]int{"SQS.ChangeMessageVisibility": 1}) {
		t.Fatalf("ChangeVisibility made calls %v, want one ChangeMessageVisibility", got)
	}
	again := x.receive(t, 5)
	if again == nil {
		t.Fatalf("message not visible again within 5 s of a 1 s visibility timeout")
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("message visible again after %s, before its 1 s timeout", waited)
	}

	// Asked for longer than SQS allows: clamped, not refused, and hidden
	// for longer than this test lasts.
	if err := x.queue.ChangeVisibility(t.Context(), aws.ToString(again.ReceiptHandle), 48*time.Hour); err != nil {
		t.Fatalf("ChangeVisibility beyond 12 h: %v", err)
	}
	if msg := x.receive(t, 2); msg != nil {
		t.Fatalf("message visible again right after the longest visibility timeout")
	}
}

func TestChangeVisibilityOfUnknownReceipt(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t)
	if err := x.queue.ChangeVisibility(t.Context(), "not-a-receipt-handle", time.Second); err == nil {
		t.Fatalf("ChangeVisibility of an unknown receipt handle: no error")
	}
}

// Queues sends to the fire queue with a delay and String attributes, and
// to the dead-letter queue at once, each in one SendMessage.
func TestQueuesSend(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	fire, dead := newFixture(t), newFixture(t)
	qs := fsqs.Queues{Fire: fire.queue, DeadLetter: dead.queue}
	attrs := map[string]string{followup.ReturnsAttribute: "2", "ERROR_CODE": "é"}
	if err := qs.SendFire(t.Context(), []byte(`{"followup_id":"fu-1"}`), attrs, time.Second); err != nil {
		t.Fatalf("SendFire: %v", err)
	}
	if err := qs.SendDeadLetter(t.Context(), []byte(`{"followup_id":"fu-2"}`), nil); err != nil {
		t.Fatalf("SendDeadLetter: %v", err)
	}
	if got := fire.calls.Snapshot(); got["SQS.SendMessage"] != 1 {
		t.Fatalf("fire calls %v", got)
	}
	out, err := fire.client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(fire.url), WaitTimeSeconds: 5, MessageAttributeNames: []string{"All"},
	})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive from the fire queue: %v, %v", out, err)
	}
	m := out.Messages[0]
	if aws.ToString(m.Body) != `{"followup_id":"fu-1"}` || len(m.MessageAttributes) != 2 ||
		aws.ToString(m.MessageAttributes[followup.ReturnsAttribute].StringValue) != "2" ||
		aws.ToString(m.MessageAttributes[followup.ReturnsAttribute].DataType) != "String" {
		t.Fatalf("fire message %s %v", aws.ToString(m.Body), m.MessageAttributes)
	}
	if got := dead.receive(t, 2); got == nil || aws.ToString(got.Body) != `{"followup_id":"fu-2"}` {
		t.Fatalf("dead-letter message %v", got)
	}
}
