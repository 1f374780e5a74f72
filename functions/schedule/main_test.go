package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/followups/followups/functions/internal/fntest"
	"github.com/followups/followups/shared/awscount"
)

func env(s fntest.Stack) map[string]string {
	return map[string]string{
		"FOLLOWUPS_TABLE":              s.Table,
		"FOLLOWUPS_FIRE_QUEUE_URL":     s.FireQueueURL,
		"FOLLOWUPS_FIRE_QUEUE_ARN":     s.FireQueueARN,
		"FOLLOWUPS_DLQ_ARN":            s.DLQARN,
		"FOLLOWUPS_SCHEDULE_GROUP":     s.Group,
		"FOLLOWUPS_SCHEDULER_ROLE_ARN": s.SchedulerRoleARN,
		"FOLLOWUPS_LOG_LEVEL":          "debug",
	}
}

// validEnv is a complete environment with well-formed values, as in
// events/env.json.
func validEnv() map[string]string {
	return env(fntest.Stack{
		Table:            "followups-dev-FollowupsTable-1QW2ER3TY4UI",
		FireQueueURL:     "https://sqs.us-east-1.amazonaws.com/123456789012/fire",
		FireQueueARN:     "arn:aws:sqs:us-east-1:123456789012:fire",
		DLQARN:           "arn:aws:sqs:us-east-1:123456789012:dlq",
		Group:            "followups-dev",
		SchedulerRoleARN: "arn:aws:iam::123456789012:role/scheduler",
	})
}

