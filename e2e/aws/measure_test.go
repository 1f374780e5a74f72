package awse2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/followup"
)

// TestBootstrapSizes reports the size of each bootstrap as the tests run
// it (this host) and as sam build deploys it (linux/arm64, -trimpath).
func TestBootstrapSizes(t *testing.T) {
	setup.Require(t)
	t.Parallel()
	for _, fn := range harness.Functions {
		b := setup.Bootstraps[fn]
		setup.Report.AddBinary(b, b.GOOS+"/"+b.GOARCH+" (tested)")
		t.Logf("bootstrap %-8s %s/%s: %d bytes (%.1f MiB)", fn, b.GOOS, b.GOARCH, b.Bytes, float64(b.Bytes)/(1<<20))
	}
	t.Logf("host build of the three bootstraps took %s", setup.BuildTime.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, took, err := harness.Build(ctx, setup.Root, setup.Dir(), harness.DeployTarget)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("linux/arm64 build took %s", took.Round(time.Millisecond))
	for _, fn := range harness.Functions {
		b := bins[fn]
		setup.Report.AddBinary(b, "linux/arm64 -trimpath (deployed)")
		t.Logf("bootstrap %-8s linux/arm64 (deployed): %d bytes (%.1f MiB)", fn, b.Bytes, float64(b.Bytes)/(1<<20))
		if b.Bytes > 64<<20 {
			t.Errorf("%s is %d bytes; a zipped Lambda package holds at most 250 MB unzipped, and this is far past any sensible size", fn, b.Bytes)
		}
	}
}

// TestColdStart reports each function's cold start under the emulator:
// from starting the emulator process to the first invocation's response
// (the emulator starts the bootstrap on that invocation).
func TestColdStart(t *testing.T) {
	e := start(t, harness.Options{})
	for _, f := range []*harness.Function{e.Schedule, e.Fire, e.DLQ} {
		c := f.ColdStart
		t.Logf("cold start %-8s %7.1f ms (emulator listening %.1f ms, bootstrap init %.1f ms, first invocation %.1f ms)",
			c.Function, ms(c.Total), ms(c.Listening), ms(c.Init), ms(c.Invoke))
		if c.Total > 10*time.Second {
			t.Errorf("%s took %s to answer its first invocation", c.Function, c.Total)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// TestFireBatchWithAHangingThread sends the fire function a batch of ten
// due followups, one of whose threads hangs until the dispatch timeout.
// The batch must take about one timeout, not ten: the function dispatches
// a batch's records side by side.
func TestFireBatchWithAHangingThread(t *testing.T) {
	const timeout = 3 * time.Second
	hang := threadID("hang")
	e := start(t, harness.Options{DispatchTimeout: timeout, HoldFire: true, Thread: func(r harness.ThreadRequest) harness.ThreadAnswer {
		if r.Attempt == 1 && strings.Contains(r.RequestURI, hang) {
			return harness.ThreadAnswer{Hang: true}
		}
		return harness.ThreadAnswer{Status: 201, Body: `{"ok":true}`}
	}})
	var ids []string
	var hangID string
	for i := range 10 {
		thread := threadID(fmt.Sprint("batch", i))
		if i == 4 {
			thread = hang
		}
		f, _ := e.Create(createBody(thread, 1))
		ids = append(ids, f.ID)
		if thread == hang {
			hangID = f.ID
		}
	}
	e.WaitUntil("the ten messages are on the fire queue", 20*time.Second, func() bool {
		v, _, _ := e.QueueDepth(e.Stack.FireQueueURL)
		return v == 10
	})
	e.StartFire()
	for _, id := range ids {
		if got := e.WaitSettled(id, settleTimeout); got.Status != followup.StatusDelivered {
			t.Errorf("%s: %s (%s)", id, got.Status, got.LastError)
		}
	}
	batches := e.FirePoller.Batches()
	if len(batches) == 0 || len(batches[0].Records) != 10 {
		var sizes []int
		for _, b := range batches {
			sizes = append(sizes, len(b.Records))
		}
		t.Fatalf("fire batches of %v records; want the first to hold all ten", sizes)
	}
	first := batches[0]
	took := first.Invocation.Took
	setup.Report.AddBatch(harness.BatchRecord{Test: t.Name(), Records: 10, Hanging: 1, TimeoutMS: ms(timeout), TookMS: ms(took)})
	t.Logf("a fire batch of 10 with one thread hanging took %s at a dispatch timeout of %s (%.2f timeouts)",
		took.Round(time.Millisecond), timeout, float64(took)/float64(timeout))
	if took < timeout*9/10 {
		t.Errorf("the batch took %s, less than the dispatch timeout %s: the thread did not hang?", took, timeout)
	}
	if took >= 2*timeout {
		t.Errorf("the batch took %s, not about one dispatch timeout (%s): are records dispatched one after another?", took, timeout)
	}
	var failed []string
	for _, r := range first.Records {
		if slices.Contains(first.Failures, r.MessageID) {
			failed = append(failed, r.Body)
		}
	}
	if len(failed) != 1 || !strings.Contains(failed[0], hangID) || len(first.Deleted) != 9 {
		t.Errorf("batch item failures %v (want only %s's), %d deleted (want 9)", failed, hangID, len(first.Deleted))
	}
	if got := e.Get(hangID); got.Attempts != 2 || len(got.Runs) != 2 || !strings.Contains(strings.ToLower(got.Runs[0].Error), "timeout") {
		t.Errorf("hanging followup: attempts %d, runs %+v", got.Attempts, got.Runs)
	}
}

// TestLateness measures how late deliveries reach the thread on both
// paths: followups due within FOLLOWUPS_DIRECT_WITHIN of their create go
// straight to the fire queue with a delay; later ones get a schedule a
// minute early, which the harness's Scheduler fires at a random second of
// its minute (as EventBridge Scheduler does), and the fire function sends
// the early message back for the rest. Nothing may arrive early; the
// figures are printed and reported, not asserted (the machine is shared).
func TestLateness(t *testing.T) {
	e := start(t, harness.Options{DirectWithin: 2 * time.Minute, MinDelay: time.Second})
	type sent struct {
		f    *followup.Followup
		path string
	}
	var all []sent
	for i := range 12 {
		f, _ := e.Create(createBody(threadID(fmt.Sprint("late-direct-", i)), 2+i%7))
		all = append(all, sent{f, "direct"})
	}
	for i := range 8 {
		f, _ := e.Create(createBody(threadID(fmt.Sprint("late-scheduler-", i)), 125+5*i))
		all = append(all, sent{f, "scheduler"})
	}
	for _, s := range all {
		got := e.WaitSettled(s.f.ID, 5*time.Minute)
		reqs := e.Thread.Requests(s.f.ID)
		if got.Status != followup.StatusDelivered || len(reqs) != 1 {
			t.Errorf("%s (%s): %s after %d requests", s.f.ID, s.path, got.Status, len(reqs))
			continue
		}
		late := reqs[0].At.Sub(got.RunAt)
		if late < 0 {
			t.Errorf("%s (%s) reached the thread %s before its run_at", s.f.ID, s.path, -late)
		}
		setup.Report.AddLateness(s.path, late)
	}
	for _, path := range []string{"direct", "scheduler"} {
		p50, p99, hi, lo, n := setup.Report.LatenessSummary(path)
		t.Logf("lateness, %s path, %d deliveries: p50 %.0f ms, p99 %.0f ms, max %.0f ms, min %.0f ms", path, n, p50, p99, hi, lo)
	}
	early := 0
	for _, fr := range e.Scheduler.Firings() {
		if fr.Delivered && fr.FiredAt.Before(fr.At.Add(time.Minute)) {
			early++
		}
	}
	if early == 0 {
		t.Errorf("no schedule fired: the scheduler path was not taken (%d firings)", len(e.Scheduler.Firings()))
	}
}
