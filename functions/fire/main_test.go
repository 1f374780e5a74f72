package main

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/followups/followups/functions/internal/fntest"
	"github.com/followups/followups/shared/awscount"
	"github.com/followups/followups/shared/awstest"
	"github.com/followups/followups/shared/dispatch"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
)

func validEnv() map[string]string {
	return map[string]string{
		"FOLLOWUPS_TABLE":          "followups-dev-FollowupsTable-1QW2ER3TY4UI",
		"FOLLOWUPS_FIRE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/fire",
		"FOLLOWUPS_FIRE_QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:fire",
		"FOLLOWUPS_DLQ_URL":        "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
		"THREAD_API_URL":           "https://threads.example.com",
	}
}

func TestBadSettingFailsColdStart(t *testing.T) {
	fntest.ColdStartFails(t, validEnv, func(lookup func(string) (string, bool)) error {
		_, err := newHandler(context.Background(), lookup, &fntest.Output{}, &fntest.Output{})
		return err
	}, []fntest.BadSetting{
		{Name: "missing table", Variable: "FOLLOWUPS_TABLE", Value: "<unset>"},
		{Name: "missing queue URL", Variable: "FOLLOWUPS_FIRE_QUEUE_URL", Value: "<unset>"},
		{Name: "missing queue ARN", Variable: "FOLLOWUPS_FIRE_QUEUE_ARN", Value: "<unset>"},
		{Name: "missing dead-letter queue URL", Variable: "FOLLOWUPS_DLQ_URL", Value: "<unset>"},
		{Name: "receive limit below AWS's minimum", Variable: "FOLLOWUPS_MAX_RECEIVE_COUNT", Value: "4"},
		{Name: "receive limit below the retry budget", Variable: "FOLLOWUPS_MAX_RECEIVE_COUNT", Value: "6", Also: map[string]string{"FOLLOWUPS_MAX_RETRIES": "5"}},
		{Name: "bad token secret ARN", Variable: "THREAD_API_TOKEN_SECRET_ARN", Value: "followups/token"},
		{Name: "token both plain and secret", Variable: "THREAD_API_TOKEN_SECRET_ARN", Value: "arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf", Also: map[string]string{"THREAD_API_TOKEN": "tok"}},
		{Name: "bad signing secret ARN", Variable: "FOLLOWUPS_SIGNING_SECRET_ARN", Value: "arn:aws:s3:::bucket"},
		{Name: "bad thread API URL", Variable: "THREAD_API_URL", Value: "threads.example.com"},
		{Name: "bad thread API token", Variable: "THREAD_API_TOKEN", Value: "line\nbreak"},
		{Name: "bad dispatch timeout", Variable: "FOLLOWUPS_DISPATCH_TIMEOUT", Value: "soon"},
		{Name: "bad max retries", Variable: "FOLLOWUPS_MAX_RETRIES", Value: "-1"},
		{Name: "bad retention", Variable: "FOLLOWUPS_RETENTION", Value: "forever"},
	})
}

// TestMainExitsOnBadSetting runs main in a child process with a bad
// setting: a failed cold start is exit status 1 with one line naming the
// variable on stderr.
func TestMainExitsOnBadSetting(t *testing.T) {
	if fntest.RunMainIfAsked(main) {
		return
	}
	env := validEnv()
	env["FOLLOWUPS_DISPATCH_TIMEOUT"] = "soon"
	fntest.MainExits(t, "TestMainExitsOnBadSetting", env, "fire: FOLLOWUPS_DISPATCH_TIMEOUT")
}

// threadAPI is a thread API that answers with status and records what it
// received.
type threadAPI struct {
	mu       sync.Mutex
	status   int
	received []*http.Request
}

func (a *threadAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.received = append(a.received, r)
	w.WriteHeader(a.status)
}

func (a *threadAPI) answer(status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status = status
	a.received = nil
}

func (a *threadAPI) requests() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.received
}

type fixture struct {
	t      *testing.T
	cfg    aws.Config
	stack  fntest.Stack
	store  *dynamo.Store
	stdout *fntest.Output
	stderr *fntest.Output
	n      int
	// env holds more variables for the handler.
	env map[string]string
}

func newFixture(t *testing.T) *fixture {
	cfg := fntest.AWSEnv(t)
	x := &fixture{t: t, cfg: cfg, stack: fntest.NewStack(t, cfg, 4), stdout: &fntest.Output{}, stderr: &fntest.Output{}}
	x.store = dynamo.New(dynamodb.NewFromConfig(cfg), x.stack.Table, dynamo.Options{})
	return x
}

