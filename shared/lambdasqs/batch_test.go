package lambdasqs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/lambdasqs"
)

// readEvent reads a sample event from the repository's events/ folder, the
// files sam local invoke uses, so that they stay valid.
func readEvent(t *testing.T, name string) events.SQSEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatalf("read sample event: %v", err)
	}
	var e events.SQSEvent
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	if len(e.Records) == 0 {
		t.Fatalf("%s has no records", name)
	}
	return e
}

func records(n int) []events.SQSMessage {
	rs := make([]events.SQSMessage, n)
	for i := range rs {
		rs[i] = events.SQSMessage{MessageId: fmt.Sprintf("m%d", i), ReceiptHandle: fmt.Sprintf("r%d", i), Body: fmt.Sprintf(`{"n":%d}`, i)}
	}
	return rs
}

func TestBatchRunsRecordsConcurrently(t *testing.T) {
	const n, slow = 10, 4
	rs := records(n)
	release := make(chan struct{})
	finished := make(chan string, n)
	handle := func(ctx context.Context, d followup.Delivery) followup.Verdict {
		body := d.Body
		if string(body) == rs[slow].Body {
			<-release // a thread API that hangs
		}
		finished <- string(body)
		return followup.Ack
	}
	done := make(chan events.SQSEventResponse)
	go func() { done <- lambdasqs.Batch(context.Background(), rs, handle, nil, nil) }()

	// Every other record finishes while the slow one is still blocked. If
	// records ran one after another, this would never complete; the
	// timer only turns a hang into a failure.
	failAfter := time.After(30 * time.Second)
	for range n - 1 {
		select {
		case body := <-finished:
			if body == rs[slow].Body {
				t.Fatal("the blocked record finished before it was released")
			}
		case <-failAfter:
			t.Fatal("the other records did not finish while one record was blocked: records are not handled concurrently")
		}
	}
	select {
	case <-done:
		t.Fatal("Batch returned before its blocked record finished")
	default:
	}
	close(release)
	select {
	case resp := <-done:
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("failures = %v, want none", resp.BatchItemFailures)
		}
	case <-failAfter:
		t.Fatal("Batch did not return after the blocked record was released")
	}
}

type visibilityCall struct {
	receipt string
	d       time.Duration
}

func TestBatchVerdicts(t *testing.T) {
	panics := followup.Verdict{After: -42} // a marker: the handler panics
	tests := []struct {
		name          string
		verdict       followup.Verdict
		visibilityErr error
		noVisibility  bool
		wantFailure   bool
		wantCalls     []visibilityCall
	}{
		{name: "ack deletes", verdict: followup.Ack},
		{name: "retry with a wait", verdict: followup.RetryAfter(90 * time.Second), wantFailure: true, wantCalls: []visibilityCall{{"r0", 90 * time.Second}}},
		{name: "retry rounds the wait up", verdict: followup.RetryAfter(1500 * time.Millisecond), wantFailure: true, wantCalls: []visibilityCall{{"r0", 2 * time.Second}}},
		{name: "retry rounds a nanosecond up", verdict: followup.RetryAfter(time.Nanosecond), wantFailure: true, wantCalls: []visibilityCall{{"r0", time.Second}}},
		{name: "retry at once", verdict: followup.RetryAfter(0), wantFailure: true, wantCalls: []visibilityCall{{"r0", 0}}},
		{name: "negative wait is zero", verdict: followup.RetryAfter(-time.Second), wantFailure: true, wantCalls: []visibilityCall{{"r0", 0}}},
		{name: "visibility fails: still a failure", verdict: followup.RetryAfter(5 * time.Second), visibilityErr: errors.New("throttled"),
			wantFailure: true, wantCalls: []visibilityCall{{"r0", 5 * time.Second}}},
		{name: "no visibility: failure only", verdict: followup.RetryAfter(5 * time.Second), noVisibility: true, wantFailure: true},
		{name: "panicking handler fails its record", verdict: panics, wantFailure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var calls []visibilityCall
			visibility := func(_ context.Context, receipt string, d time.Duration) error {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, visibilityCall{receipt, d})
				return tt.visibilityErr
			}
			if tt.noVisibility {
				visibility = nil
			}
			handle := func(context.Context, followup.Delivery) followup.Verdict {
				if tt.verdict == panics {
					panic("boom")
				}
				return tt.verdict
			}
			resp := lambdasqs.Batch(context.Background(), records(1), handle, visibility, nil)
			var want []events.SQSBatchItemFailure
			if tt.wantFailure {
				want = []events.SQSBatchItemFailure{{ItemIdentifier: "m0"}}
			}
			if len(resp.BatchItemFailures) != len(want) || (len(want) > 0 && !reflect.DeepEqual(resp.BatchItemFailures, want)) {
				t.Errorf("failures = %v, want %v", resp.BatchItemFailures, want)
			}
			if !reflect.DeepEqual(calls, tt.wantCalls) {
				t.Errorf("visibility calls = %v, want %v", calls, tt.wantCalls)
			}
		})
	}
}

