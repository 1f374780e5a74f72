package awse2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
)

// throttle plays Lambda throttling the fire function for the batches that
// carry followup id: the first n of them (all of them for n < 0) are
// received and never invoked.
type throttle struct {
	mu   sync.Mutex
	id   string
	n    int
	done int
	// every, when set, throttles every other batch of id instead.
	every bool
}

func (th *throttle) batch(records []harness.SQSRecord) bool {
	th.mu.Lock()
	defer th.mu.Unlock()
	if th.id == "" {
		return false
	}
	for _, r := range records {
		if !strings.Contains(r.Body, th.id) {
			continue
		}
		switch {
		case th.every:
			th.done++
			return th.done%2 == 1
		case th.n < 0 || th.done < th.n:
			th.done++
			return true
		}
	}
	return false
}

func (th *throttle) set(id string) {
	th.mu.Lock()
	defer th.mu.Unlock()
	th.id = id
}

func (th *throttle) count() int {
	th.mu.Lock()
	defer th.mu.Unlock()
	return th.done
}

// A throttled receive spends a receive, never an attempt: after six of
// them the followup is delivered on its first attempt.
func TestThrottledReceivesSpendNoAttempt(t *testing.T) {
	th := &throttle{n: 6}
	e := start(t, harness.Options{Throttle: th.batch, FireVisibility: time.Second})
	f, _ := e.Create(createBody(threadID("throttled"), 1))
	th.set(f.ID)
	got := e.WaitSettled(f.ID, settleTimeout)
	if got.Status != followup.StatusDelivered || got.Attempts != 1 || len(e.Thread.Requests(f.ID)) != 1 {
		t.Fatalf("followup: status %s, attempts %d, %d requests", got.Status, got.Attempts, len(e.Thread.Requests(f.ID)))
	}
	if n := th.count(); n != 6 {
		t.Fatalf("%d throttled receives, want 6", n)
	}
	if n := len(e.DLQPoller.Batches()); n != 0 {
		t.Errorf("the dlq function got %d batches", n)
	}
}

// A thread that is always down, with throttles mixed in: exactly the four
// attempts of the budget, then retries_exhausted from the dlq function.
func TestThrottledAndFailingExhaustsTheAttempts(t *testing.T) {
	th := &throttle{every: true}
	e := start(t, harness.Options{Throttle: th.batch, FireVisibility: time.Second, Thread: always(503, `{"error":"down"}`)})
	f, _ := e.Create(createBody(threadID("throttled-down"), 1))
	th.set(f.ID)
	got := e.WaitSettled(f.ID, settleTimeout)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropRetriesExhausted || got.Attempts != 4 || len(got.Runs) != 4 {
		t.Fatalf("followup: status %s (%s), attempts %d, runs %d", got.Status, got.DropReason, got.Attempts, len(got.Runs))
	}
	if n := len(e.Thread.Requests(f.ID)); n != 4 {
		t.Fatalf("the thread got %d requests, want 4", n)
	}
	if th.count() < 4 {
		t.Errorf("only %d throttled receives", th.count())
	}
	settledBy(t, e, e.DLQPoller, f.ID, "followup dropped: "+string(followup.DropRetriesExhausted))
}

// DynamoDB fails under the fire function for a while (every request a 500,
// through the SDK's own retries): the receives that meet it make no
// attempt, and once it is back the followup is delivered on its first.
func TestDynamoDBOutageSpendsNoAttempt(t *testing.T) {
	e := start(t, harness.Options{HoldFire: true})
	f, _ := e.Create(createBody(threadID("ddb-down"), 1))
	e.Faults.DynamoDown(true)
	e.StartFire()
	e.WaitUntil("the fire function meets the outage", 30*time.Second, func() bool {
		return e.Faults.Failed()["UpdateItem"] >= 3
	})
	time.Sleep(3 * time.Second) // a few more receives meet it
	e.Faults.DynamoDown(false)
	got := e.WaitSettled(f.ID, 2*settleTimeout)
	if got.Status != followup.StatusDelivered || got.Attempts != 1 || len(e.Thread.Requests(f.ID)) != 1 {
		t.Fatalf("followup: status %s, attempts %d, %d requests", got.Status, got.Attempts, len(e.Thread.Requests(f.ID)))
	}
	hidden := 0
	for _, b := range batchesWith(e.FirePoller, f.ID) {
		hidden += len(b.Failures)
	}
	if hidden == 0 {
		t.Fatal("no receive met the outage")
	}
	t.Logf("%d receives met the outage (%v DynamoDB requests failed); delivered after it on attempt 1", hidden, e.Faults.Failed())
	if n := len(e.DLQPoller.Batches()); n != 0 {
		t.Errorf("the dlq function got %d batches", n)
	}
}