func (x *fixture) handler(threadAPIURL string) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	x.t.Helper()
	env := map[string]string{
		"FOLLOWUPS_TABLE":          x.stack.Table,
		"FOLLOWUPS_FIRE_QUEUE_URL": x.stack.FireQueueURL,
		"FOLLOWUPS_FIRE_QUEUE_ARN": x.stack.FireQueueARN,
		"FOLLOWUPS_DLQ_URL":        x.stack.DLQURL,
		"FOLLOWUPS_LOG_LEVEL":      "debug",
	}
	maps.Copy(env, x.env)
	if threadAPIURL != "" {
		env["THREAD_API_URL"] = threadAPIURL
	}
	h, err := newHandler(context.Background(), fntest.Lookup(env), x.stdout, x.stderr)
	if err != nil {
		x.t.Fatal(err)
	}
	x.stderr.Take(x.t)
	return h
}

// due creates a followup that is due now, as if made two minutes ago.
func (x *fixture) due(thread string) *followup.Followup {
	x.t.Helper()
	return x.dueIn(thread, -time.Minute)
}

// dueIn creates a followup due in d.
func (x *fixture) dueIn(thread string, d time.Duration) *followup.Followup {
	x.t.Helper()
	svc, err := followup.New(followup.Config{Store: x.store, Scheduler: inmem.NewScheduler(), Clock: past{time.Minute - d}})
	if err != nil {
		x.t.Fatal(err)
	}
	req, err := followup.ParseCreate([]byte(`{"thread_id":"` + thread + `","prompt":"did the build pass?","delay_seconds":60}`))
	if err != nil {
		x.t.Fatal(err)
	}
	c, err := svc.Create(context.Background(), req, "")
	if err != nil {
		x.t.Fatal(err)
	}
	return c.Followup
}

// release makes one failed attempt on f directly in the store.
func (x *fixture) release(f *followup.Followup) {
	x.t.Helper()
	now := time.Now()
	claimed, err := x.store.Apply(context.Background(), f.ID, followup.Claim(now, time.Minute, 4))
	if err != nil {
		x.t.Fatal(err)
	}
	run := followup.Run{Attempt: claimed.Attempts, StartedAt: now, FinishedAt: now, Outcome: followup.OutcomeRetryableError, HTTPStatus: 503, Error: "HTTP 503"}
	if _, err := x.store.Apply(context.Background(), f.ID, followup.Release(claimed, run, now)); err != nil {
		x.t.Fatal(err)
	}
}

// receive waits a few seconds for one message on queue url.
func (x *fixture) receive(url string) *sqstypes.Message {
	x.t.Helper()
	out, err := awssqs.NewFromConfig(x.cfg).ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: 1, WaitTimeSeconds: 5,
	})
	if err != nil {
		x.t.Fatal(err)
	}
	if len(out.Messages) == 0 {
		return nil
	}
	return &out.Messages[0]
}

type past struct{ ago time.Duration }

func (p past) Now() time.Time { return time.Now().Add(-p.ago) }

// batch puts each followup's message on the fire queue and receives them,
// so that every record has a receipt handle SQS knows, and returns them as
// Lambda would, shaped like events/fire-batch.json.
func (x *fixture) batch(fs ...*followup.Followup) events.SQSEvent {
	x.t.Helper()
	var sample events.SQSEvent
	fntest.ReadEvent(x.t, "fire-batch.json", &sample)
	ctx := context.Background()
	q := awssqs.NewFromConfig(x.cfg)
	for _, f := range fs {
		b, _ := json.Marshal(followup.MessageFor(f))
		if _, err := q.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(x.stack.FireQueueURL), MessageBody: aws.String(string(b))}); err != nil {
			x.t.Fatal(err)
		}
	}
	var e events.SQSEvent
	for len(e.Records) < len(fs) {
		out, err := q.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(x.stack.FireQueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			x.t.Fatal(err)
		}
		for _, m := range out.Messages {
			r := sample.Records[0]
			r.MessageId, r.ReceiptHandle, r.Body = aws.ToString(m.MessageId), aws.ToString(m.ReceiptHandle), aws.ToString(m.Body)
			r.EventSourceARN = x.stack.FireQueueARN
			e.Records = append(e.Records, r)
		}
	}
	return e
}