func TestBatchReportsOnlyTheRecordsToKeep(t *testing.T) {
	rs := records(5)
	handle := func(_ context.Context, d followup.Delivery) followup.Verdict {
		var m struct{ N int }
		_ = json.Unmarshal(d.Body, &m)
		if m.N%2 == 1 {
			return followup.RetryAfter(time.Duration(m.N) * time.Second)
		}
		return followup.Ack
	}
	var mu sync.Mutex
	waits := map[string]time.Duration{}
	visibility := func(_ context.Context, receipt string, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits[receipt] = d
		return nil
	}
	resp := lambdasqs.Batch(context.Background(), rs, handle, visibility, nil)
	want := []events.SQSBatchItemFailure{{ItemIdentifier: "m1"}, {ItemIdentifier: "m3"}}
	if !reflect.DeepEqual(resp.BatchItemFailures, want) {
		t.Errorf("failures = %v, want %v", resp.BatchItemFailures, want)
	}
	if wantWaits := map[string]time.Duration{"r1": time.Second, "r3": 3 * time.Second}; !reflect.DeepEqual(waits, wantWaits) {
		t.Errorf("waits = %v, want %v", waits, wantWaits)
	}
	b, _ := json.Marshal(lambdasqs.Batch(context.Background(), nil, handle, visibility, nil))
	if string(b) != `{"batchItemFailures":[]}` {
		t.Errorf("empty response = %s", b)
	}
}

