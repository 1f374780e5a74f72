package awse2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/eventbridge"
	"github.com/followups/followups/shared/followup"
)

func TestScheduleWithoutRecordSettlesRecordMissing(t *testing.T) {
	e := start(t, harness.Options{})
	id, thread, at := followup.NewID(), threadID("orphan"), time.Now()
	// What a create that crashed between its schedule and its record
	// leaves behind: a schedule, as the schedule function makes them, and
	// no record.
	_, err := e.Sched.CreateSchedule(e.Ctx, &scheduler.CreateScheduleInput{
		Name:                       aws.String(eventbridge.ScheduleName(id)),
		GroupName:                  aws.String(e.Stack.Group),
		ScheduleExpression:         aws.String(eventbridge.At(at)),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &schedtypes.FlexibleTimeWindow{Mode: schedtypes.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      schedtypes.ActionAfterCompletionDelete,
		Target: &schedtypes.Target{
			Arn: aws.String(e.Stack.FireQueueARN), RoleArn: aws.String(e.Stack.SchedulerRoleARN),
			Input:            aws.String(messageBody(id, thread)),
			DeadLetterConfig: &schedtypes.DeadLetterConfig{Arn: aws.String(e.Stack.DLQARN)},
		},
	})
	if err != nil {
		t.Fatalf("create the orphan schedule: %v", err)
	}
	if r := e.Do("GET", "/followups/"+id, ""); r.Status != 404 {
		t.Fatalf("before the schedule ran: GET %d %s, want 404", r.Status, r.Body)
	}
	var got followup.Followup
	e.WaitUntil("the orphan schedule settles "+id, scheduledSettleTimeout(at), func() bool {
		r := e.Do("GET", "/followups/"+id, "")
		return r.Status == 200 && r.JSON(&got) == nil && got.Status.Terminal()
	})
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropRecordMissing || got.Attempts != 0 || got.ThreadID != thread {
		t.Errorf("followup: status %s, drop_reason %s, attempts %d, thread %q", got.Status, got.DropReason, got.Attempts, got.ThreadID)
	}
	noLaterRequests(t, e, id, 0, time.Second)
	if n := len(e.Thread.Requests("")); n != 0 {
		t.Errorf("the thread got %d requests", n)
	}
	checkDropMetric(t, e, id, followup.DropRecordMissing)
}

func TestSchedulerDeadLetterSettlesScheduleDeliveryFailed(t *testing.T) {
	e := start(t, harness.Options{})
	thread := threadID("undeliverable")
	f, _ := e.Create(createBody(thread, 3600))
	name := eventbridge.ScheduleName(f.ID)
	sch, err := e.Sched.GetSchedule(e.Ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(e.Stack.Group)})
	if err != nil {
		t.Fatalf("the followup's schedule %s: %v", name, err)
	}
	// The schedule as the schedule function made it.
	tgt := sch.Target
	at, err := eventbridge.ParseAt(aws.ToString(sch.ScheduleExpression))
	switch {
	case err != nil:
		t.Errorf("schedule expression: %v", err)
	case !at.Equal(eventbridge.ScheduleTime(f.RunAt)):
		// A minute early, on the minute: Scheduler fires within the
		// minute of at(), always before run_at.
		t.Errorf("schedule at %v for run_at %v, want %v", at, f.RunAt, eventbridge.ScheduleTime(f.RunAt))
	}
	if aws.ToString(tgt.Arn) != e.Stack.FireQueueARN || aws.ToString(tgt.RoleArn) != e.Stack.SchedulerRoleARN ||
		tgt.DeadLetterConfig == nil || aws.ToString(tgt.DeadLetterConfig.Arn) != e.Stack.DLQARN ||
		sch.ActionAfterCompletion != schedtypes.ActionAfterCompletionDelete ||
		sch.FlexibleTimeWindow == nil || sch.FlexibleTimeWindow.Mode != schedtypes.FlexibleTimeWindowModeOff {
		t.Errorf("schedule: target %s role %s dead letter %+v, after completion %s, window %+v",
			aws.ToString(tgt.Arn), aws.ToString(tgt.RoleArn), tgt.DeadLetterConfig, sch.ActionAfterCompletion, sch.FlexibleTimeWindow)
	}
	var msg followup.Message
	if err := json.Unmarshal([]byte(aws.ToString(tgt.Input)), &msg); err != nil || msg.FollowupID != f.ID || msg.ThreadID != thread {
		t.Errorf("target input %q (%v)", aws.ToString(tgt.Input), err)
	}

	// Now make it due, aimed at a queue that does not exist: Scheduler
	// cannot deliver and sends the input to the dead-letter queue.
	missingARN := "arn:aws:sqs:" + e.AWS.Region + ":" + e.Stack.Account + ":followups-e2e-deleted-queue"
	tgt.Arn = aws.String(missingARN)
	// UpdateSchedule replaces the whole schedule, so every field is sent.
	now := time.Now()
	_, err = e.Sched.UpdateSchedule(e.Ctx, &scheduler.UpdateScheduleInput{
		Name: sch.Name, GroupName: sch.GroupName, ScheduleExpression: aws.String(eventbridge.At(now)),
		ScheduleExpressionTimezone: sch.ScheduleExpressionTimezone, FlexibleTimeWindow: sch.FlexibleTimeWindow,
		ActionAfterCompletion: sch.ActionAfterCompletion, State: sch.State, Target: tgt,
	})
	if err != nil {
		t.Fatalf("update the schedule: %v", err)
	}
	got := e.WaitSettled(f.ID, scheduledSettleTimeout(now))
	var fr *harness.Firing
	for _, x := range e.Scheduler.Firings() {
		if x.Schedule == name {
			fr = &x
		}
	}
	if fr == nil || fr.Delivered || !fr.DeadLettered || !fr.Deleted || fr.ErrorCode == "" {
		t.Fatalf("schedule run: %+v", fr)
	}
	t.Logf("Scheduler dead letter: %s: %s", fr.ErrorCode, fr.ErrorMessage)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropScheduleDeliveryFailed || got.Attempts != 0 {
		t.Fatalf("followup: status %s, drop_reason %s, attempts %d", got.Status, got.DropReason, got.Attempts)
	}
	if !strings.Contains(got.LastError, fr.ErrorCode) || !strings.Contains(got.LastError, fr.ErrorMessage) {
		t.Errorf("last_error %q lacks Scheduler's error %s: %s", got.LastError, fr.ErrorCode, fr.ErrorMessage)
	}
	rec := settledBy(t, e, e.DLQPoller, f.ID, "followup dropped: "+string(followup.DropScheduleDeliveryFailed)).Records[0]
	for _, k := range []string{harness.AttrErrorCode, harness.AttrErrorMessage, harness.AttrExecutionID, harness.AttrRetryAttempts,
		harness.AttrScheduledTime, harness.AttrScheduleARN, harness.AttrTargetARN, harness.AttrIsPayloadTruncated} {
		if a, ok := rec.MessageAttributes[k]; !ok || a.DataType != "String" || a.StringValue == nil {
			t.Errorf("dead-letter event attribute %s: %+v", k, a)
		}
	}
	if v := rec.MessageAttributes[harness.AttrTargetARN].StringValue; v == nil || *v != missingARN {
		t.Errorf("TARGET_ARN %v, want %s", v, missingARN)
	}
	if rec.Body != aws.ToString(tgt.Input) {
		t.Errorf("dead-letter body %q, want the target input %q unchanged", rec.Body, aws.ToString(tgt.Input))
	}
	if n := len(e.Thread.Requests("")); n != 0 {
		t.Errorf("the thread got %d requests", n)
	}
	checkDropMetric(t, e, f.ID, followup.DropScheduleDeliveryFailed)
}

