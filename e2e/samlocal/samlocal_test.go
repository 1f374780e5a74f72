package samlocal_test

// The tests that run the SAM CLI, in this order: the sample events
// remake the local stack for each event, so they run before the
// deployment on start-api and start-lambda is up, and the last test stops
// it. None is parallel: they share the stack events/env.json names.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/e2e/samlocal"
	"github.com/followups/followups/shared/followup"
)

// TestSampleEvents runs sam local invoke on every sample event with
// events/env.json, as the README does, on the arm64 build of
// template.yaml. Each event meets a local stack made anew.
func TestSampleEvents(t *testing.T) {
	f := need(t)
	if f.deployment != nil {
		t.Fatal("the deployment on start-api and start-lambda is up; the sample events remake its stack")
	}
	for _, name := range sampleEventFiles(t, f.root) {
		e, ok := sampleEvents[name]
		if !ok {
			t.Errorf("events/%s has no expectation (see TestSampleEventsHaveExpectations)", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			if err := f.stack.Reset(t.Context(), f.aws); err != nil {
				t.Fatalf("remake the local stack: %v", err)
			}
			before := len(f.thread.Requests(""))
			r, err := f.sam.Invoke(t.Context(), f.local(), e.function, filepath.Join("events", name))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("sam local invoke %s --event events/%s:\nresponse: %s\n%s", e.function, name, r.Response, r.Output)
				}
			})
			f.report.add(fmt.Sprintf("sam local invoke %s --event events/%s (cold)", e.function, name), r.Took,
				fmt.Sprintf("the function's REPORT Duration %s", ms(r.Duration)))
			if strings.Contains(r.Output, `"level":"ERROR"`) {
				t.Errorf("the function logged an error:\n%s", r.Output)
			}
			e.check(t, f, r)
			if n := len(f.thread.Requests("")) - before; n != 0 {
				t.Errorf("the thread API got %d requests; no sample event's followup exists to be delivered", n)
			}
		})
	}
}

// TestStartAPI drives the HTTP API through sam local start-api, as a
// client would: create (and its idempotent replay), read, list a thread
// whose id holds a "/" (start-api decodes the path, as API Gateway does),
// cancel, and the contract's errors, the $default route's included.
func TestStartAPI(t *testing.T) {
	f := need(t)
	d := f.deploy(t)
	api := &client{t: t, base: d.API.URL}

	thread := "org/" + threadID("api")
	key := strings.TrimPrefix(thread, "org/")
	body := fmt.Sprintf(`{"thread_id":%q,"prompt":"Check the nightly build.","delay_seconds":3600,"metadata":{"channel":"slack"}}`, thread)
	created, resp := api.followup("POST", "/followups", body, 201, "Idempotency-Key", key)
	if created.Status != followup.StatusScheduled || created.ThreadID != thread || resp.Header.Get("Location") != "/followups/"+created.ID {
		t.Errorf("created: status %s, thread %q, Location %q", created.Status, created.ThreadID, resp.Header.Get("Location"))
	}
	if again, _ := api.followup("POST", "/followups", body, 200, "Idempotency-Key", key); again.ID != created.ID {
		t.Errorf("the same Idempotency-Key and body made %s, want the original %s", again.ID, created.ID)
	}
	if got, _ := api.followup("GET", "/followups/"+created.ID, "", 200); got.ID != created.ID || got.Status != followup.StatusScheduled {
		t.Errorf("read: %s %s", got.ID, got.Status)
	}
	var page struct{ Followups []followup.Followup }
	api.json("GET", "/threads/"+url.PathEscape(thread)+"/followups", "", 200, &page)
	if len(page.Followups) != 1 || page.Followups[0].ID != created.ID {
		t.Errorf("list of thread %q: %+v", thread, page.Followups)
	}
	if got, _ := api.followup("DELETE", "/followups/"+created.ID, "", 200); got.Status != followup.StatusCancelled {
		t.Errorf("cancelled: status %s", got.Status)
	}

	for _, c := range []struct{ method, path, body, code string }{
		{"POST", "/followups", `{"thread_id":`, "invalid_json"},
		{"POST", "/followups", `{"thread_id":"t-1","prompt":"x","delay_seconds":0}`, "out_of_range"},
		{"DELETE", "/followups/" + created.ID, "", "conflict"},
		{"GET", "/followups/fu_06h35j71s5efw1vb4vhsb78qvm", "", "not_found"},
		{"GET", "/no/such/route", "", "not_found"},
		{"PUT", "/followups", "", "method_not_allowed"},
	} {
		api.error(c.method, c.path, c.body, c.code)
	}

	// Warm requests: the timing of a start-api round trip.
	var took []time.Duration
	for range 20 {
		start := time.Now()
		api.followup("GET", "/followups/"+created.ID, "", 200)
		took = append(took, time.Since(start))
	}
	med, note := spread(took)
	f.report.add("sam local start-api warm request (GET /followups/{id})", med, note)
	// Not asserted, a difference from API Gateway to know: the requestId
	// start-api gives the events.
	ids := map[string]bool{}
	n := 0
	for _, m := range requestIDLine.FindAllStringSubmatch(d.API.Output(), -1) {
		ids[m[1]] = true
		n++
	}
	t.Logf("start-api gave %d requests %d distinct requestId(s)", n, len(ids))
}

