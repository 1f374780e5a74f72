package awscount_test

import (
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/followups/followups/shared/awscount"
)

// answer is an HTTP client that answers every request with 200 and "{}",
// so the SDK's calls complete without a network.
type answer struct {
	mu       sync.Mutex
	requests int
	status   int
}

func (a *answer) Do(*http.Request) (*http.Response, error) {
	a.mu.Lock()
	a.requests++
	a.mu.Unlock()
	status := a.status
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": []string{"application/x-amz-json-1.0"}},
		Body:       io.NopCloser(strings.NewReader("{}")),
	}, nil
}

func config(h *answer) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("a", "b", ""),
		BaseEndpoint: aws.String("http://127.0.0.1:1"),
		HTTPClient:   h,
	}
}

func TestCountsPerServiceAndOperation(t *testing.T) {
	var c awscount.Counter
	cfg := config(&answer{})
	c.Add(&cfg)
	db := dynamodb.NewFromConfig(cfg)
	sched := scheduler.NewFromConfig(cfg)

	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := db.ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil {
				t.Errorf("ListTables: %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := db.DescribeLimits(t.Context(), &dynamodb.DescribeLimitsInput{}); err != nil {
		t.Fatalf("DescribeLimits: %v", err)
	}
	before := c.Snapshot()
	if _, err := sched.ListScheduleGroups(t.Context(), &scheduler.ListScheduleGroupsInput{}); err != nil {
		t.Fatalf("ListScheduleGroups: %v", err)
	}

	want := map[string]int{"DynamoDB.ListTables": n, "DynamoDB.DescribeLimits": 1, "Scheduler.ListScheduleGroups": 1}
	if got := c.Snapshot(); !maps.Equal(got, want) {
		t.Fatalf("Snapshot = %v, want %v", got, want)
	}
	if got := c.Delta(before); !maps.Equal(got, map[string]int{"Scheduler.ListScheduleGroups": 1}) {
		t.Fatalf("Delta = %v, want one ListScheduleGroups", got)
	}
	if got := awscount.Total(c.Snapshot(), "DynamoDB"); got != n+1 {
		t.Fatalf("Total DynamoDB = %d, want %d", got, n+1)
	}
	if got := awscount.Total(c.Snapshot(), ""); got != n+2 {
		t.Fatalf("Total = %d, want %d", got, n+2)
	}
	c.Reset()
	if got := c.Snapshot(); len(got) != 0 {
		t.Fatalf("Snapshot after Reset = %v, want empty", got)
	}
}

func TestRetriesAreOneCall(t *testing.T) {
	var c awscount.Counter
	h := &answer{status: http.StatusServiceUnavailable}
	cfg := config(h)
	c.Add(&cfg)
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.RetryMaxAttempts = 3 })
	if _, err := db.ListTables(t.Context(), &dynamodb.ListTablesInput{}); err == nil {
		t.Fatalf("ListTables against a 503: no error")
	}
	if h.requests != 3 {
		t.Fatalf("%d HTTP requests, want 3 (the SDK's retries)", h.requests)
	}
	if got := c.Snapshot(); !maps.Equal(got, map[string]int{"DynamoDB.ListTables": 1}) {
		t.Fatalf("Snapshot = %v, want one ListTables call", got)
	}
}

func TestOneClientOnly(t *testing.T) {
	var c awscount.Counter
	cfg := config(&answer{})
	counted := dynamodb.NewFromConfig(cfg, dynamodb.WithAPIOptions(c.APIOption))
	other := dynamodb.NewFromConfig(cfg)
	for _, db := range []*dynamodb.Client{counted, other} {
		if _, err := db.ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil {
			t.Fatalf("ListTables: %v", err)
		}
	}
	if got := c.Snapshot(); !maps.Equal(got, map[string]int{"DynamoDB.ListTables": 1}) {
		t.Fatalf("Snapshot = %v, want only the counted client's call", got)
	}
}
