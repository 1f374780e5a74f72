// Package scenario holds the end-to-end scenarios that run against both
// runtimes: followupd (e2e) and the schedule function under the Lambda
// emulator (e2e/aws). Each test builds a Target for its deployment and
// runs the same scenario on it, with the clients a user would use (the MCP
// SDK's own client, plain HTTP).
//
// It is for tests only.
package scenario

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Target is a deployment to run a scenario against.
type Target struct {
	// BaseURL is the API's (POST /mcp is at BaseURL + "/mcp").
	BaseURL string
	// Transport carries the requests and checks every response against
	// openapi.json; Header is added to each (credentials).
	Transport http.RoundTripper
	Header    http.Header
	// Deliveries counts the requests the thread API received for a followup.
	Deliveries func(followupID string) int
	// Limits are the deployment's delay bounds.
	Limits followup.Limits
	// Settle bounds how long a followup may take to settle.
	Settle time.Duration
}

// Reply is an API answer.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Followup decodes the answer as a followup.
func (r Reply) Followup(t *testing.T) *followup.Followup {
	t.Helper()
	var f followup.Followup
	if err := json.Unmarshal(r.Body, &f); err != nil || f.ID == "" {
		t.Fatalf("not a followup: %d %s", r.Status, r.Body)
	}
	return &f
}

// Code is the answer's error code ("" when it is not an error).
func (r Reply) Code() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// Do sends a request to the API; headers are name, value pairs.
func (tg Target) Do(t *testing.T, method, path, body string, headers ...string) Reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, tg.BaseURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := tg.client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return Reply{Status: res.StatusCode, Header: res.Header, Body: raw}
}

// Get reads a followup; anything but 200 fails the test.
func (tg Target) Get(t *testing.T, id string) *followup.Followup {
	t.Helper()
	r := tg.Do(t, "GET", "/followups/"+id, "")
	if r.Status != 200 {
		t.Fatalf("GET /followups/%s: %d %s", id, r.Status, r.Body)
	}
	return r.Followup(t)
}

// WaitSettled polls a followup until it is terminal.
func (tg Target) WaitSettled(t *testing.T, id string) *followup.Followup {
	t.Helper()
	deadline := time.Now().Add(tg.Settle)
	for {
		f := tg.Get(t, id)
		if f.Status.Terminal() {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still %s after %s", id, f.Status, tg.Settle)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (tg Target) client() *http.Client {
	return &http.Client{Transport: WithHeader(tg.Header, tg.Transport)}
}

// WithHeader adds h to every request next carries.
func WithHeader(h http.Header, next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		for k, vs := range h {
			if _, set := r.Header[k]; !set {
				r.Header[k] = vs
			}
		}
		return next.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Outage plays a thread API that is down for some threads: it answers 404
// (thread_not_found) for them, until Restore.
type Outage struct {
	mu   sync.Mutex
	down map[string]bool
}

// Down makes thread's requests fail.
func (o *Outage) Down(thread string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down == nil {
		o.down = map[string]bool{}
	}
	o.down[thread] = true
}

// Restore makes thread's requests succeed again.
func (o *Outage) Restore(thread string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.down, thread)
}

// Status is what the thread API answers for thread: 404 while it is down,
// else 201.
func (o *Outage) Status(thread string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down[thread] {
		return http.StatusNotFound
	}
	return http.StatusCreated
}