// invoke runs one invocation with timeout left and returns the response
// and the AWS calls it made.
func (x *fixture) invoke(h func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), e events.SQSEvent, timeout time.Duration) (events.SQSEventResponse, map[string]int) {
	x.t.Helper()
	x.n++
	id := "req-" + string(rune('a'+x.n))
	resp, err := h(fntest.Invocation(x.t, id, timeout), e)
	if err != nil {
		x.t.Fatal(err)
	}
	return resp, fntest.Calls(x.t, x.stderr.Take(x.t), id)
}

func (x *fixture) get(id string) *followup.Followup {
	x.t.Helper()
	f, err := x.store.Get(context.Background(), id)
	if err != nil {
		x.t.Fatal(err)
	}
	return f
}

func failures(resp events.SQSEventResponse) []string {
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func TestFireOnAWS(t *testing.T) {
	x := newFixture(t)
	api := &threadAPI{}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	handle := x.handler(srv.URL)

	t.Run("delivered: two writes, no read", func(t *testing.T) {
		api.answer(http.StatusOK)
		f := x.due("t-123")
		resp, calls := x.invoke(handle, x.batch(f), 2*time.Minute)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures = %v", failures(resp))
		}
		if got := x.get(f.ID); got.Status != followup.StatusDelivered || got.Attempts != 1 {
			t.Errorf("followup is %s after %d attempts, want delivered after 1", got.Status, got.Attempts)
		}
		if reqs := api.requests(); len(reqs) != 1 || reqs[0].Header.Get("Idempotency-Key") != f.ID {
			t.Errorf("thread API received %d requests", len(reqs))
		}
		if calls["DynamoDB.UpdateItem"] > 2 || awscount.Total(calls, "DynamoDB") != calls["DynamoDB.UpdateItem"] || awscount.Total(calls, "") != calls["DynamoDB.UpdateItem"] {
			t.Errorf("a delivery made %v, want at most two UpdateItem and nothing else", calls)
		}
	})

	t.Run("retry: visibility set, record reported", func(t *testing.T) {
		api.answer(http.StatusServiceUnavailable)
		f := x.due("t-456")
		e := x.batch(f)
		resp, calls := x.invoke(handle, e, 2*time.Minute)
		if got := failures(resp); len(got) != 1 || got[0] != e.Records[0].MessageId {
			t.Fatalf("failures = %v, want %s", got, e.Records[0].MessageId)
		}
		if got := x.get(f.ID); got.Status != followup.StatusScheduled || got.Attempts != 1 {
			t.Errorf("followup is %s after %d attempts, want scheduled after 1", got.Status, got.Attempts)
		}
		if calls["SQS.ChangeMessageVisibility"] != 1 {
			t.Errorf("a retry made %v, want one ChangeMessageVisibility", calls)
		}
	})

	t.Run("a batch: each record on its own", func(t *testing.T) {
		api.answer(http.StatusOK)
		fs := []*followup.Followup{x.due("t-1"), x.due("t-2"), x.due("t-3")}
		resp, _ := x.invoke(handle, x.batch(fs...), 2*time.Minute)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures = %v", failures(resp))
		}
		for _, f := range fs {
			if got := x.get(f.ID); got.Status != followup.StatusDelivered {
				t.Errorf("followup %s is %s, want delivered", f.ID, got.Status)
			}
		}
	})

	t.Run("last attempt failed: moved to the dead-letter queue", func(t *testing.T) {
		api.answer(http.StatusServiceUnavailable)
		f := x.due("t-last")
		for range 3 {
			x.release(f)
		}
		e := x.batch(f)
		resp, calls := x.invoke(handle, e, 2*time.Minute)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures = %v: a moved message is deleted from the fire queue", failures(resp))
		}
		if calls["SQS.SendMessage"] != 1 || calls["SQS.ChangeMessageVisibility"] != 0 {
			t.Errorf("the last attempt made %v, want one SendMessage", calls)
		}
		if got := x.get(f.ID); got.Status != followup.StatusScheduled || got.Attempts != 4 {
			t.Errorf("followup is %s after %d attempts, want scheduled after 4 (the dlq function settles it)", got.Status, got.Attempts)
		}
		if m := x.receive(x.stack.DLQURL); m == nil || aws.ToString(m.Body) != e.Records[0].Body {
			t.Errorf("the dead-letter queue holds %v, want the fire message", m)
		}
	})

	t.Run("early: sent back as a new message for the rest", func(t *testing.T) {
		api.answer(http.StatusOK)
		f := x.dueIn("t-early", 3*time.Second)
		e := x.batch(f)
		resp, calls := x.invoke(handle, e, 2*time.Minute)
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("failures = %v: an early message is replaced, not kept", failures(resp))
		}
		if calls["SQS.SendMessage"] != 1 || len(api.requests()) != 0 {
			t.Errorf("an early message made %v and %d dispatches, want one SendMessage", calls, len(api.requests()))
		}
		var m *sqstypes.Message
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if m = x.receive(x.stack.FireQueueURL); m != nil && aws.ToString(m.Body) == e.Records[0].Body {
				break
			}
		}
		if m == nil || aws.ToString(m.Body) != e.Records[0].Body {
			t.Fatalf("the fire queue does not hold the message again")
		}
		if got := time.Now(); got.Before(f.RunAt) {
			t.Errorf("the new message arrived at %s, before the followup was due at %s", got, f.RunAt)
		}
	})

	t.Run("too little time left: given back unclaimed", func(t *testing.T) {
		api.answer(http.StatusOK)
		f := x.due("t-789")
		e := x.batch(f)
		resp, calls := x.invoke(handle, e, 3*time.Second) // less than the 10 s dispatch timeout
		if got := failures(resp); len(got) != 1 {
			t.Fatalf("failures = %v, want the record", got)
		}
		if got := x.get(f.ID); got.Status != followup.StatusScheduled || got.Attempts != 0 {
			t.Errorf("followup is %s after %d attempts, want untouched", got.Status, got.Attempts)
		}
		if awscount.Total(calls, "DynamoDB") != 0 || len(api.requests()) != 0 {
			t.Errorf("an unclaimed record made %v and %d dispatches", calls, len(api.requests()))
		}
	})
}

