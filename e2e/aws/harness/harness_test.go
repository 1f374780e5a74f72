package harness

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func TestRoute(t *testing.T) {
	for _, tc := range []struct {
		method, path, key string
		params            map[string]string
	}{
		{"POST", "/followups", "POST /followups", nil},
		{"GET", "/followups/fu_1", "GET /followups/{id}", map[string]string{"id": "fu_1"}},
		{"DELETE", "/followups/fu_1", "DELETE /followups/{id}", map[string]string{"id": "fu_1"}},
		{"GET", "/threads/t-1/followups", "GET /threads/{thread_id}/followups", map[string]string{"thread_id": "t-1"}},
		{"DELETE", "/threads/t-1/followups", "DELETE /threads/{thread_id}/followups", map[string]string{"thread_id": "t-1"}},
		{"POST", "/followups/fu_1/rearm", "POST /followups/{id}/rearm", map[string]string{"id": "fu_1"}},
		{"POST", "/mcp", "POST /mcp", nil},
		{"GET", "/mcp", "$default", nil},
		{"GET", "/openapi.json", "GET /openapi.json", nil},
		{"PUT", "/followups/fu_1", "$default", nil},
		{"GET", "/", "$default", nil},
		{"GET", "/followups/", "$default", nil},
		// The HTTP API routes on the decoded path: a thread id holding a
		// slash matches no route.
		{"GET", "/threads/a/b/followups", "$default", nil},
	} {
		key, params := route(tc.method, tc.path)
		if key != tc.key || !maps.Equal(params, tc.params) {
			t.Errorf("%s %s: %q %v, want %q %v", tc.method, tc.path, key, params, tc.key, tc.params)
		}
	}
}

