package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// deliveryLimit bounds the wait for a burst's deliveries after its run_at.
const deliveryLimit = 2 * time.Minute

// duplicateGrace is how long the sink keeps listening after the last
// delivery, for a duplicate that comes late.
const duplicateGrace = 2 * time.Second

// burst creates -burst followups with one run_at a few seconds ahead and
// waits until each reaches the null thread API: how late, how fast, and
// whether exactly once.
func (r *runner) burst(ctx context.Context, res *result) error {
	d, err := r.daemonFor(ctx, "burst")
	if err != nil {
		return err
	}
	defer d.kill()
	childRows(res, d, r.o.childEnv)
	r.sink.reset()
	c := newAPIClient(d.base, r.o.apiToken, r.o.concurrency)
	defer c.close()

	n := r.o.burst
	lead := r.o.burstLead
	if lead == 0 {
		lead = 3*time.Second + time.Duration(n)*time.Millisecond
	}
	// A whole second, so that every followup is due in the same second.
	runAt := time.Now().Add(lead).Truncate(time.Second).Add(time.Second)
	when := `"run_at":"` + runAt.UTC().Format(time.RFC3339Nano) + `"`
	b := c.createMany(ctx, n, r.o.concurrency, r.requests(runToken("burst", res.run), when), true)
	reportFailures(res, b)
	res.row("creates", "%s accepted, %d failed, in %s (%s creates/s), from %d clients",
		num(float64(b.accepted)), b.failed(), b.finished.Sub(b.started).Round(time.Millisecond), num(b.rate()), r.o.concurrency)
	res.row("run_at", "%s for all; the last create was answered %s before it",
		runAt.UTC().Format(time.RFC3339), runAt.Sub(b.finished).Round(time.Millisecond))
	if b.finished.After(runAt) {
		res.row("note", "creates were still running at run_at (raise -burst-lead): lateness includes that")
	}

	var ids []string
	due := map[string]time.Time{}
	for i, id := range b.ids {
		if id != "" {
			ids = append(ids, id)
			due[id] = b.runAt[i]
		}
	}
	// Nothing is due before run_at: measure CPU from there.
	if err := pause(ctx, time.Until(runAt)); err != nil {
		return err
	}
	cpu := startCPU(d)
	prof := r.startProfile(ctx, d, res, "deliveries")
	allIn, waitErr := r.waitDeliveries(ctx, ids, runAt.Add(deliveryLimit))
	used := cpu.stop()
	prof.wait(res)
	if waitErr == nil {
		_ = pause(ctx, duplicateGrace)
	}
	got, malformed := r.sink.snapshot()

	var (
		late                         []time.Duration
		first, last                  time.Time
		missing, duplicates, retried int
	)
	for _, id := range ids {
		a, ok := got[id]
		if !ok {
			missing++
			continue
		}
		late = append(late, a.first.Sub(due[id]))
		duplicates += a.count - 1
		if a.maxAttempt > 1 {
			retried++
		}
		if first.IsZero() || a.first.Before(first) {
			first = a.first
		}
		if a.first.After(last) {
			last = a.first
		}
	}
	unexpected := 0
	for id, a := range got {
		if _, ok := due[id]; !ok {
			unexpected += a.count
		}
	}
	slices.Sort(late)
	delivered := len(late)
	res.row("delivered", "%s of %s, to the null thread API over %s TCP connections",
		num(float64(delivered)), num(float64(len(ids))), num(float64(r.sink.conns.Load())))
	if delivered > 0 {
		span := last.Sub(first)
		rate := float64(delivered) / max(span.Seconds(), 1e-3)
		res.row("deliveries/s", "%s (first to last arrival: %s); last arrival %s after run_at",
			num(rate), span.Round(time.Millisecond), last.Sub(runAt).Round(time.Millisecond))
		res.figure("deliveries/s", "1/s", rate)
		p50, p99, top := percentile(late, 0.5), percentile(late, 0.99), late[len(late)-1]
		res.row("lateness", "p50 %s  p99 %s  max %s  min %s (arrival at the thread API minus run_at)", ms(p50), ms(p99), ms(top), ms(late[0]))
		res.figure("lateness p50", "ms", msf(p50))
		res.figure("lateness p99", "ms", msf(p99))
		res.figure("lateness max", "ms", msf(top))
		res.atMost("lateness p99", msf(p99), 300, "ms")
	}
	res.row("CPU", "%s, from run_at until every delivery had arrived", used)
	if used.measured && delivered > 0 {
		per := used.child / time.Duration(delivered)
		res.row("CPU per delivery", "followupd %s µs, load command (null thread API) %s µs",
			num(float64(per.Microseconds())), num(float64((used.self / time.Duration(delivered)).Microseconds())))
		res.figure("followupd CPU/delivery", "µs", float64(per.Nanoseconds())/1e3)
		res.atMost("CPU per delivery", float64(per.Nanoseconds())/1e3, 60, "µs")
	}
	res.row("exactly once", "duplicates %d, missing %d, retried %d, unexpected %d, malformed %d", duplicates, missing, retried, unexpected, malformed)
	switch {
	case waitErr != nil:
		res.fail("%v", waitErr)
	case allIn.IsZero():
		res.fail("not every followup was delivered")
	}
	if duplicates > 0 {
		res.fail("%d duplicate deliveries", duplicates)
	}
	if missing > 0 {
		res.fail("%d followups never delivered within %s of run_at", missing, deliveryLimit)
	}
	if malformed > 0 {
		res.fail("%d requests to the thread API without a followup id", malformed)
	}
	if unexpected > 0 && d.cmd != nil {
		res.fail("%d deliveries of followups this run did not create", unexpected)
	}

	if missing == 0 && waitErr == nil {
		r.checkRecords(ctx, res, c, ids)
	}
	checkLog(res, d)
	stopChild(res, d, "stop")
	return nil
}