// requestIDLine finds the requestId of the API event in the schedule
// function's request log.
var requestIDLine = regexp.MustCompile(`"msg":"request",[^\n]*"request_id":"([^"]*)"`)

// TestStartLambda follows followups from the API to the thread and to the
// dead-letter queue, the functions behind the queues invoked through the
// Lambda Invoke API of sam local start-lambda: one delivered, one dropped
// at once (thread gone), one retried until the dead-letter queue and the
// dlq function settle it retries_exhausted.
func TestStartLambda(t *testing.T) {
	f := need(t)
	d := f.deploy(t)
	api := &client{t: t, base: d.API.URL}
	env, err := samlocal.ReadEnvFile(f.envVars)
	if err != nil {
		t.Fatal(err)
	}
	v, err := env.Value("FOLLOWUPS_MAX_RETRIES")
	if err != nil {
		t.Fatal(err)
	}
	maxRetries, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("FOLLOWUPS_MAX_RETRIES of events/env.json: %v", err)
	}

	create := func(thread string) *followup.Followup {
		got, _ := api.followup("POST", "/followups",
			fmt.Sprintf(`{"thread_id":%q,"prompt":"Did the deploy finish?","delay_seconds":1,"reason":"waiting on CI"}`, thread), 201)
		return got
	}
	start := time.Now()
	ok, gone, down := create(threadID("ok")), create(threadID("gone")), create(threadID("down"))

	delivered := api.settled(ok.ID, 60*time.Second)
	if delivered.Status != followup.StatusDelivered || delivered.Attempts != 1 {
		t.Errorf("followup %s: status %s, attempts %d; want delivered, 1", ok.ID, delivered.Status, delivered.Attempts)
	}
	reqs := d.Thread.Requests(ok.ID)
	if len(reqs) != 1 {
		t.Fatalf("the thread got %d requests for %s, want 1", len(reqs), ok.ID)
	}
	f.report.add("create → the thread's request (delay_seconds 1: the direct path, an SQS delay on the fire queue, FireFunction via start-lambda)", reqs[0].At.Sub(start), "")
	r := reqs[0]
	if want := "/threads/" + url.PathEscape(ok.ThreadID) + "/messages"; r.RequestURI != want {
		t.Errorf("request URI %q, want %q", r.RequestURI, want)
	}
	for h, want := range map[string]string{"Content-Type": "application/json", "Idempotency-Key": ok.ID, "X-Followup-Id": ok.ID, "X-Followup-Attempt": "1"} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if m := r.Message; m.Role != "user" || !m.Synthetic || m.Source != "followup" || m.Content != "Did the deploy finish?" || m.Followup.ID != ok.ID || m.Followup.Reason != "waiting on CI" {
		t.Errorf("message: %+v", m)
	}

	if got := api.settled(gone.ID, 60*time.Second); got.Status != followup.StatusFailedDropped || got.DropReason != followup.DropThreadNotFound || got.Attempts != 1 {
		t.Errorf("followup %s: status %s, drop_reason %q, attempts %d; want failed_dropped, thread_not_found, 1", gone.ID, got.Status, got.DropReason, got.Attempts)
	}

	// 1 + FOLLOWUPS_MAX_RETRIES attempts, the waits between them set by the
	// fire function, then SQS's redrive to the dead-letter queue.
	exhausted := api.settled(down.ID, 2*time.Minute)
	if exhausted.Status != followup.StatusFailedDropped || exhausted.DropReason != followup.DropRetriesExhausted || exhausted.Attempts != 1+maxRetries {
		t.Errorf("followup %s: status %s, drop_reason %q, attempts %d; want failed_dropped, retries_exhausted, %d",
			down.ID, exhausted.Status, exhausted.DropReason, exhausted.Attempts, 1+maxRetries)
	}
	if n := len(d.Thread.Requests(down.ID)); n != 1+maxRetries {
		t.Errorf("the thread got %d requests for %s, want %d", n, down.ID, 1+maxRetries)
	}
	dlq := d.Pollers["DlqFunction"]
	if dlq == nil {
		t.Fatalf("no poller for DlqFunction: the template's queue consumers are %v", slices.Sorted(maps.Keys(d.Pollers)))
	}
	// The poller records a batch once it has deleted what succeeded, a
	// moment after the function settled the followup.
	var batches []harness.Batch
	for deadline := time.Now().Add(10 * time.Second); len(batches) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		batches = batchesOf(dlq, down.ID)
	}
	if len(batches) != 1 || len(batches[0].Failures) != 0 || batches[0].WholeBatchFailed {
		t.Errorf("DlqFunction batches with %s: %+v", down.ID, batches)
	}

	var invokes []time.Duration
	for fn, p := range d.Pollers {
		for _, b := range p.Batches() {
			if b.WholeBatchFailed || b.Invocation.Status != 200 || b.Invocation.Err != nil {
				t.Errorf("%s batch through start-lambda: status %d, error %v, whole batch failed %t", fn, b.Invocation.Status, b.Invocation.Err, b.WholeBatchFailed)
			}
			invokes = append(invokes, b.Invocation.Took)
		}
	}
	med, note := spread(invokes)
	f.report.add("start-lambda Invoke of a batch (FireFunction, DlqFunction), warm", med, note)
	f.report.add("create → retries_exhausted (4 attempts, the dead-letter queue, DlqFunction)", time.Since(start), "")
	for _, err := range d.HarnessErrors() {
		t.Errorf("harness: %v", err)
	}
}