// The thread API token and the signing secret come from Secrets Manager:
// read once at cold start, sent on every attempt, never in the
// environment.
func TestFireReadsSecrets(t *testing.T) {
	x := newFixture(t)
	sm := secretsmanager.NewFromConfig(x.cfg)
	secret := func(name, value string) string {
		out, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(awstest.Name(name)), SecretString: aws.String(value)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ARN)
	}
	x.env = map[string]string{
		"THREAD_API_TOKEN_SECRET_ARN":  secret("token", "tok-from-secrets-manager"),
		"FOLLOWUPS_SIGNING_SECRET_ARN": secret("signing", "sign-from-secrets-manager"),
	}
	api := &threadAPI{status: http.StatusOK}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	handle := x.handler(srv.URL)
	f := x.due("t-secret")
	if resp, _ := x.invoke(handle, x.batch(f), 2*time.Minute); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures = %v", failures(resp))
	}
	reqs := api.requests()
	if len(reqs) != 1 || reqs[0].Header.Get("Authorization") != "Bearer tok-from-secrets-manager" {
		t.Fatalf("thread API got %d requests, Authorization %q", len(reqs), reqs[0].Header.Get("Authorization"))
	}
	if reqs[0].Header.Get(dispatch.SignatureHeader) == "" {
		t.Fatal("no signature with a signing secret from Secrets Manager")
	}

	// A secret that cannot be read fails the cold start, naming the variable.
	x.env["FOLLOWUPS_SIGNING_SECRET_ARN"] = strings.Replace(x.env["FOLLOWUPS_SIGNING_SECRET_ARN"], "signing", "gone", 1)
	env := map[string]string{
		"FOLLOWUPS_TABLE": x.stack.Table, "FOLLOWUPS_FIRE_QUEUE_URL": x.stack.FireQueueURL, "FOLLOWUPS_FIRE_QUEUE_ARN": x.stack.FireQueueARN,
		"FOLLOWUPS_DLQ_URL": x.stack.DLQURL, "THREAD_API_URL": srv.URL,
	}
	maps.Copy(env, x.env)
	_, err := newHandler(context.Background(), fntest.Lookup(env), x.stdout, x.stderr)
	if err == nil || !strings.HasPrefix(err.Error(), "FOLLOWUPS_SIGNING_SECRET_ARN") {
		t.Fatalf("cold start with an unreadable secret: %v, want an error naming FOLLOWUPS_SIGNING_SECRET_ARN", err)
	}
}

func TestFireWithoutThreadAPI(t *testing.T) {
	x := newFixture(t)
	handle := x.handler("")
	f := x.due("t-123")
	resp, _ := x.invoke(handle, x.batch(f), 2*time.Minute)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures = %v", failures(resp))
	}
	got := x.get(f.ID)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropDispatcherUnconfigured || got.Attempts != 1 {
		t.Errorf("followup is %s (%s) after %d attempts, want failed_dropped (dispatcher_unconfigured) after 1",
			got.Status, got.DropReason, got.Attempts)
	}
}
