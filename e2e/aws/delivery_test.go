package awse2e

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/eventbridge"
	"github.com/followups/followups/shared/followup"
)

func TestDelivered(t *testing.T) {
	e := start(t, harness.Options{})

	// A plain create and its fire, alone in their invocations, held to
	// their call budgets.
	plain, plainCreated := e.Create(createBody(threadID("plain"), 1))
	checkBudget(t, plainCreated.Invocation, "create", "schedule", 2)
	if got := e.WaitSettled(plain.ID, settleTimeout); got.Status != followup.StatusDelivered {
		t.Fatalf("plain followup %s: %s", plain.ID, got.Status)
	}
	delivering := settledBy(t, e, e.FirePoller, plain.ID, "followup delivered")
	if n := len(delivering.Records); n != 1 {
		t.Fatalf("the delivering fire batch held %d records; want the plain followup alone", n)
	}
	calls := awsCalls(t, delivering.Invocation, "fire (delivered)")
	setup.Report.AddCalls(harness.CallRecord{Test: t.Name(), Lifecycle: "fire (delivered)", Function: "fire", Calls: calls,
		Budget: "≤ 2 DynamoDB writes, no read"})
	t.Logf("AWS calls, fire (delivered): %s", harness.FormatCalls(calls))
	if w, rd := harness.DynamoWrites(calls), harness.DynamoReads(calls); w > 2 || rd != 0 {
		t.Errorf("a successful fire made %d DynamoDB writes and %d reads (%s); budget 2 writes, no read", w, rd, harness.FormatCalls(calls))
	}

	// Every field of the documented request.
	thread := threadID("delivered")
	body := fmt.Sprintf(`{"thread_id":%q,"prompt":"Check the nightly build.","delay_seconds":1,`+
		`"reason":"waiting on CI","originating_run_id":"run-42","metadata":{"channel":"slack"}}`, thread)
	f, created := e.Create(body)
	if f.Status != followup.StatusScheduled || created.Header["location"] != "/followups/"+f.ID {
		t.Errorf("create: status %s, Location %q", f.Status, created.Header["location"])
	}
	// Replace per run reads the run's slot first: one call more than a
	// plain create, measured but held to no budget here.
	runCalls := awsCalls(t, created.Invocation, "create with originating_run_id")
	setup.Report.AddCalls(harness.CallRecord{Test: t.Name(), Lifecycle: "create (with originating_run_id)", Function: "schedule", Calls: runCalls})
	t.Logf("AWS calls, create with originating_run_id: %d (%s)", harness.TotalCalls(runCalls), harness.FormatCalls(runCalls))

	got := e.WaitSettled(f.ID, settleTimeout)
	if got.Status != followup.StatusDelivered || got.Attempts != 1 || got.DropReason != "" {
		t.Fatalf("followup: status %s, attempts %d, drop_reason %q", got.Status, got.Attempts, got.DropReason)
	}
	if len(got.Runs) != 1 || got.Runs[0].Outcome != followup.OutcomeSuccess || got.Runs[0].HTTPStatus != 201 {
		t.Errorf("runs: %+v", got.Runs)
	}

	reqs := e.Thread.Requests(f.ID)
	if len(reqs) != 1 {
		t.Fatalf("the thread got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if want := "/threads/" + url.PathEscape(thread) + "/messages"; r.RequestURI != want {
		t.Errorf("request URI %q, want %q", r.RequestURI, want)
	}
	for h, want := range map[string]string{
		"Content-Type": "application/json", "Idempotency-Key": f.ID, "X-Followup-Id": f.ID,
		"X-Followup-Attempt": "1", "Authorization": "Bearer " + e.Thread.Token,
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if r.SignatureErr != nil {
		t.Errorf("X-Followup-Signature: %v", r.SignatureErr)
	}
	m := r.Message
	if m.Role != "user" || !m.Synthetic || m.Source != "followup" || m.Content != "Check the nightly build." ||
		m.Followup.ID != f.ID || m.Followup.Reason != "waiting on CI" || m.Followup.OriginatingRunID != "run-42" ||
		m.Followup.Attempt != 1 || m.Followup.DelaySecondsRequested == nil || *m.Followup.DelaySecondsRequested != 1 ||
		string(m.Metadata) != `{"channel":"slack"}` {
		t.Errorf("message: %+v", m)
	}
	if !m.Followup.ScheduledFor.Equal(got.RunAt) || !m.Followup.ScheduledAt.Equal(got.CreatedAt) {
		t.Errorf("scheduled_at %v, scheduled_for %v; followup created_at %v, run_at %v",
			m.Followup.ScheduledAt, m.Followup.ScheduledFor, got.CreatedAt, got.RunAt)
	}
	if r.At.Before(got.RunAt) {
		t.Errorf("delivered at %v, before run_at %v", r.At, got.RunAt)
	}

	// The one-time schedule ran once and deleted itself.
	for _, fr := range e.Scheduler.Firings() {
		if fr.Schedule == eventbridge.ScheduleName(f.ID) && (!fr.Delivered || !fr.Deleted || fr.At.Before(got.RunAt.Truncate(time.Second))) {
			t.Errorf("schedule run: %+v", fr)
		}
	}
	if left := schedules(t, e); len(left) != 0 {
		t.Errorf("schedules left in the group after delivery: %v", left)
	}

	for metric, want := range map[string]int{"FollowupScheduled": 1, "DispatchAttempts": 1, "FollowupDelivered": 1, "FollowupDropped": 0} {
		if n := e.MetricCount(metric, f.ID); n != want {
			t.Errorf("EMF %s printed %d times, want %d", metric, n, want)
		}
	}
	for _, m := range e.Metrics() {
		if ns := m.Namespace(); ns != "Followups" {
			t.Errorf("EMF namespace %q, want Followups", ns)
		}
	}

	list := listThread(t, e, thread, "")
	if len(list) != 1 || list[0].ID != f.ID || list[0].Status != followup.StatusDelivered {
		t.Errorf("list: %+v", list)
	}
}

func TestThreadDeleted(t *testing.T) {
	e := start(t, harness.Options{Thread: always(404, `{"error":"no such thread"}`)})
	f, _ := e.Create(createBody(threadID("deleted"), 1))
	got := e.WaitSettled(f.ID, settleTimeout)
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropThreadNotFound || got.Attempts != 1 {
		t.Fatalf("followup: status %s, drop_reason %s, attempts %d", got.Status, got.DropReason, got.Attempts)
	}
	if len(got.Runs) != 1 || got.Runs[0].Outcome != followup.OutcomeDrop || got.Runs[0].HTTPStatus != 404 {
		t.Errorf("runs: %+v", got.Runs)
	}
	if !strings.Contains(got.LastError, "404") {
		t.Errorf("last_error %q does not name the 404", got.LastError)
	}
	noLaterRequests(t, e, f.ID, 1, 2*time.Second)
	checkDropMetric(t, e, f.ID, followup.DropThreadNotFound)
	if n := len(e.DLQPoller.Batches()); n != 0 {
		t.Errorf("the dlq function got %d batches; a drop at once never reaches the dead-letter queue", n)
	}
	if v, inFlight, _ := e.QueueDepth(e.Stack.FireQueueURL); v+inFlight != 0 {
		t.Errorf("fire queue holds %d visible, %d in flight: the message was not acknowledged", v, inFlight)
	}
}

func TestFlakyThenDelivered(t *testing.T) {
	e := start(t, harness.Options{Thread: func(r harness.ThreadRequest) harness.ThreadAnswer {
		if r.Attempt < 3 {
			return harness.ThreadAnswer{Status: 503, Body: `{"error":"busy"}`}
		}
		return harness.ThreadAnswer{Status: 201, Body: `{"ok":true}`}
	}})
	f, _ := e.Create(createBody(threadID("flaky"), 1))
	got := e.WaitSettled(f.ID, settleTimeout)
	if got.Status != followup.StatusDelivered || got.Attempts != 3 {
		t.Fatalf("followup: status %s, attempts %d, last_error %q", got.Status, got.Attempts, got.LastError)
	}
	want := []followup.Outcome{followup.OutcomeRetryableError, followup.OutcomeRetryableError, followup.OutcomeSuccess}
	if !slices.Equal(runOutcomes(got), want) {
		t.Errorf("run outcomes %v, want %v", runOutcomes(got), want)
	}
	reqs := e.Thread.Requests(f.ID)
	if len(reqs) != 3 {
		t.Fatalf("the thread got %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.Header.Get("Idempotency-Key") != f.ID || r.Attempt != i+1 || r.SignatureErr != nil {
			t.Errorf("request %d: Idempotency-Key %q, attempt %d, signature %v", i+1, r.Header.Get("Idempotency-Key"), r.Attempt, r.SignatureErr)
		}
		if i > 0 && r.At.Sub(reqs[i-1].At) < e.Opts.RetryBase/2 {
			t.Errorf("retry %d came %s after the attempt before it; the wait is at least %s", i, r.At.Sub(reqs[i-1].At), e.Opts.RetryBase/2)
		}
	}
	retried := 0
	for _, b := range batchesWith(e.FirePoller, f.ID) {
		if retried == 0 && len(b.Records) == 1 && len(b.Failures) == 1 {
			calls := awsCalls(t, b.Invocation, "fire (retryable failure)")
			setup.Report.AddCalls(harness.CallRecord{Test: t.Name(), Lifecycle: "fire (retryable failure)", Function: "fire", Calls: calls})
			t.Logf("AWS calls, fire with a retryable failure: %s", harness.FormatCalls(calls))
		}
		retried += len(b.Failures)
	}
	if retried != 2 {
		t.Errorf("the fire function reported %d batch item failures, want 2 (one per retry)", retried)
	}
	if n, d := e.MetricCount("DispatchAttempts", f.ID), e.MetricCount("FollowupDelivered", f.ID); n != 3 || d != 1 {
		t.Errorf("EMF: DispatchAttempts %d (want 3), FollowupDelivered %d (want 1)", n, d)
	}
	if got := e.Dropped(f.ID); len(got) != 0 {
		t.Errorf("FollowupDropped printed for a delivered followup: %v", got)
	}
}

func TestRetriesExhaustedThroughTheDLQ(t *testing.T) {
	e := start(t, harness.Options{Thread: always(503, `{"error":"upstream down"}`)})
	f, _ := e.Create(createBody(threadID("exhausted"), 1))
	got := e.WaitSettled(f.ID, settleTimeout)
	attempts := e.Opts.MaxRetries + 1
	if got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropRetriesExhausted || got.Attempts != attempts {
		t.Fatalf("followup: status %s, drop_reason %s, attempts %d (want %d)", got.Status, got.DropReason, got.Attempts, attempts)
	}
	if !strings.Contains(got.LastError, "503") {
		t.Errorf("last_error %q does not hold the concrete error (503)", got.LastError)
	}
	if n := len(got.Runs); n != attempts {
		t.Errorf("%d runs, want %d", n, attempts)
	}
	for _, r := range got.Runs {
		if r.Outcome != followup.OutcomeRetryableError || r.HTTPStatus != 503 {
			t.Errorf("run %d: outcome %s, http_status %d", r.Attempt, r.Outcome, r.HTTPStatus)
		}
	}
	noLaterRequests(t, e, f.ID, attempts, time.Second)

	// Settled by the dlq function, from the message SQS redrove.
	inv := settledBy(t, e, e.DLQPoller, f.ID, "followup dropped: "+string(followup.DropRetriesExhausted)).Invocation
	t.Logf("settled by the dlq function: last_error %q", got.LastError)
	for _, b := range batchesWith(e.DLQPoller, f.ID) {
		for _, r := range b.Records {
			if _, ok := r.MessageAttributes[harness.AttrErrorCode]; ok {
				t.Errorf("a message redriven by SQS carries %s", harness.AttrErrorCode)
			}
			t.Logf("the redriven message reached the dlq function with ApproximateReceiveCount %s", r.Attributes["ApproximateReceiveCount"])
		}
	}
	var dlqDrops int
	for _, m := range inv.Output.Metrics {
		if m.String("followup_id") == f.ID && slices.Contains(m.Metrics(), "FollowupDropped") {
			dlqDrops++
		}
	}
	if dlqDrops != 1 {
		t.Errorf("the dlq function printed %d FollowupDropped for %s, want 1", dlqDrops, f.ID)
	}
	checkDropMetric(t, e, f.ID, followup.DropRetriesExhausted)
	if n := e.MetricCount("DispatchAttempts", f.ID); n != attempts {
		t.Errorf("EMF DispatchAttempts %d, want %d", n, attempts)
	}
	calls := awsCalls(t, inv, "dlq (retries exhausted)")
	setup.Report.AddCalls(harness.CallRecord{Test: t.Name(), Lifecycle: "dlq (retries exhausted)", Function: "dlq", Calls: calls})
	t.Logf("AWS calls, dlq settle: %s", harness.FormatCalls(calls))
	e.WaitUntil("both queues are empty", 10*time.Second, func() bool {
		v1, f1, _ := e.QueueDepth(e.Stack.FireQueueURL)
		v2, f2, _ := e.QueueDepth(e.Stack.DLQURL)
		return v1+f1+v2+f2 == 0
	})
}

func TestDuplicateFireMessageDispatchesOnce(t *testing.T) {
	e := start(t, harness.Options{HoldFire: true})
	thread := threadID("duplicate")
	f, _ := e.Create(createBody(thread, 1))
	e.WaitUntil("the schedule put the message on the fire queue", 15*time.Second, func() bool {
		v, _, _ := e.QueueDepth(e.Stack.FireQueueURL)
		return v >= 1
	})
	body := messageBody(f.ID, thread)
	for _, fr := range e.Scheduler.Firings() {
		if fr.Schedule == eventbridge.ScheduleName(f.ID) {
			body = fr.Input // the very same bytes
		}
	}
	dup := e.Send(e.Stack.FireQueueURL, body)
	e.StartFire()
	got := e.WaitSettled(f.ID, settleTimeout)
	if got.Status != followup.StatusDelivered || got.Attempts != 1 {
		t.Fatalf("followup: status %s, attempts %d", got.Status, got.Attempts)
	}
	// A late duplicate, after the delivery.
	late := e.Send(e.Stack.FireQueueURL, body)
	e.WaitUntil("the late duplicate is acknowledged", 15*time.Second, func() bool { return deleted(e.FirePoller, late) })
	if n := len(e.Thread.Requests(f.ID)); n != 1 {
		t.Errorf("the thread got %d requests for three copies of the message, want 1", n)
	}
	if n, d := e.MetricCount("DispatchAttempts", f.ID), e.MetricCount("FollowupDelivered", f.ID); n != 1 || d != 1 {
		t.Errorf("EMF: DispatchAttempts %d, FollowupDelivered %d; want 1 and 1", n, d)
	}
	if deleted(e.FirePoller, dup) {
		t.Logf("the duplicate in the same batch was acknowledged (handled after the delivery)")
	} else {
		t.Logf("the duplicate in the same batch was returned for later (another delivery held the claim)")
	}
}

// deleted reports whether the poller deleted message id after an
// invocation.
func deleted(p *harness.Poller, id string) bool {
	for _, b := range p.Batches() {
		if slices.Contains(b.Deleted, id) {
			return true
		}
	}
	return false
}