// The queue gives up on a message (its receive limit) while the followup
// has every attempt left: the dlq function sends it back, and it is
// delivered.
func TestQueueGiveUpSendsBack(t *testing.T) {
	th := &throttle{n: 5}
	e := start(t, harness.Options{Throttle: th.batch, FireVisibility: time.Second, MaxReceiveCount: 5})
	f, _ := e.Create(createBody(threadID("given-up"), 1))
	th.set(f.ID)
	got := e.WaitSettled(f.ID, 2*settleTimeout)
	if got.Status != followup.StatusDelivered || got.Attempts != 1 {
		t.Fatalf("followup: status %s, attempts %d", got.Status, got.Attempts)
	}
	sentBack := false
	for _, b := range batchesWith(e.DLQPoller, f.ID) {
		if len(b.Invocation.Output.LogsWith("queue gave up on a followup with attempts left; sent back")) > 0 {
			sentBack = true
		}
	}
	if !sentBack {
		t.Fatal("the dlq function did not send the message back")
	}
}

// A queue that gives up on the message again and again: after the third
// return the fourth give-up settles queue_exhausted, saying so.
func TestQueueExhausted(t *testing.T) {
	th := &throttle{n: -1}
	e := start(t, harness.Options{Throttle: th.batch, FireVisibility: time.Second, MaxReceiveCount: 5})
	f, _ := e.Create(createBody(threadID("queue-exhausted"), 1))
	th.set(f.ID)
	got := e.WaitSettled(f.ID, 3*settleTimeout)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropQueueExhausted || got.Attempts != 0 {
		t.Fatalf("followup: status %s (%s), attempts %d", got.Status, got.DropReason, got.Attempts)
	}
	for _, part := range []string{"4 times", "0 of 4 attempts"} {
		if !strings.Contains(got.LastError, part) {
			t.Errorf("last_error %q does not say %q", got.LastError, part)
		}
	}
	if n := len(e.Thread.Requests(f.ID)); n != 0 {
		t.Errorf("the thread got %d requests", n)
	}
	checkDropMetric(t, e, f.ID, followup.DropQueueExhausted)
}

// A followup whose message was lost six minutes ago (the record as the
// schedule function writes it, no message anywhere) is found by the sweep,
// invoked with the event its EventBridge rule sends, and delivered.
func TestSweepRedrivesALostMessage(t *testing.T) {
	e := start(t, harness.Options{})
	store := dynamo.New(dynamodb.NewFromConfig(e.AWS), e.Stack.Table, dynamo.Options{})
	now := time.Now()
	svc, err := followup.New(followup.Config{Store: store, Scheduler: lost{}, Clock: at(now.Add(-7 * time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	req, err := followup.ParseCreate([]byte(createBody(threadID("lost"), 60)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.Create(context.Background(), req, "")
	if err != nil {
		t.Fatal(err)
	}
	f := c.Followup

	event, err := os.ReadFile(filepath.Join(setup.Root, "events", "sweep.json"))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := e.Sweep.Invoke(e.Ctx, event)
	if err != nil || inv.Err != nil {
		t.Fatalf("sweep: %v %v", err, inv.Err)
	}
	var res struct{ Redriven int }
	if err := json.Unmarshal(inv.Payload, &res); err != nil || res.Redriven != 1 {
		t.Fatalf("sweep answered %s (%v), want redriven 1", inv.Payload, err)
	}
	calls := awsCalls(t, inv, "sweep (one lost message)")
	setup.Report.AddCalls(harness.CallRecord{Test: t.Name(), Lifecycle: "sweep (one lost message)", Function: "sweep", Calls: calls,
		Budget: "one Query a run; one SendMessage and one UpdateItem per followup sent again"})
	if calls["DynamoDB.Query"] != 1 || calls["SQS.SendMessage"] != 1 || calls["DynamoDB.UpdateItem"] != 1 || harness.TotalCalls(calls) != 3 {
		t.Errorf("the sweep made %s", harness.FormatCalls(calls))
	}
	redriven := 0
	for _, m := range inv.Output.Metrics {
		if m.String("followup_id") == f.ID && len(m.Metrics()) == 1 && m.Metrics()[0] == "FollowupRedriven" {
			redriven++
		}
	}
	if redriven != 1 || len(inv.Output.LogsWith("followup redriven: its message seems lost, so the sweep sent it again")) != 1 {
		t.Errorf("FollowupRedriven printed %d times; logs %v", redriven, inv.Output.Lines)
	}
	got := e.WaitSettled(f.ID, settleTimeout)
	if got.Status != followup.StatusDelivered || got.Attempts != 1 {
		t.Fatalf("followup: status %s, attempts %d", got.Status, got.Attempts)
	}

	// Not again within the hour: the next run finds nothing.
	again, err := e.Sweep.Invoke(e.Ctx, event)
	if err != nil || again.Err != nil || !strings.Contains(string(again.Payload), `"redriven":0`) {
		t.Fatalf("second sweep: %s %v %v", again.Payload, err, again.Err)
	}
}

// lost is a scheduler whose schedules are lost.
type lost struct{}

func (lost) Schedule(context.Context, *followup.Followup) error { return nil }
func (lost) Unschedule(context.Context, string) error           { return nil }

// at is a clock stopped at one time.
type at time.Time

func (a at) Now() time.Time { return time.Time(a) }
