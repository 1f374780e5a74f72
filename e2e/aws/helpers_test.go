package awse2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/followup"
)

// settleTimeout bounds how long any one followup may take to settle; a
// retry chain of four attempts and the dead-letter queue takes about ten
// seconds.
const settleTimeout = 45 * time.Second

// scheduledSettleTimeout bounds the wait for a followup whose schedule is
// set for at: Scheduler runs a schedule at a moment of at()'s minute (its
// 60-second precision, which the harness plays at random), so the wait is
// the rest of that minute and then settleTimeout.
func scheduledSettleTimeout(at time.Time) time.Duration {
	return time.Until(at.Truncate(time.Minute).Add(time.Minute)) + settleTimeout
}

// start brings up a deployment for a parallel test.
func start(t *testing.T, opts harness.Options) *harness.Env {
	t.Helper()
	t.Parallel()
	return harness.Start(t, setup, opts)
}

// threadID returns a thread id no other test uses.
func threadID(name string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "t-" + name + "-" + hex.EncodeToString(b[:])
}

// always answers every thread request the same way.
func always(status int, body string) func(harness.ThreadRequest) harness.ThreadAnswer {
	return func(harness.ThreadRequest) harness.ThreadAnswer {
		return harness.ThreadAnswer{Status: status, Body: body}
	}
}

// createBody is a create request for thread with delay seconds.
func createBody(thread string, delay int) string {
	b, _ := json.Marshal(map[string]any{
		"thread_id": thread, "prompt": "Check whether the nightly build finished and report back.", "delay_seconds": delay,
	})
	return string(b)
}

// messageBody is the fire-queue message of followup id on thread.
func messageBody(id, thread string) string {
	b, _ := json.Marshal(followup.Message{FollowupID: id, ThreadID: thread})
	return string(b)
}

// batchesWith returns the poller's batches that carried a record whose
// body names followup id.
func batchesWith(p *harness.Poller, id string) []harness.Batch {
	var out []harness.Batch
	for _, b := range p.Batches() {
		if slices.ContainsFunc(b.Records, func(r harness.SQSRecord) bool { return strings.Contains(r.Body, id) }) {
			out = append(out, b)
		}
	}
	return out
}

// settledBy waits until the poller has recorded the batch whose
// invocation logged msg for followup id (the poller records a batch once
// it has deleted what succeeded, a moment after the function settled it)
// and returns it.
func settledBy(t *testing.T, e *harness.Env, p *harness.Poller, id, msg string) harness.Batch {
	t.Helper()
	var found *harness.Batch
	e.WaitUntil("the "+p.Fn.FunctionName()+" function's batch that logged "+msg+" for "+id+" is recorded", 10*time.Second, func() bool {
		for _, b := range batchesWith(p, id) {
			for _, l := range b.Invocation.Output.LogsWith(msg) {
				if l["followup_id"] == id {
					found = &b
					return true
				}
			}
		}
		return false
	})
	return *found
}

// checkBudget asserts that inv logged its AWS calls and made at most max,
// and records them.
func checkBudget(t *testing.T, inv *harness.Invocation, step, fn string, max int) map[string]int {
	t.Helper()
	calls := awsCalls(t, inv, step)
	n := harness.TotalCalls(calls)
	setup.Report.AddCalls(harness.CallRecord{Test: t.Name(), Lifecycle: step, Function: fn, Calls: calls, Budget: "≤ " + strconv.Itoa(max) + " calls"})
	t.Logf("AWS calls, %s: %d (%s)", step, n, harness.FormatCalls(calls))
	if n > max {
		t.Errorf("%s made %d AWS calls (%s), budget %d", step, n, harness.FormatCalls(calls), max)
	}
	return calls
}

// awsCalls returns the calls of inv's "aws calls" line, failing the test
// when the function did not log one.
func awsCalls(t *testing.T, inv *harness.Invocation, step string) map[string]int {
	t.Helper()
	if inv == nil {
		t.Fatalf("%s: no invocation found", step)
	}
	if len(inv.Output.LogsWith("aws calls")) == 0 {
		t.Fatalf(`%s: the function logged no {"msg":"aws calls"} line at FOLLOWUPS_LOG_LEVEL=debug; output:
%s`, step, strings.Join(inv.Output.Lines, "\n"))
	}
	return inv.Output.AWSCalls
}

// runOutcomes lists the outcome of each run.
func runOutcomes(f *followup.Followup) []followup.Outcome {
	var out []followup.Outcome
	for _, r := range f.Runs {
		out = append(out, r.Outcome)
	}
	return out
}

// noLaterRequests waits d and checks the thread got no request for id
// beyond the want it had.
func noLaterRequests(t *testing.T, e *harness.Env, id string, want int, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if got := len(e.Thread.Requests(id)); got != want {
		t.Errorf("the thread got %d requests for %s, want %d", got, id, want)
	}
}

// checkDropMetric asserts that exactly one FollowupDropped with reason was
// printed for id, and no FollowupDelivered.
func checkDropMetric(t *testing.T, e *harness.Env, id string, reason followup.DropReason) {
	t.Helper()
	if got := e.Dropped(id); len(got) != 1 || got[0] != string(reason) {
		t.Errorf("FollowupDropped metrics for %s: DropReason %v, want exactly one %s", id, got, reason)
	}
	if n := e.MetricCount("FollowupDelivered", id); n != 0 {
		t.Errorf("FollowupDelivered printed %d times for dropped %s", n, id)
	}
}