// waitDeliveries waits until every id has reached the sink, and returns
// when it saw that, or the zero time when deadline came first.
func (r *runner) waitDeliveries(ctx context.Context, ids []string, deadline time.Time) (time.Time, error) {
	for {
		if r.sink.arrived(ids) == len(ids) {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, nil
		}
		if err := pause(ctx, 10*time.Millisecond); err != nil {
			return time.Time{}, fmt.Errorf("waiting for deliveries: %w", err)
		}
	}
}

// checkRecords reads every followup back until it is settled, and fails
// the run unless each is delivered after exactly one attempt.
func (r *runner) checkRecords(ctx context.Context, res *result, c *apiClient, ids []string) {
	type record struct {
		Status   string            `json:"status"`
		Attempts int               `json:"attempts"`
		Runs     []json.RawMessage `json:"runs"`
	}
	deadline := time.Now().Add(30 * time.Second)
	left := ids
	good := 0
	var bad []string
	for len(left) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			next []string
			jobs = make(chan string)
		)
		for range r.o.concurrency {
			wg.Go(func() {
				for id := range jobs {
					status, body, err := c.call(ctx, http.MethodGet, "/followups/"+url.PathEscape(id), nil, "")
					var f record
					if err == nil && status == http.StatusOK {
						err = json.Unmarshal(body, &f)
					}
					mu.Lock()
					switch {
					case err != nil || status != http.StatusOK:
						next = append(next, id)
					case f.Status == "scheduled" || f.Status == "dispatching":
						next = append(next, id)
					case f.Status != "delivered" || f.Attempts != 1 || len(f.Runs) != 1:
						bad = append(bad, fmt.Sprintf("%s is %s after %d attempts and %d runs", id, f.Status, f.Attempts, len(f.Runs)))
					default:
						good++
					}
					mu.Unlock()
				}
			})
		}
		for _, id := range left {
			jobs <- id
		}
		close(jobs)
		wg.Wait()
		left = next
		if len(left) > 0 {
			_ = pause(ctx, 200*time.Millisecond)
		}
	}
	res.row("records", "%s delivered with one attempt; %d not settled; %d otherwise", num(float64(good)), len(left), len(bad))
	if len(left) > 0 {
		res.fail("%d followups still not settled 30 s after their delivery (e.g. %s)", len(left), left[0])
	}
	if len(bad) > 0 {
		res.fail("%d followups not delivered with exactly one attempt (e.g. %s)", len(bad), bad[0])
	}
}