// TestStopRemovesContainers stops start-api and start-lambda with SIGINT,
// as Ctrl-C does, and checks that SAM removed every container it made.
func TestStopRemovesContainers(t *testing.T) {
	f := need(t)
	d := f.deploy(t)
	n := len(d.API.Containers()) + len(d.Lambda.Containers())
	if n == 0 {
		t.Fatal("sam reported no container it created")
	}
	start := time.Now()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	f.report.add(fmt.Sprintf("stop start-api and start-lambda (SIGINT; %d containers removed)", n), time.Since(start), "")
	// The next test that needs a deployment (go test -count=2) starts one.
	f.deployOnce, f.deployment, f.deployErr = sync.Once{}, nil, nil
}

// client talks to the API that start-api serves.
type client struct {
	t    *testing.T
	base string
}

func (c *client) do(method, path, body string, headers ...string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, b
}

// json sends a request, wants status and decodes the body into v.
func (c *client) json(method, path, body string, status int, v any, headers ...string) *http.Response {
	c.t.Helper()
	resp, b := c.do(method, path, body, headers...)
	if resp.StatusCode != status {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("%s %s: %s: %v", method, path, b, err)
	}
	return resp
}

func (c *client) followup(method, path, body string, status int, headers ...string) (*followup.Followup, *http.Response) {
	c.t.Helper()
	var f followup.Followup
	resp := c.json(method, path, body, status, &f, headers...)
	return &f, resp
}

// error wants the contract's error document with code, and the status
// its code maps to.
func (c *client) error(method, path, body, code string) {
	c.t.Helper()
	status := map[string]int{"invalid_json": 400, "out_of_range": 400, "conflict": 409, "not_found": 404, "method_not_allowed": 405}[code]
	var doc struct {
		Error struct{ Code, Message string }
	}
	c.json(method, path, body, status, &doc)
	if doc.Error.Code != code || doc.Error.Message == "" {
		c.t.Errorf("%s %s: error %+v, want code %s with a message", method, path, doc.Error, code)
	}
}

// settled polls the followup until it is terminal.
func (c *client) settled(id string, timeout time.Duration) *followup.Followup {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f, _ := c.followup("GET", "/followups/"+id, "", 200)
		if f.Status.Terminal() {
			return f
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("followup %s still %s after %s (attempts %d)", id, f.Status, timeout, f.Attempts)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// threadID returns a thread id no other run uses, starting with name
// (see samlocal.ThreadAnswers).
func threadID(name string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return name + "-" + hex.EncodeToString(b[:])
}

// batchesOf returns the poller's batches with a message of followup id.
func batchesOf(p *harness.Poller, id string) []harness.Batch {
	var out []harness.Batch
	for _, b := range p.Batches() {
		for _, r := range b.Records {
			var m followup.Message
			if json.Unmarshal([]byte(r.Body), &m) == nil && m.FollowupID == id {
				out = append(out, b)
				break
			}
		}
	}
	return out
}
