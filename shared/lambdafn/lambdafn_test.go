package lambdafn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/followups/followups/shared/awscount"
	"github.com/followups/followups/shared/lambdafn"
)

func logLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		lines = append(lines, m)
	}
	return lines
}

func invocationContext(id string) context.Context {
	return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: id})
}

func TestLogHandlerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(lambdafn.LogHandler(slog.NewJSONHandler(&buf, nil))).With("fn", "fire")
	var wg sync.WaitGroup
	for _, id := range []string{"req-a", "req-b"} {
		wg.Go(func() { log.InfoContext(invocationContext(id), "hello", "who", id) })
	}
	wg.Wait()
	log.Info("outside an invocation")
	lines := logLines(t, &buf)
	if len(lines) != 3 {
		t.Fatalf("got %d lines", len(lines))
	}
	for _, l := range lines[:2] {
		if l[lambdafn.KeyAWSRequestID] != l["who"] || l["fn"] != "fire" {
			t.Errorf("line %v: %s should be %v", l, lambdafn.KeyAWSRequestID, l["who"])
		}
	}
	if _, ok := lines[2][lambdafn.KeyAWSRequestID]; ok {
		t.Errorf("line outside an invocation has a request id: %v", lines[2])
	}
}

// ddb returns a DynamoDB client on a fake endpoint that answers every call
// with an empty ListTables result, its calls counted by calls.
func ddb(t *testing.T, calls *awscount.Counter) *dynamodb.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Write([]byte(`{"TableNames":[]}`))
	}))
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), BaseEndpoint: aws.String(srv.URL)}
	calls.Add(&cfg)
	return dynamodb.NewFromConfig(cfg)
}

func TestInvocationLogsCallsOfEachInvocation(t *testing.T) {
	var calls awscount.Counter
	client := ddb(t, &calls)
	var buf bytes.Buffer
	log := slog.New(lambdafn.LogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))

	// Records of one batch make their calls concurrently; all count.
	handle := lambdafn.Invocation(log, &calls, func(ctx context.Context, n int) (string, error) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if _, err := client.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		return "done", nil
	})
	for i, n := range []int{5, 1, 0} {
		out, err := handle(invocationContext("req-"+string(rune('a'+i))), n)
		if out != "done" || err != nil {
			t.Fatalf("handler returned %q, %v", out, err)
		}
	}
	lines := logLines(t, &buf)
	want := []map[string]any{{"DynamoDB.ListTables": 5.0}, {"DynamoDB.ListTables": 1.0}, {}}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d: %v", len(lines), len(want), lines)
	}
	for i, l := range lines {
		if l["msg"] != lambdafn.MsgAWSCalls || l["level"] != "DEBUG" || l[lambdafn.KeyAWSRequestID] != "req-"+string(rune('a'+i)) {
			t.Errorf("line %d = %v", i, l)
		}
		if !reflect.DeepEqual(l["aws_calls"], want[i]) {
			t.Errorf("line %d aws_calls = %v, want %v", i, l["aws_calls"], want[i])
		}
	}
}
