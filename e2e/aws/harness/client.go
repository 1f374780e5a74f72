package harness

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/followups/followups/shared/followup"
)

// Do sends a request through API Gateway to the schedule function;
// headers are name, value pairs.
func (e *Env) Do(method, target, body string, headers ...string) *Response {
	e.T.Helper()
	h := map[string]string{}
	if body != "" {
		h["content-type"] = "application/json"
	}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	resp, err := e.API.Do(e.Ctx, method, target, body, h)
	if err != nil {
		e.T.Fatalf("%s %s: %v", method, target, err)
	}
	e.checkContract(method, target, h, resp)
	return resp
}

// Create creates a followup through the API and returns it; anything but
// 201 fails the test.
func (e *Env) Create(body string, headers ...string) (*followup.Followup, *Response) {
	e.T.Helper()
	resp := e.Do("POST", "/followups", body, headers...)
	if resp.Status != 201 {
		e.T.Fatalf("POST /followups: %d %s", resp.Status, resp.Body)
	}
	var f followup.Followup
	if err := resp.JSON(&f); err != nil {
		e.T.Fatal(err)
	}
	return &f, resp
}

// Get reads a followup through the API; anything but 200 fails the test.
func (e *Env) Get(id string) *followup.Followup {
	e.T.Helper()
	resp := e.Do("GET", "/followups/"+id, "")
	if resp.Status != 200 {
		e.T.Fatalf("GET /followups/%s: %d %s", id, resp.Status, resp.Body)
	}
	var f followup.Followup
	if err := resp.JSON(&f); err != nil {
		e.T.Fatal(err)
	}
	return &f
}

// WaitSettled polls the followup through the API until it is terminal.
func (e *Env) WaitSettled(id string, timeout time.Duration) *followup.Followup {
	e.T.Helper()
	var f *followup.Followup
	e.WaitUntil("followup "+id+" settles", timeout, func() bool {
		f = e.Get(id)
		return f.Status.Terminal()
	})
	return f
}

// WaitUntil polls cond every 100ms until it holds, and fails the test
// after timeout.
func (e *Env) WaitUntil(what string, timeout time.Duration, cond func() bool) {
	e.T.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.T.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// QueueDepth returns the messages of a queue: visible, in flight, delayed.
func (e *Env) QueueDepth(url string) (visible, inFlight, delayed int) {
	e.T.Helper()
	out, err := e.SQS.GetQueueAttributes(e.Ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		e.T.Fatalf("queue attributes of %s: %v", url, err)
	}
	n := func(k sqstypes.QueueAttributeName) int {
		var v int
		fmt.Sscan(out.Attributes[string(k)], &v)
		return v
	}
	return n(sqstypes.QueueAttributeNameApproximateNumberOfMessages),
		n(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible),
		n(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)
}

// Send puts body on a queue, as another producer (or a duplicate
// delivery) would, and returns the message id.
func (e *Env) Send(url, body string) string {
	e.T.Helper()
	out, err := e.SQS.SendMessage(e.Ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)})
	if err != nil {
		e.T.Fatalf("send to %s: %v", url, err)
	}
	return aws.ToString(out.MessageId)
}