func TestEventIsPayload2(t *testing.T) {
	tmpl, err := LoadTemplate(filepath.Join("..", "..", "..", "events", "create.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := &API{Template: tmpl}
	ev, err := a.Event("GET", "/threads/t%201/followups?status=scheduled&limit=2", "", map[string]string{"Accept": "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Version != "2.0" || ev.RouteKey != "GET /threads/{thread_id}/followups" || ev.RawPath != "/threads/t 1/followups" ||
		ev.RawQueryString != "status=scheduled&limit=2" || ev.QueryStringParameters["limit"] != "2" ||
		ev.PathParameters["thread_id"] != "t 1" || ev.RequestContext.HTTP.Method != "GET" ||
		ev.RequestContext.HTTP.Path != ev.RawPath || ev.RequestContext.RouteKey != ev.RouteKey || ev.Headers["accept"] != "application/json" {
		t.Errorf("event: %+v", ev)
	}
	if _, ok := ev.Headers["content-length"]; ok {
		t.Error("a request without a body has a content-length")
	}
	if ev.Body != "" || ev.IsBase64Encoded {
		t.Errorf("body %q, base64 %v", ev.Body, ev.IsBase64Encoded)
	}
}

func TestRecordIsWhatLambdaSends(t *testing.T) {
	m := sqstypes.Message{
		MessageId: aws.String("m-1"), ReceiptHandle: aws.String("rh"), Body: aws.String(`{"followup_id":"fu_1"}`),
		MD5OfBody:  aws.String("md5"),
		Attributes: map[string]string{"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"ERROR_CODE": {DataType: aws.String("String"), StringValue: aws.String("AWS.X")},
		},
		MD5OfMessageAttributes: aws.String("md5a"),
	}
	r := RecordOf(m, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got events.SQSMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := events.SQSMessage{
		MessageId: "m-1", ReceiptHandle: "rh", Body: `{"followup_id":"fu_1"}`, Md5OfBody: "md5", Md5OfMessageAttributes: "md5a",
		Attributes: map[string]string{"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
		MessageAttributes: map[string]events.SQSMessageAttribute{
			"ERROR_CODE": {StringValue: aws.String("AWS.X"), StringListValues: []string{}, BinaryListValues: [][]byte{}, DataType: "String"},
		},
		EventSourceARN: "arn:aws:sqs:us-east-1:123456789012:q", EventSource: "aws:sqs", AWSRegion: "us-east-1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("record\n got %+v\nwant %+v", got, want)
	}
	// Without message attributes Lambda writes md5OfMessageAttributes null.
	m.MessageAttributes, m.MD5OfMessageAttributes = nil, nil
	b, _ = json.Marshal(RecordOf(m, "arn", "us-east-1"))
	if !strings.Contains(string(b), `"md5OfMessageAttributes":null`) || !strings.Contains(string(b), `"messageAttributes":{}`) {
		t.Errorf("record without attributes: %s", b)
	}
}

func TestFunctionError(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   *FunctionError
	}{
		{200, `{"batchItemFailures":[]}`, nil},
		{200, `{"statusCode":200,"body":"{}"}`, nil},
		{200, `null`, nil},
		{200, `{"errorMessage":"boom","errorType":"errorString"}`, &FunctionError{Type: "errorString", Message: "boom"}},
		{502, `{"errorMessage":"pan","errorType":"string","stackTrace":[]}`, &FunctionError{Type: "string", Message: "pan"}},
		{504, ``, &FunctionError{Type: "HTTP 504"}},
	} {
		if got := functionError(tc.status, []byte(tc.body)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%d %s: %+v, want %+v", tc.status, tc.body, got, tc.want)
		}
	}
}

func TestOutputSplitsInvocations(t *testing.T) {
	l := newOutputLog()
	out := strings.Join([]string{
		`{"time":"t","level":"INFO","msg":"started"}`,
		"START RequestId: r1 Version: $LATEST",
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"Followups","Dimensions":[[]],"Metrics":[{"Name":"FollowupDelivered","Unit":"Count"}]}]},"FollowupDelivered":1,"followup_id":"fu_1"}`,
		`{"level":"DEBUG","msg":"aws calls","aws_calls":{"DynamoDB.UpdateItem":2}}`,
		"END RequestId: r1",
		"REPORT RequestId: r1\tDuration: 1.00 ms",
		"START RequestId: r2 Version: $LATEST",
		"not json",
		"END RequestId: r2",
		"REPORT RequestId: r2\tDuration: 1.00 ms",
	}, "\n")
	l.read(strings.NewReader(out))
	r1 := l.wait("r1", time.Second)
	if len(r1.Metrics) != 1 || r1.Metrics[0].Metrics()[0] != "FollowupDelivered" || r1.Metrics[0].Namespace() != "Followups" ||
		r1.Metrics[0].String("followup_id") != "fu_1" {
		t.Errorf("r1 metrics: %+v", r1.Metrics)
	}
	if r1.AWSCalls["DynamoDB.UpdateItem"] != 2 || len(r1.LogsWith("aws calls")) != 1 || len(r1.Logs) != 1 {
		t.Errorf("r1: calls %v, logs %v", r1.AWSCalls, r1.Logs)
	}
	if r2 := l.wait("r2", time.Second); len(r2.Lines) != 1 || len(r2.Logs) != 0 {
		t.Errorf("r2: %+v", r2)
	}
	if len(l.outside) != 1 {
		t.Errorf("lines outside invocations: %v", l.outside)
	}
}

func TestCallCounts(t *testing.T) {
	calls := map[string]int{"DynamoDB.UpdateItem": 2, "DynamoDB.GetItem": 1, "DynamoDB.Query": 1, "SQS.ChangeMessageVisibility": 1}
	if DynamoWrites(calls) != 2 || DynamoReads(calls) != 2 || TotalCalls(calls) != 5 {
		t.Errorf("writes %d, reads %d, total %d", DynamoWrites(calls), DynamoReads(calls), TotalCalls(calls))
	}
}

func TestQueueURL(t *testing.T) {
	got, err := QueueURL("http://127.0.0.1:5000/", "arn:aws:sqs:us-east-1:123456789012:fire")
	if err != nil || got != "http://127.0.0.1:5000/123456789012/fire" {
		t.Errorf("QueueURL: %q %v", got, err)
	}
	if _, err := QueueURL("http://x", "arn:aws:sns:us-east-1:123456789012:topic"); err == nil {
		t.Error("an SNS ARN mapped to a queue URL")
	}
}

func TestReportWrites(t *testing.T) {
	r := &Report{}
	r.AddBinary(Binary{Function: "fire", Bytes: 1 << 20}, "linux/arm64")
	r.AddColdStart("T", ColdStart{Function: "fire", Total: 50 * time.Millisecond})
	r.AddCalls(CallRecord{Test: "T", Lifecycle: "create", Function: "schedule", Calls: map[string]int{"DynamoDB.PutItem": 1}})
	r.AddBatch(BatchRecord{Test: "T", Records: 10, Hanging: 1, TimeoutMS: 3000, TookMS: 3100})
	dir := t.TempDir()
	for _, name := range []string{"r.json", "r.md"} {
		p := filepath.Join(dir, name)
		if err := r.Write(p); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if !strings.Contains(string(b), "DynamoDB.PutItem") {
			t.Errorf("%s: %s", name, b)
		}
	}
	if lo, med, hi, n := r.ColdStartSummary("fire"); n != 1 || lo != 50 || med != 50 || hi != 50 {
		t.Errorf("summary %v %v %v %d", lo, med, hi, n)
	}
}
