package samlocal_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/e2e/samlocal"
	"github.com/followups/followups/shared/eventbridge"
	"github.com/followups/followups/shared/followup"
)

// sampleEvent is what one file of events/ is for and what sam local
// invoke of it must answer, on a local stack made anew and empty.
type sampleEvent struct {
	function string
	check    func(t *testing.T, f *fixture, r *samlocal.Invocation)
}

// sampleEvents has an entry for every file of events/ but env.json:
// TestSampleEventsHaveExpectations fails for a file without one.
var sampleEvents = map[string]sampleEvent{
	"create.json": {"ScheduleFunction", func(t *testing.T, f *fixture, r *samlocal.Invocation) {
		resp := apiResponse(t, r, 201)
		var got followup.Followup
		decode(t, []byte(resp.Body), &got)
		if got.Status != followup.StatusScheduled || got.ThreadID != "t-123" || got.OriginatingRunID != "run-42" ||
			resp.Headers["Location"] != "/followups/"+got.ID {
			t.Errorf("created: status %s, thread %q, run %q, Location %q", got.Status, got.ThreadID, got.OriginatingRunID, resp.Headers["Location"])
		}
		// Its one-time schedule, made in moto through LocalAwsEndpoint.
		name := eventbridge.ScheduleName(got.ID)
		sch, err := scheduler.NewFromConfig(f.aws).GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(f.stack.Group)})
		if err != nil {
			t.Fatalf("the followup's schedule %s in group %s: %v", name, f.stack.Group, err)
		}
		if arn := aws.ToString(sch.Target.Arn); arn != f.stack.FireQueueARN {
			t.Errorf("the schedule targets %s, want the fire queue %s", arn, f.stack.FireQueueARN)
		}
	}},
	"get.json": {"ScheduleFunction", func(t *testing.T, f *fixture, r *samlocal.Invocation) {
		apiError(t, apiResponse(t, r, 404), "not_found")
	}},
	"fire-batch.json": {"FireFunction", func(t *testing.T, f *fixture, r *samlocal.Invocation) {
		noBatchFailures(t, r)
		// Nothing created them: both settle record_missing.
		for _, id := range []string{"fu_01jq2z7k4mxv8r3t5n6p9wbcde", "fu_01jq2z8a3hq6vw0xk4t9rmyd7s"} {
			dropped(t, f, r, id, followup.DropRecordMissing)
		}
	}},
	"fire-duplicate.json": {"FireFunction", func(t *testing.T, f *fixture, r *samlocal.Invocation) {
		// Two messages of one followup in one batch, handled side by side:
		// the followup is settled once. The message that lost the race, if
		// one did, is given back to look at again (it then finds the
		// followup settled), never both.
		var resp events.SQSEventResponse
		decode(t, r.Response, &resp)
		if len(resp.BatchItemFailures) > 1 || len(resp.BatchItemFailures) == 1 &&
			!slices.Contains([]string{"3f6c2a1e-8b4d-4c7a-9e21-5d0b7f3a9c11", "c51d7e90-4a3b-4f62-8d1e-0b9a6c2f7e58"}, resp.BatchItemFailures[0].ItemIdentifier) {
			t.Errorf("response %s, want at most one of the two messages back", r.Response)
		}
		dropped(t, f, r, "fu_01jq2z7k4mxv8r3t5n6p9wbcde", followup.DropRecordMissing)
	}},
	"dlq-redriven.json": {"DlqFunction", func(t *testing.T, f *fixture, r *samlocal.Invocation) {
		noBatchFailures(t, r)
		dropped(t, f, r, "fu_01jq2z7k4mxv8r3t5n6p9wbcde", followup.DropRecordMissing)
	}},
	"dlq-scheduler.json": {"DlqFunction", func(t *testing.T, f *fixture, r *samlocal.Invocation) {
		noBatchFailures(t, r)
		got := dropped(t, f, r, "fu_01jq2z9c5ne2fpb7g8s1hzkqv4", followup.DropScheduleDeliveryFailed)
		if !strings.Contains(got.LastError, "AWS.Scheduler.InternalServerError") {
			t.Errorf("last_error %q does not give Scheduler's error code", got.LastError)
		}
	}},
	"dlq-scheduler-wrapped.json": {"DlqFunction", func(t *testing.T, f *fixture, r *samlocal.Invocation) {
		// Scheduler's documented dead letter for an SQS target: the input
		// wrapped as {"MessageBody", "QueueUrl"}.
		noBatchFailures(t, r)
		got := dropped(t, f, r, "fu_01jq2z9c5ne2fpb7g8s1hzkqv4", followup.DropScheduleDeliveryFailed)
		if !strings.Contains(got.LastError, "AWS.Scheduler.InternalServerError") {
			t.Errorf("last_error %q does not give Scheduler's error code", got.LastError)
		}
	}},
	"sweep.json": {"SweepFunction", func(t *testing.T, f *fixture, r *samlocal.Invocation) {
		// An empty stack has nothing overdue: one query, nothing sent.
		var got struct {
			Redriven *int `json:"redriven"`
		}
		decode(t, r.Response, &got)
		if got.Redriven == nil || *got.Redriven != 0 {
			t.Errorf("response %s, want {\"redriven\":0}", r.Response)
		}
		if !strings.Contains(r.Output, "sweep done") {
			t.Errorf("the function did not log its run:\n%s", r.Output)
		}
	}},
	"dlq-unparsable.json": {"DlqFunction", func(t *testing.T, f *fixture, r *samlocal.Invocation) {
		noBatchFailures(t, r)
		if got := dropReasons(r, ""); !slices.Equal(got, []string{string(followup.DropInvalidMessage)}) {
			t.Errorf("FollowupDropped metrics: DropReason %v, want one %s", got, followup.DropInvalidMessage)
		}
		if !strings.Contains(r.Output, "invalid queue message kept as a dead letter") {
			t.Errorf("the function did not log that it kept the dead letter:\n%s", r.Output)
		}
	}},
}

