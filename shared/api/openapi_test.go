package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/api"
	"github.com/followups/followups/shared/api/apitest"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
)

// faultyStore fails on purpose for the followups and threads named so:
// "-fail" ones with an error (a store that is down), "-panic" ones with a
// panic (a bug).
type faultyStore struct{ followup.Store }

func fault(name string) error {
	switch {
	case strings.HasSuffix(name, "-fail"):
		return errors.New("the disk is on fire")
	case strings.HasSuffix(name, "-panic"):
		panic("a bug")
	}
	return nil
}

func (s faultyStore) Create(ctx context.Context, c followup.Creation) (followup.Created, error) {
	if err := fault(c.Followup.ThreadID); err != nil {
		return followup.Created{}, err
	}
	return s.Store.Create(ctx, c)
}

func (s faultyStore) Get(ctx context.Context, id string) (*followup.Followup, error) {
	if err := fault(id); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, id)
}

func (s faultyStore) List(ctx context.Context, q followup.ListQuery) ([]*followup.Followup, bool, error) {
	if err := fault(q.ThreadID); err != nil {
		return nil, false, err
	}
	return s.Store.List(ctx, q)
}

func (s faultyStore) Apply(ctx context.Context, id string, t followup.Transition) (*followup.Followup, error) {
	if err := fault(id); err != nil {
		return nil, err
	}
	return s.Store.Apply(ctx, id, t)
}

