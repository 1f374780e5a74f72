package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/followups/followups/functions/internal/fntest"
	"github.com/followups/followups/shared/awscount"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
)

func TestBadSettingFailsColdStart(t *testing.T) {
	fntest.ColdStartFails(t, func() map[string]string {
		return map[string]string{"FOLLOWUPS_TABLE": "followups-dev-FollowupsTable-1QW2ER3TY4UI"}
	}, func(lookup func(string) (string, bool)) error {
		_, err := newHandler(context.Background(), lookup, &fntest.Output{}, &fntest.Output{})
		return err
	}, []fntest.BadSetting{
		{Name: "missing table", Variable: "FOLLOWUPS_TABLE", Value: "<unset>"},
		{Name: "bad table", Variable: "FOLLOWUPS_TABLE", Value: "a"},
		{Name: "bad retention", Variable: "FOLLOWUPS_RETENTION", Value: "forever"},
		{Name: "empty namespace", Variable: "FOLLOWUPS_METRICS_NAMESPACE", Value: ""},
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
	svc := followup.New(followup.Config{Store: store, Scheduler: inmem.NewScheduler()})
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
	undelivered, exhausted := create("t-789"), create("t-123")

	stdout, stderr := &fntest.Output{}, &fntest.Output{}
	handle, err := newHandler(context.Background(), fntest.Lookup(map[string]string{
		"FOLLOWUPS_TABLE": stack.Table, "FOLLOWUPS_LOG_LEVEL": "debug",
	}), stdout, stderr)
	if err != nil {
		t.Fatal(err)
	}

	// One batch of the three kinds of dead letter, from the sample events.
	batch := events.SQSEvent{Records: []events.SQSMessage{
		record(t, "dlq-scheduler.json", undelivered),
		record(t, "dlq-redriven.json", exhausted),
		record(t, "dlq-unparsable.json", nil),
	}}
	resp, err := handle(fntest.Invocation(t, "req-dlq", 30*time.Second), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures = %v, want none", resp.BatchItemFailures)
	}
	calls := fntest.Calls(t, stderr.Take(t), "req-dlq")
	if n := awscount.Total(calls, ""); n > 5 {
		t.Errorf("three dead letters made %v, want a read and a write each (the unparsable one: one write)", calls)
	}

	tests := []struct {
		f         *followup.Followup
		reason    followup.DropReason
		errorText string
	}{
		{undelivered, followup.DropScheduleDeliveryFailed, "AWS.Scheduler.InternalServerError"},
		{exhausted, followup.DropRetriesExhausted, ""},
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
}