func TestBatchPassesSampleEvents(t *testing.T) {
	tests := []struct {
		file      string
		wantAttrs []map[string]string
	}{
		{file: "fire-batch.json", wantAttrs: []map[string]string{nil, nil}},
		{file: "fire-duplicate.json", wantAttrs: []map[string]string{nil, nil}},
		{file: "dlq-redriven.json", wantAttrs: []map[string]string{nil}},
		{file: "dlq-unparsable.json", wantAttrs: []map[string]string{nil}},
		{file: "dlq-scheduler.json", wantAttrs: []map[string]string{{
			"ERROR_CODE":                "AWS.Scheduler.InternalServerError",
			"ERROR_MESSAGE":             "Unexpected error occurred while processing the request.",
			"EXECUTION_ID":              "6d3f9a2b-1c7e-4b85-a0d4-e2f8c1b7a935-9",
			"EXHAUSTED_RETRY_CONDITION": "MaximumEventAgeInSeconds",
			"IS_PAYLOAD_TRUNCATED":      "false",
			"RETRY_ATTEMPTS":            "9",
			"SCHEDULED_TIME":            "2026-03-12T21:03:58Z",
			"SCHEDULE_ARN":              "arn:aws:scheduler:us-east-1:123456789012:schedule/followups-dev-ScheduleGroup-Z1X2C3V4B5N6/fu_01jq2z9c5ne2fpb7g8s1hzkqv4",
			"TARGET_ARN":                "arn:aws:sqs:us-east-1:123456789012:followups-dev-FireQueue-Q1W2E3R4T5Y6",
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			e := readEvent(t, tt.file)
			var mu sync.Mutex
			seen := map[string]map[string]string{}
			handle := func(_ context.Context, d followup.Delivery) followup.Verdict {
				mu.Lock()
				defer mu.Unlock()
				seen[string(d.Body)+"|"+fmt.Sprint(len(seen))] = d.Attributes
				return followup.RetryAfter(time.Second)
			}
			var receipts []string
			visibility := func(_ context.Context, receipt string, _ time.Duration) error {
				mu.Lock()
				defer mu.Unlock()
				receipts = append(receipts, receipt)
				return nil
			}
			resp := lambdasqs.Batch(context.Background(), e.Records, handle, visibility, nil)
			if len(resp.BatchItemFailures) != len(e.Records) || len(receipts) != len(e.Records) {
				t.Fatalf("failures %v, visibility calls %v, for %d records", resp.BatchItemFailures, receipts, len(e.Records))
			}
			for i, r := range e.Records {
				if resp.BatchItemFailures[i].ItemIdentifier != r.MessageId {
					t.Errorf("failure %d = %q, want %q", i, resp.BatchItemFailures[i].ItemIdentifier, r.MessageId)
				}
				if got := lambdasqs.Attributes(&e.Records[i]); !reflect.DeepEqual(got, tt.wantAttrs[i]) {
					t.Errorf("record %d attributes = %v, want %v", i, got, tt.wantAttrs[i])
				}
			}
			if len(seen) != len(e.Records) {
				t.Errorf("handled %d bodies, want %d", len(seen), len(e.Records))
			}
		})
	}
}

// A handler that panics with a value quoting the message (a prompt, say)
// fails its record and logs where it panicked, never the value.
func TestBatchPanicLogsNoValue(t *testing.T) {
	const marker = "PROMPT-MARKER-6c1d"
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	handle := func(_ context.Context, d followup.Delivery) followup.Verdict {
		panic("could not handle " + marker + string(d.Body))
	}
	rs := records(1)
	rs[0].Body = `{"prompt":"` + marker + `"}`
	resp := lambdasqs.Batch(context.Background(), rs, handle, nil, log)
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("failures %v, want the panicking record", resp.BatchItemFailures)
	}
	line := buf.String()
	if strings.Contains(line, marker) {
		t.Fatalf("the panic's value reached the log: %s", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	if m["panic_type"] != "string" || !strings.Contains(fmt.Sprint(m["panic_at"]), "batch_test.go") {
		t.Fatalf("panic_type %v, panic_at %v: want the type and the test's line", m["panic_type"], m["panic_at"])
	}
}

func TestDeliveryReceiveCount(t *testing.T) {
	for give, want := range map[string]int{"": 1, "1": 1, "7": 7, "junk": 1} {
		m := events.SQSMessage{Body: "b", Attributes: map[string]string{"ApproximateReceiveCount": give}}
		if d := lambdasqs.Delivery(&m); d.ReceiveCount != want || string(d.Body) != "b" {
			t.Errorf("ApproximateReceiveCount %q: delivery %+v, want receive count %d", give, d, want)
		}
	}
}

func TestAttributesKeepsOnlyStrings(t *testing.T) {
	s := func(v string) *string { return &v }
	m := events.SQSMessage{MessageAttributes: map[string]events.SQSMessageAttribute{
		"ERROR_CODE": {DataType: "String", StringValue: s("X")},
		"CUSTOM":     {DataType: "String.json", StringValue: s("{}")},
		"COUNT":      {DataType: "Number", StringValue: s("3")},
		"BLOB":       {DataType: "Binary", BinaryValue: []byte{1}},
		"EMPTY":      {DataType: "String"},
	}}
	want := map[string]string{"ERROR_CODE": "X", "CUSTOM": "{}"}
	if got := lambdasqs.Attributes(&m); !reflect.DeepEqual(got, want) {
		t.Errorf("attributes = %v, want %v", got, want)
	}
}

func TestRoundUp(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		0: 0, -time.Hour: 0, time.Nanosecond: time.Second, time.Second: time.Second,
		time.Second + time.Millisecond: 2 * time.Second, 12 * time.Hour: 12 * time.Hour,
	} {
		if got := lambdasqs.RoundUp(d); got != want {
			t.Errorf("RoundUp(%v) = %v, want %v", d, got, want)
		}
	}
}