// TestSampleEventsHaveExpectations ties events/ to the template and to
// sampleEvents, with no Docker needed: every sample event has an
// expectation for a function of the template, every function of the
// template has a sample event and its variables in events/env.json.
func TestSampleEventsHaveExpectations(t *testing.T) {
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := samlocal.ReadTemplate(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	functions := tmpl.Functions()
	if len(functions) == 0 {
		t.Fatal("template.yaml declares no AWS::Serverless::Function")
	}
	files := sampleEventFiles(t, root)
	for _, name := range files {
		e, ok := sampleEvents[name]
		switch {
		case !ok:
			t.Errorf("events/%s has no expectation: add one to sampleEvents in e2e/samlocal/events_test.go (the function it is for and what sam local invoke must answer)", name)
		case !slices.Contains(functions, e.function):
			t.Errorf("sampleEvents[%q] is for %s, which template.yaml does not declare (it has %v)", name, e.function, functions)
		}
	}
	for name := range sampleEvents {
		if !slices.Contains(files, name) {
			t.Errorf("sampleEvents has %s, which is not in events/: remove the expectation", name)
		}
	}
	env, err := samlocal.ReadEnvFile(filepath.Join(root, "events", "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range functions {
		if !slices.ContainsFunc(files, func(name string) bool { return sampleEvents[name].function == fn }) {
			t.Errorf("template function %s has no sample event: add one to events/ and its expectation to sampleEvents", fn)
		}
		if _, ok := env[fn]; !ok {
			t.Errorf("events/env.json has no variables for template function %s: add them, naming the local stack", fn)
		}
	}
	for fn := range env {
		if !slices.Contains(functions, fn) {
			t.Errorf("events/env.json has variables for %s, which template.yaml does not declare", fn)
		}
	}
	if _, err := samlocal.StackOf(env); err != nil {
		t.Errorf("events/env.json: %v", err)
	}
}

// sampleEventFiles lists events/*.json but env.json.
func sampleEventFiles(t *testing.T, root string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		if name := filepath.Base(p); name != "env.json" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		t.Fatal("events/ has no sample event")
	}
	return names
}

// apiResponse decodes an API Gateway response with status.
func apiResponse(t *testing.T, r *samlocal.Invocation, status int) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var resp events.APIGatewayV2HTTPResponse
	decode(t, r.Response, &resp)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, resp.Body)
	}
	if ct := resp.Headers["Content-Type"]; ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return resp
}

// apiError checks the contract's error document with code.
func apiError(t *testing.T, resp events.APIGatewayV2HTTPResponse, code string) {
	t.Helper()
	var doc struct {
		Error struct{ Code, Message string }
	}
	decode(t, []byte(resp.Body), &doc)
	if doc.Error.Code != code || doc.Error.Message == "" {
		t.Errorf(`body %s, want {"error":{"code":%q,"message":...}}`, resp.Body, code)
	}
}

// noBatchFailures checks an SQS handler's response: no item failed.
func noBatchFailures(t *testing.T, r *samlocal.Invocation) {
	t.Helper()
	var resp events.SQSEventResponse
	decode(t, r.Response, &resp)
	if resp.BatchItemFailures == nil || len(resp.BatchItemFailures) != 0 {
		t.Errorf("response %s, want no batchItemFailures", r.Response)
	}
}

// dropped checks that followup id was settled failed_dropped with reason,
// once, and returns it as stored.
func dropped(t *testing.T, f *fixture, r *samlocal.Invocation, id string, reason followup.DropReason) *followup.Followup {
	t.Helper()
	got, err := f.store.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("followup %s: %v", id, err)
	}
	if got.Status != followup.StatusFailedDropped || got.DropReason != reason {
		t.Errorf("followup %s: status %s, drop_reason %q; want failed_dropped, %s", id, got.Status, got.DropReason, reason)
	}
	if n := dropReasons(r, id); !slices.Equal(n, []string{string(reason)}) {
		t.Errorf("FollowupDropped metrics for %s: DropReason %v, want one %s", id, n, reason)
	}
	return got
}

// dropReasons returns the DropReason of every FollowupDropped document
// the function printed for followup id (for any, when id is empty).
func dropReasons(r *samlocal.Invocation, id string) []string {
	var out []string
	for _, line := range strings.Split(r.Output, "\n") {
		if !strings.HasPrefix(line, `{"_aws"`) {
			continue
		}
		var doc struct {
			FollowupID string `json:"followup_id"`
			DropReason string
			Dropped    *int `json:"FollowupDropped"`
		}
		if json.Unmarshal([]byte(line), &doc) == nil && doc.Dropped != nil && (id == "" || doc.FollowupID == id) {
			out = append(out, doc.DropReason)
		}
	}
	return out
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