func TestUnparsableDeadLetterIsKept(t *testing.T) {
	e := start(t, harness.Options{})
	body := `{"followup_id":"fu_01jq2z7k4mxv8r3t5n6p`
	if b, err := os.ReadFile(filepath.Join(setup.Root, "events", "dlq-unparsable.json")); err == nil {
		var ev struct{ Records []struct{ Body string } }
		if json.Unmarshal(b, &ev) == nil && len(ev.Records) > 0 {
			body = ev.Records[0].Body
		}
	}
	body += " " + threadID("garbled") // unique in the table
	id := e.Send(e.Stack.DLQURL, body)
	e.WaitUntil("the dead letter is acknowledged", settleTimeout, func() bool { return deleted(e.DLQPoller, id) })
	var inv *harness.Invocation
	for _, b := range e.DLQPoller.Batches() {
		if slices.Contains(b.Deleted, id) {
			inv = b.Invocation
		}
	}
	if inv.Err != nil {
		t.Fatalf("the dlq function failed: %v", inv.Err)
	}
	kept := inv.Output.LogsWith("invalid queue message kept as a dead letter")
	if len(kept) != 1 || kept[0]["level"] != "WARN" || kept[0]["dead_letter_id"] == nil {
		t.Errorf("log of the kept message: %v", kept)
	}
	items := scanFor(t, e, body)
	if len(items) != 1 {
		t.Fatalf("%d table items hold the message body, want 1", len(items))
	}
	t.Logf("kept as %v", items[0])
	if got := e.Dropped(""); len(got) != 1 || got[0] != string(followup.DropInvalidMessage) {
		t.Errorf("FollowupDropped DropReason %v, want one invalid_message", got)
	}
}

// scanFor returns the table items that have a string attribute equal to
// value.
func scanFor(t *testing.T, e *harness.Env, value string) []map[string]string {
	t.Helper()
	var out []map[string]string
	p := dynamodb.NewScanPaginator(e.Dynamo, &dynamodb.ScanInput{TableName: aws.String(e.Stack.Table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(e.Ctx)
		if err != nil {
			t.Fatalf("scan %s: %v", e.Stack.Table, err)
		}
		for _, it := range page.Items {
			strs, match := map[string]string{}, false
			for k, v := range it {
				if s, ok := v.(*ddbtypes.AttributeValueMemberS); ok {
					strs[k] = s.Value
					match = match || s.Value == value
				}
			}
			if match {
				out = append(out, strs)
			}
		}
	}
	return out
}