func TestBadSettingFailsColdStart(t *testing.T) {
	fntest.ColdStartFails(t, validEnv, func(lookup func(string) (string, bool)) error {
		_, err := newHandler(context.Background(), lookup, &fntest.Output{}, &fntest.Output{})
		return err
	}, []fntest.BadSetting{
		{Name: "missing table", Variable: "FOLLOWUPS_TABLE", Value: "<unset>"},
		{Name: "missing schedule group", Variable: "FOLLOWUPS_SCHEDULE_GROUP", Value: "<unset>"},
		{Name: "bad role ARN", Variable: "FOLLOWUPS_SCHEDULER_ROLE_ARN", Value: "scheduler-role"},
		{Name: "bad DLQ ARN", Variable: "FOLLOWUPS_DLQ_ARN", Value: "arn:aws:sns:us-east-1:123456789012:dlq"},
		{Name: "empty max delay", Variable: "FOLLOWUPS_MAX_DELAY", Value: ""},
		{Name: "min delay above max", Variable: "FOLLOWUPS_MIN_DELAY", Value: "48h"},
		{Name: "direct path longer than SQS delays", Variable: "FOLLOWUPS_DIRECT_WITHIN", Value: "16m"},
		{Name: "direct path too short for a schedule a minute early", Variable: "FOLLOWUPS_DIRECT_WITHIN", Value: "1m"},
		{Name: "bad namespace", Variable: "FOLLOWUPS_METRICS_NAMESPACE", Value: "AWS/Followups"},
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
	fntest.MainExits(t, "TestMainExitsOnBadSetting", nil, "schedule: FOLLOWUPS_TABLE")
}

type fixture struct {
	t      *testing.T
	handle func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	stdout *fntest.Output
	stderr *fntest.Output
	n      int
}

// invoke runs one invocation and returns the response, its JSON body, the
// AWS calls it made and the metrics it emitted.
func (x *fixture) invoke(e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, map[string]any, map[string]int, []string) {
	x.t.Helper()
	x.n++
	id := "req-" + string(rune('a'+x.n))
	resp, err := x.handle(fntest.Invocation(x.t, id, 25*time.Second), e)
	if err != nil {
		x.t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		x.t.Fatalf("body %q: %v", resp.Body, err)
	}
	return resp, body, fntest.Calls(x.t, x.stderr.Take(x.t), id), fntest.Metrics(x.stdout.Take(x.t))
}

func TestScheduleOnAWS(t *testing.T) {
	cfg := fntest.AWSEnv(t)
	stack := fntest.NewStack(t, cfg, 4)
	x := &fixture{t: t, stdout: &fntest.Output{}, stderr: &fntest.Output{}}
	var err error
	x.handle, err = newHandler(context.Background(), fntest.Lookup(env(stack)), x.stdout, x.stderr)
	if err != nil {
		t.Fatal(err)
	}
	x.stderr.Take(t)

	// Create, from the sample event: one schedule and one write.
	var create events.APIGatewayV2HTTPRequest
	fntest.ReadEvent(t, "create.json", &create)
	resp, created, calls, metrics := x.invoke(create)
	if resp.StatusCode != http.StatusCreated || created["status"] != "scheduled" {
		t.Fatalf("create: %d %v", resp.StatusCode, created)
	}
	id := created["id"].(string)
	// The sample names an originating run, whose slot the store reads
	// before its one transaction (replace per run).
	if calls["Scheduler.CreateSchedule"] != 1 || calls["DynamoDB.TransactWriteItems"] != 1 || awscount.Total(calls, "") > 3 {
		t.Errorf("create with an originating run made %v, want CreateSchedule, one transaction and the run slot's read", calls)
	}
	if !slices.Contains(metrics, "FollowupScheduled") {
		t.Errorf("create emitted %v, want FollowupScheduled", metrics)
	}
	sch, err := scheduler.NewFromConfig(cfg).GetSchedule(context.Background(), &scheduler.GetScheduleInput{Name: aws.String(id), GroupName: aws.String(stack.Group)})
	if err != nil {
		t.Fatalf("the followup's schedule: %v", err)
	}
	if aws.ToString(sch.Target.Arn) != stack.FireQueueARN || aws.ToString(sch.Target.RoleArn) != stack.SchedulerRoleARN ||
		sch.Target.DeadLetterConfig == nil || aws.ToString(sch.Target.DeadLetterConfig.Arn) != stack.DLQARN {
		t.Errorf("schedule target = %+v", sch.Target)
	}

	// Get, from the sample event: one read.
	var get events.APIGatewayV2HTTPRequest
	fntest.ReadEvent(t, "get.json", &get)
	get.RawPath, get.RequestContext.HTTP.Path, get.PathParameters = "/followups/"+id, "/followups/"+id, map[string]string{"id": id}
	resp, got, calls, _ := x.invoke(get)
	if resp.StatusCode != http.StatusOK || got["id"] != id {
		t.Fatalf("get: %d %v", resp.StatusCode, got)
	}
	if n := awscount.Total(calls, ""); n != 1 {
		t.Errorf("get made %v, want one call", calls)
	}

	// A thread id with a slash, listed by the decoded path an HTTP API
	// hands over (its $default route), and by the escaped one.
	const thread = "team/support"
	body, _ := json.Marshal(map[string]any{"thread_id": thread, "prompt": "check in", "delay_seconds": 120})
	create.Body = string(body)
	delete(create.Headers, "content-length")
	resp, b, calls, _ := x.invoke(create)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create in %s: %d %v", thread, resp.StatusCode, b)
	}
	// Without a run or a key, due within 15 minutes: straight to the fire
	// queue, with a delay, and one write; no schedule.
	if calls["SQS.SendMessage"] != 1 || calls["DynamoDB.PutItem"] != 1 || awscount.Total(calls, "") != 2 {
		t.Errorf("plain create due in 2 minutes made %v, want SendMessage and one write", calls)
	}
	fire, err := awssqs.NewFromConfig(cfg).ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
		QueueUrl: aws.String(stack.FireQueueURL), MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"},
	})
	if err != nil || len(fire.Messages) != 0 {
		t.Errorf("the fire queue shows %v (%v) at once; the message is delayed", fire, err)
	}
	attrs, err := awssqs.NewFromConfig(cfg).GetQueueAttributes(context.Background(), &awssqs.GetQueueAttributesInput{
		QueueUrl: aws.String(stack.FireQueueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil || attrs.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)] != "1" {
		t.Errorf("delayed messages on the fire queue: %v (%v), want 1", attrs.Attributes, err)
	}
	for _, path := range []string{"/threads/" + thread + "/followups", "/threads/" + url.PathEscape(thread) + "/followups"} {
		list := get
		list.RouteKey, list.RequestContext.RouteKey, list.PathParameters = "$default", "$default", nil
		list.RawPath, list.RequestContext.HTTP.Path = path, path
		resp, page, _, _ := x.invoke(list)
		items, _ := page["followups"].([]any)
		if resp.StatusCode != http.StatusOK || len(items) != 1 || items[0].(map[string]any)["thread_id"] != thread {
			t.Errorf("list %s: %d %v", path, resp.StatusCode, page)
		}
	}

	// Cancel: one conditional write and the schedule's removal.
	del := get
	del.RequestContext.HTTP.Method, del.RouteKey = http.MethodDelete, "DELETE /followups/{id}"
	resp, cancelled, calls, metrics := x.invoke(del)
	if resp.StatusCode != http.StatusOK || cancelled["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", resp.StatusCode, cancelled)
	}
	if n := awscount.Total(calls, ""); n > 2 || calls["Scheduler.DeleteSchedule"] != 1 {
		t.Errorf("cancel made %v, want DeleteSchedule and at most one more call", calls)
	}
	if !slices.Contains(metrics, "FollowupCancelled") {
		t.Errorf("cancel emitted %v, want FollowupCancelled", metrics)
	}
}
