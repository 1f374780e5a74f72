package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/followups/followups/shared/dispatch"
)

func ok201(string, int) (int, http.Header, string) { return 201, nil, `{"ok":true}` }

func TestDeliveryIsTheDocumentedRequest(t *testing.T) {
	th := newThread(t, ok201)
	d := startDaemon(t, th, "")
	const thread = "team/a b?é"
	f := d.create(fmt.Sprintf(`{"thread_id":%q,"prompt":"Check the nightly build.","delay_seconds":1,"reason":"waiting on CI","originating_run_id":"run-42","metadata":{"channel":"slack"}}`, thread))
	id := str(f["id"])
	got := d.settle(id)
	if got["status"] != "delivered" || num(got["attempts"]) != 1 {
		t.Fatalf("followup: %v", got)
	}
	runs := got["runs"].([]any)
	if len(runs) != 1 || runs[0].(map[string]any)["outcome"] != "success" || num(runs[0].(map[string]any)["http_status"]) != 201 {
		t.Fatalf("runs: %v", runs)
	}
	recs := th.received(id)
	if len(recs) != 1 {
		t.Fatalf("thread received %d requests", len(recs))
	}
	r := recs[0]
	if want := "/threads/" + url.PathEscape(thread) + "/messages"; r.RequestURI != want {
		t.Errorf("request URI %q, want %q", r.RequestURI, want)
	}
	for h, want := range map[string]string{
		"Content-Type": "application/json", "Idempotency-Key": id, "X-Followup-Id": id,
		"X-Followup-Attempt": "1", "Authorization": "Bearer thread-token",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if r.SigErr != nil {
		t.Errorf("signature: %v", r.SigErr)
	}
	m := r.Message
	if m.Role != "user" || !m.Synthetic || m.Source != "followup" || m.Content != "Check the nightly build." ||
		m.Followup.ID != id || m.Followup.Reason != "waiting on CI" || m.Followup.OriginatingRunID != "run-42" ||
		m.Followup.Attempt != 1 || m.Followup.DelaySecondsRequested == nil || *m.Followup.DelaySecondsRequested != 1 ||
		string(m.Metadata) != `{"channel":"slack"}` {
		t.Errorf("message: %+v", m)
	}
	if !m.Followup.ScheduledFor.Equal(mustTime(t, str(got["run_at"]))) || !m.Followup.ScheduledAt.Equal(mustTime(t, str(got["created_at"]))) {
		t.Errorf("scheduled_at/for %v %v vs %v %v", m.Followup.ScheduledAt, m.Followup.ScheduledFor, got["created_at"], got["run_at"])
	}
	if r.At.Before(mustTime(t, str(got["run_at"]))) {
		t.Errorf("delivered at %v, before run_at %v", r.At, got["run_at"])
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return v
}

func TestDropReasons(t *testing.T) {
	th := newThread(t, func(thread string, attempt int) (int, http.Header, string) {
		switch thread {
		case "gone-404":
			return 404, nil, `{"error":"no such thread"}`
		case "gone-410":
			return 410, nil, ``
		case "closed":
			return 409, nil, `{"error":"thread closed"}`
		case "bad":
			return 422, nil, `{"error":"unprocessable"}`
		case "down":
			return 503, nil, `upstream exploded`
		}
		return 201, nil, ``
	})
	d := startDaemon(t, th, "")
	tests := []struct {
		thread, reason string
		attempts       int
		lastError      string
	}{
		{"gone-404", "thread_not_found", 1, "404"},
		{"gone-410", "thread_not_found", 1, "410"},
		{"closed", "thread_inactive", 1, "409"},
		{"bad", "rejected", 1, "422"},
		{"down", "retries_exhausted", 4, "upstream exploded"},
	}
	ids := map[string]string{}
	for _, tt := range tests {
		ids[tt.thread] = str(d.create(fmt.Sprintf(`{"thread_id":%q,"prompt":"p","delay_seconds":1}`, tt.thread))["id"])
	}
	for _, tt := range tests {
		t.Run(tt.thread, func(t *testing.T) {
			f := d.settle(ids[tt.thread])
			if f["status"] != "failed_dropped" || f["drop_reason"] != tt.reason || num(f["attempts"]) != tt.attempts ||
				!strings.Contains(str(f["last_error"]), tt.lastError) || f["settled_at"] == nil {
				t.Fatalf("followup: %v", f)
			}
			runs := f["runs"].([]any)
			if len(runs) != tt.attempts {
				t.Fatalf("%d runs, want %d", len(runs), tt.attempts)
			}
			last := runs[len(runs)-1].(map[string]any)
			wantOutcome := "drop"
			if tt.reason == "retries_exhausted" {
				wantOutcome = "retryable_error"
			}
			if last["outcome"] != wantOutcome {
				t.Fatalf("last run outcome %v, want %s", last["outcome"], wantOutcome)
			}
			if n := len(th.received(ids[tt.thread])); n != tt.attempts {
				t.Fatalf("thread received %d attempts, want %d", n, tt.attempts)
			}
		})
	}
	// Every drop logs at WARN with its reason.
	warned := map[string]bool{}
	for _, l := range d.logLines() {
		if l["level"] == "WARN" && l["drop_reason"] != nil {
			warned[str(l["followup_id"])] = true
		}
	}
	for thread, id := range ids {
		if !warned[id] {
			t.Errorf("drop of %s (%s) was not logged at WARN", id, thread)
		}
	}
}

func TestRetriesThenSuccessWithIdempotencyKey(t *testing.T) {
	th := newThread(t, func(_ string, attempt int) (int, http.Header, string) {
		if attempt < 3 {
			return 503, http.Header{"Retry-After": {"1"}}, "busy"
		}
		return 200, nil, ""
	})
	d := startDaemon(t, th, "")
	id := str(d.create(`{"thread_id":"t","prompt":"p","delay_seconds":1}`)["id"])
	f := d.settle(id)
	if f["status"] != "delivered" || num(f["attempts"]) != 3 {
		t.Fatalf("followup: %v", f)
	}
	recs := th.received(id)
	if len(recs) != 3 {
		t.Fatalf("%d attempts received", len(recs))
	}
	for i, r := range recs {
		if r.Header.Get("Idempotency-Key") != id || r.Header.Get(dispatch.AttemptHeader) != fmt.Sprint(i+1) {
			t.Errorf("attempt %d headers: %v", i+1, r.Header)
		}
		if i > 0 && r.At.Sub(recs[i-1].At) < 900*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one, before its Retry-After of 1s", i+1, r.At.Sub(recs[i-1].At))
		}
	}
}

func TestCancelBeforeFireNeverDispatches(t *testing.T) {
	th := newThread(t, ok201)
	d := startDaemon(t, th, "")
	id := str(d.create(`{"thread_id":"t","prompt":"p","delay_seconds":2}`)["id"])
	if r := d.do("DELETE", "/followups/"+id, ""); r.Status != 200 || r.Body["status"] != "cancelled" {
		t.Fatalf("cancel: %d %v", r.Status, r.Body)
	}
	time.Sleep(3 * time.Second) // past run_at: nothing may arrive
	if n := len(th.received(id)); n != 0 {
		t.Fatalf("a cancelled followup was dispatched %d times", n)
	}
	if r := d.do("GET", "/followups/"+id, ""); r.Body["status"] != "cancelled" {
		t.Fatalf("status %v", r.Body["status"])
	}
}

// Invariant 4: cancel and fire race to exactly one winner.
func TestInvariant4CancelFireRace(t *testing.T) {
	th := newThread(t, ok201)
	d := startDaemon(t, th, "")
	const n = 40
	ids := make([]string, n)
	runAt := make([]time.Time, n)
	for i := range ids {
		f := d.create(`{"thread_id":"race","prompt":"p","delay_seconds":1}`)
		ids[i], runAt[i] = str(f["id"]), mustTime(t, str(f["run_at"]))
	}
	// Cancel each at a different moment around its run_at, from 100 ms
	// before to 100 ms after, so both sides win some.
	cancelled := make([]bool, n)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			time.Sleep(time.Until(runAt[i].Add(time.Duration(i*5-100) * time.Millisecond)))
			r := d.do("DELETE", "/followups/"+id, "")
			switch r.Status {
			case 200:
				cancelled[i] = true
			case 409:
			default:
				t.Errorf("cancel %s: %d %v", id, r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	wins := map[bool]int{}
	for i, id := range ids {
		f := d.settle(id)
		got := len(th.received(id))
		wins[cancelled[i]]++
		if cancelled[i] && (got != 0 || f["status"] != "cancelled") {
			t.Errorf("%s: cancel won but the thread got %d and status is %v", id, got, f["status"])
		}
		if !cancelled[i] && (got != 1 || f["status"] != "delivered") {
			t.Errorf("%s: fire won but the thread got %d and status is %v", id, got, f["status"])
		}
	}
	t.Logf("cancel won %d, fire won %d", wins[true], wins[false])
}

func TestIdempotentCreateAndReplacePerRun(t *testing.T) {
	th := newThread(t, ok201)
	d := startDaemon(t, th, "")
	first := d.create(`{"thread_id":"t","prompt":"p","delay_seconds":60}`, "Idempotency-Key", "req-1")
	again := d.do("POST", "/followups", `{ "delay_seconds": 60, "prompt": "p", "thread_id": "t" }`, "Idempotency-Key", "req-1")
	if again.Status != 200 || again.Body["id"] != first["id"] {
		t.Fatalf("replay: %d %v", again.Status, again.Body)
	}
	conflict := d.do("POST", "/followups", `{"thread_id":"t","prompt":"other","delay_seconds":60}`, "Idempotency-Key", "req-1")
	if conflict.Status != 409 || conflict.Body["error"].(map[string]any)["code"] != "idempotency_conflict" {
		t.Fatalf("conflict: %d %v", conflict.Status, conflict.Body)
	}

	old := d.create(`{"thread_id":"t","prompt":"p1","delay_seconds":60,"originating_run_id":"run-1"}`)
	repl := d.create(`{"thread_id":"t","prompt":"p2","delay_seconds":60,"originating_run_id":"run-1"}`)
	prev, _ := repl["replaced_previous"].(map[string]any)
	if prev == nil || prev["id"] != old["id"] || prev["status"] != "cancelled" {
		t.Fatalf("replaced_previous: %v", repl["replaced_previous"])
	}
	if r := d.do("GET", "/followups/"+str(repl["id"]), ""); r.Body["replaced_previous"] != nil {
		t.Fatal("replaced_previous outside a create response")
	}
}

func TestListAndCancelThread(t *testing.T) {
	th := newThread(t, ok201)
	d := startDaemon(t, th, "")
	var want []string
	for i := range 5 {
		f := d.create(fmt.Sprintf(`{"thread_id":"list/me","prompt":"p","delay_seconds":%d}`, 600-i*10))
		want = append([]string{str(f["id"])}, want...)
	}
	d.create(`{"thread_id":"list","prompt":"p","delay_seconds":600}`)
	var got []string
	path := "/threads/" + url.PathEscape("list/me") + "/followups?limit=2"
	for next := ""; ; {
		p := path
		if next != "" {
			p += "&cursor=" + url.QueryEscape(next)
		}
		r := d.do("GET", p, "")
		if r.Status != 200 {
			t.Fatalf("list: %d %v", r.Status, r.Body)
		}
		for _, f := range r.Body["followups"].([]any) {
			got = append(got, str(f.(map[string]any)["id"]))
		}
		if next = str(r.Body["next_cursor"]); next == "" {
			break
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("listing %v, want %v", got, want)
	}
	r := d.do("DELETE", "/threads/"+url.PathEscape("list/me")+"/followups", "")
	if r.Status != 200 || num(r.Body["cancelled"]) != 5 {
		t.Fatalf("cancel thread: %v", r.Body)
	}
	r = d.do("GET", "/threads/list/followups?status=scheduled", "")
	if len(r.Body["followups"].([]any)) != 1 {
		t.Fatalf("the other thread was touched: %v", r.Body)
	}
}

func TestAuthTokenOnEveryRoute(t *testing.T) {
	th := newThread(t, ok201)
	d := startDaemon(t, th, "", "FOLLOWUPS_API_TOKEN=api-secret")
	routes := [][2]string{{"POST", "/followups"}, {"GET", "/followups/x"}, {"DELETE", "/followups/x"},
		{"GET", "/threads/t/followups"}, {"DELETE", "/threads/t/followups"}, {"GET", "/nowhere"}, {"PUT", "/followups"}}
	d.token = ""
	for _, rt := range routes {
		for _, auth := range []string{"", "Bearer wrong"} {
			var h []string
			if auth != "" {
				h = []string{"Authorization", auth}
			}
			if r := d.do(rt[0], rt[1], `{}`, h...); r.Status != 401 || r.Body["error"].(map[string]any)["code"] != "unauthorized" {
				t.Errorf("%s %s with %q: %d", rt[0], rt[1], auth, r.Status)
			}
		}
	}
	for _, open := range []string{"/healthz", "/metrics"} {
		res, err := http.Get(d.base + open)
		if err != nil || res.StatusCode != 200 {
			t.Errorf("%s without a token: %v %v", open, err, res)
		}
		res.Body.Close()
	}
	d.token = "api-secret"
	d.create(`{"thread_id":"t","prompt":"p","delay_seconds":60}`)
}

// Invariant 6: nothing accepted is lost when the process dies.
func TestInvariant6SIGKILLLosesNothing(t *testing.T) {
	th := newThread(t, ok201)
	dir := t.TempDir()
	d := startDaemon(t, th, dir)
	const n = 50
	var ids []string
	for i := range n {
		ids = append(ids, str(d.create(fmt.Sprintf(`{"thread_id":"k","prompt":"p","delay_seconds":%d}`, 1+i%3))["id"]))
	}
	time.Sleep(1200 * time.Millisecond) // some fire, some are mid-flight, most wait
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	d.cmd = nil
	time.Sleep(2 * time.Second) // the rest fall due while it is down
	d2 := startDaemon(t, th, dir)
	for _, id := range ids {
		f := d2.settle(id)
		if f["status"] != "delivered" {
			t.Errorf("%s: %v", id, f)
		}
		// Invariant 3: a redelivery after a crash carries the same key, so
		// the thread could deduplicate; a clean delivery arrives once.
		recs := th.received(id)
		if len(recs) == 0 {
			t.Errorf("%s never reached the thread", id)
		}
		for _, r := range recs {
			if r.Header.Get("Idempotency-Key") != id {
				t.Errorf("%s delivered with key %q", id, r.Header.Get("Idempotency-Key"))
			}
		}
		if len(recs) > 1 {
			t.Logf("%s reached the thread %d times (crash mid-attempt), attempts %v", id, len(recs), f["attempts"])
		}
	}
}

func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	th := newThread(t, func(string, int) (int, http.Header, string) {
		<-release
		return 201, nil, ""
	})
	dir := t.TempDir()
	d := startDaemon(t, th, dir)
	id := str(d.create(`{"thread_id":"slow","prompt":"p","delay_seconds":1}`)["id"])
	deadline := time.Now().Add(10 * time.Second)
	for len(th.received(id)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	d.signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	close(release) // the attempt in flight finishes after the signal
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		t.Fatal("followupd did not stop after SIGTERM")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, d.logs)
	}
	d.cmd = nil
	d2 := startDaemon(t, th, dir)
	if f := d2.settle(id); f["status"] != "delivered" || num(f["attempts"]) != 1 {
		t.Fatalf("the attempt in flight at shutdown was not recorded: %v", f)
	}
	if n := len(th.received(id)); n != 1 {
		t.Fatalf("delivered %d times", n)
	}
}