// contractServer serves the API on a store that fails on demand, with two
// dropped followups to re-arm: fu_dropped of thread t-dropped, and
// fu_dropped_run of thread t-run and run run-1.
func contractServer(t *testing.T, o api.Options) *httptest.Server {
	t.Helper()
	store := inmem.NewStore()
	dropped := &followup.Followup{
		ID: "fu_dropped", ThreadID: "t-dropped", Prompt: "check", RunAt: now, Status: followup.StatusFailedDropped,
		DropReason: followup.DropThreadNotFound, LastError: "thread API: 404", Attempts: 1, Runs: []followup.Run{},
		CreatedAt: now, UpdatedAt: now, SettledAt: &now, Version: 1,
	}
	withRun := *dropped
	withRun.ID, withRun.ThreadID, withRun.OriginatingRunID = "fu_dropped_run", "t-run", "run-1"
	for _, f := range []*followup.Followup{dropped, &withRun} {
		if _, err := store.Create(context.Background(), followup.Creation{Followup: f}); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := followup.New(followup.Config{Store: faultyStore{store}, Scheduler: inmem.NewScheduler(), Clock: fixedClock{now}})
	if err != nil {
		t.Fatal(err)
	}
	o.Service = svc
	srv := httptest.NewServer(api.New(o))
	t.Cleanup(srv.Close)
	return srv
}

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// exchange is one request of the conformance test and the status it must get.
type exchange struct {
	method, path, body string
	headers            []string // name, value pairs; a value "<none>" removes the header
	want               int
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	c, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, op := range c.Operations() {
		documented = append(documented, op.Method+" "+op.Path)
	}
	// The handler's routes, GET and DELETE /mcp (405 by contract: a
	// stateless server has no stream and no session), and followupd's own
	// open routes.
	want := append(api.Routes(), "GET /mcp", "DELETE /mcp", "GET /healthz", "GET /metrics")
	slices.Sort(documented)
	slices.Sort(want)
	if !slices.Equal(documented, want) {
		t.Errorf("the document's operations\n  %v\nare not the handler's routes\n  %v", documented, want)
	}
}

func TestOpenAPIDocumentsEveryStatus(t *testing.T) {
	c, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	srv := contractServer(t, api.Options{Token: "tok"})
	// A handler whose large-body budget is spent: a body over
	// api.SmallBody gets 503.
	busy := contractServer(t, api.Options{Token: "tok", MaxBodyBytesInFlight: 1})

	valid := `{"thread_id":"t-1","prompt":"check","delay_seconds":600}`
	create := func(thread string) string {
		return fmt.Sprintf(`{"thread_id":%q,"prompt":"check","delay_seconds":600}`, thread)
	}
	huge := `{"thread_id":"t-1","prompt":"` + strings.Repeat("a", followup.MaxBodyBytes) + `"}`
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`
	mcpHeaders := []string{"Accept", "application/json, text/event-stream"}
	noToken := []string{"Authorization", "<none>"}

	// Followups to read, cancel and re-arm.
	scheduled := doJSON(t, srv, "POST", "/followups", valid, 201)
	toCancel := doJSON(t, srv, "POST", "/followups", valid, 201)

	exchanges := []exchange{
		{"POST", "/followups", valid, nil, 201},
		{"POST", "/followups", valid, []string{"Idempotency-Key", "k-1"}, 201},
		{"POST", "/followups", valid, []string{"Idempotency-Key", "k-1"}, 200},
		{"POST", "/followups", `{"thread_id":"t-1"}`, nil, 400},
		{"POST", "/followups", `{"thread_id":"t-1","prompt":"p","delay_seconds":5}`, nil, 400},
		{"POST", "/followups", `[]`, nil, 400},
		{"POST", "/followups", valid, noToken, 401},
		{"POST", "/followups", create("t-2"), []string{"Idempotency-Key", "k-1"}, 409},
		{"POST", "/followups", huge, nil, 413},
		{"POST", "/followups", valid, []string{"Content-Type", "text/plain"}, 415},
		{"POST", "/followups", create("t-panic"), nil, 500},
		{"POST", "/followups", create("t-fail"), nil, 503},

		{"GET", "/followups/" + scheduled, "", nil, 200},
		{"GET", "/followups/" + scheduled, "", noToken, 401},
		{"GET", "/followups/fu_nope", "", nil, 404},
		{"GET", "/followups/fu-panic", "", nil, 500},
		{"GET", "/followups/fu-fail", "", nil, 503},

		{"DELETE", "/followups/" + toCancel, "", nil, 200},
		{"DELETE", "/followups/" + toCancel, "", noToken, 401},
		{"DELETE", "/followups/fu_nope", "", nil, 404},
		{"DELETE", "/followups/" + toCancel, "", nil, 409},
		{"DELETE", "/followups/fu-panic", "", nil, 500},
		{"DELETE", "/followups/fu-fail", "", nil, 503},

		{"POST", "/followups/fu_dropped/rearm", "", []string{"Idempotency-Key", "r-1"}, 201},
		{"POST", "/followups/fu_dropped/rearm", "", []string{"Idempotency-Key", "r-1"}, 200},
		{"POST", "/followups/fu_dropped/rearm", `{"delay_seconds":120}`, nil, 201},
		{"POST", "/followups/fu_dropped/rearm", `{"delay_seconds":"120"}`, nil, 400},
		{"POST", "/followups/fu_dropped/rearm", "", noToken, 401},
		{"POST", "/followups/fu_nope/rearm", "", nil, 404},
		{"POST", "/followups/" + scheduled + "/rearm", "", nil, 409},
		{"POST", "/followups/fu_dropped/rearm", `{"delay_seconds":600}`, []string{"Idempotency-Key", "r-1"}, 409},
		{"POST", "/followups/fu_dropped/rearm", `{"x":"` + strings.Repeat("a", followup.MaxBodyBytes) + `"}`, nil, 413},
		{"POST", "/followups/fu_dropped/rearm", `{}`, []string{"Content-Type", "<none>"}, 415},
		{"POST", "/followups/fu-panic/rearm", "", nil, 500},
		{"POST", "/followups/fu-fail/rearm", "", nil, 503},

		{"GET", "/threads/t-1/followups?limit=1", "", nil, 200},
		{"GET", "/threads/team%2Fa%20b/followups", "", nil, 200},
		{"GET", "/threads/t-1/followups?limit=0", "", nil, 400},
		{"GET", "/threads/t-1/followups", "", noToken, 401},
		{"GET", "/threads/t-panic/followups", "", nil, 500},
		{"GET", "/threads/t-fail/followups", "", nil, 503},

		{"DELETE", "/threads/t-1/followups", "", nil, 200},
		{"DELETE", "/threads/%2E%2E/followups", "", nil, 400},
		{"DELETE", "/threads/t-1/followups", "", noToken, 401},
		{"DELETE", "/threads/t-panic/followups", "", nil, 500},
		{"DELETE", "/threads/t-fail/followups", "", nil, 503},

		{"POST", "/mcp", initialize, mcpHeaders, 200},
		{"POST", "/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, append([]string{"Mcp-Protocol-Version", "2025-06-18"}, mcpHeaders...), 202},
		{"POST", "/mcp", `{"jsonrpc":`, mcpHeaders, 400},
		{"POST", "/mcp", initialize, []string{"Accept", "application/json"}, 400},
		{"POST", "/mcp", initialize, append(noToken, mcpHeaders...), 401},
		{"POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"no/such","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
			append([]string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "no/such"}, mcpHeaders...), 404},
		{"POST", "/mcp", `{"x":"` + strings.Repeat("a", followup.MaxBodyBytes) + `"}`, mcpHeaders, 413},
		{"POST", "/mcp", initialize, append([]string{"Content-Type", "<none>"}, mcpHeaders...), 415},
		{"GET", "/mcp", "", nil, 405},
		{"GET", "/mcp", "", noToken, 401},
		{"DELETE", "/mcp", "", nil, 405},
		{"DELETE", "/mcp", "", noToken, 401},

		{"GET", "/openapi.json", "", noToken, 200},

		// What no operation covers answers in the error object too.
		{"PUT", "/followups", valid, nil, 405},
		{"GET", "/nope", "", nil, 404},
		{"GET", "/followups/a/../b", "", nil, 404},
		{"GET", "/nope", "", noToken, 401},
	}
	produced := map[string]bool{}
	check := func(srv *httptest.Server, x exchange) {
		t.Helper()
		req, status, header, body := send(t, srv, x)
		if status != x.want {
			t.Errorf("%s %s: %d %s, want %d", x.method, x.path, status, body, x.want)
			return
		}
		if err := c.Check(req, status, header, body); err != nil {
			t.Error(err)
		}
		if op, _, ok := c.Find(req.Method, req.URL); ok {
			produced[fmt.Sprintf("%s %s %d", op.Method, op.Path, status)] = true
		}
	}
	for _, x := range exchanges {
		check(srv, x)
	}
	check(busy, exchange{"POST", "/mcp", `{"x":"` + strings.Repeat("a", api.SmallBody) + `"}`, mcpHeaders, 503})

	// The document lists no status the handler cannot answer, but those
	// API Gateway answers in front of the schedule function, and the MCP
	// transport's failure to connect a session, which no request causes.
	for _, op := range c.Operations() {
		if op.Path == "/healthz" || op.Path == "/metrics" {
			continue // followupd's; its end-to-end tests check them
		}
		for code, resp := range op.Op.Responses.Map() {
			key := op.Method + " " + op.Path + " " + code
			if produced[key] || resp.Value.Extensions["x-followups-answered-by"] == "api-gateway" || key == "POST /mcp 500" {
				continue
			}
			t.Errorf("the document lists %s, which no request of this test produced", key)
		}
	}
}

// The served document is the written one with the bounds in force, and
// needs no token.
func TestOpenAPIServedWithTheLimitsInForce(t *testing.T) {
	svc, err := followup.New(followup.Config{
		Store: inmem.NewStore(), Scheduler: inmem.NewScheduler(),
		Limits: followup.Limits{MinDelay: 90 * time.Second, MaxDelay: 48 * time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{Service: svc, Token: "tok"}))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	served, err := apitest.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	delay := served.Doc.Components.Schemas["DelaySeconds"].Value
	if delay.Min == nil || *delay.Min != 90 || delay.Max == nil || *delay.Max != 172800 {
		t.Errorf("served DelaySeconds bounds %v..%v, want 90..172800", delay.Min, delay.Max)
	}
	if !strings.HasPrefix(string(raw), "{\n  \"openapi\": \"3.1.0\",\n  \"info\": {") {
		t.Errorf("the served document does not keep the written order: %.80s", raw)
	}
}

func send(t *testing.T, srv *httptest.Server, x exchange) (*http.Request, int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(x.method, srv.URL+x.path, strings.NewReader(x.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok")
	if x.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(x.headers); i += 2 {
		switch name, value := x.headers[i], x.headers[i+1]; {
		case value == "<none>":
			req.Header.Del(name)
		case name == "Transfer-Encoding":
			// The body goes without a length, in chunks.
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(x.body)), -1
		default:
			req.Header[http.CanonicalHeaderKey(name)] = []string{value}
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return req, res.StatusCode, res.Header, body
}

// doJSON sends a request that must get want and returns the id it answered.
func doJSON(t *testing.T, srv *httptest.Server, method, path, body string, want int) string {
	t.Helper()
	_, status, _, raw := send(t, srv, exchange{method: method, path: path, body: body})
	if status != want {
		t.Fatalf("%s %s: %d %s", method, path, status, raw)
	}
	return jsonInto(t, raw, &followup.Followup{}).ID
}
