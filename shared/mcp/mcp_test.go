package mcp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/followups/followups/shared/api"
	"github.com/followups/followups/shared/api/apitest"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
	"github.com/followups/followups/shared/mcp"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// newAPI serves the API, /mcp included, with a token and delay bounds of
// 2 minutes to 2 hours.
func newAPI(t *testing.T) (*httptest.Server, *followup.Service) {
	t.Helper()
	svc, err := followup.New(followup.Config{
		Store: inmem.NewStore(), Scheduler: inmem.NewScheduler(), Clock: fixedClock{now},
		Limits: followup.Limits{MinDelay: 2 * time.Minute, MaxDelay: 2 * time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{Service: svc, Token: "tok"}))
	t.Cleanup(srv.Close)
	return srv, svc
}

// headers adds fixed headers to every request.
type headers struct {
	set  map[string]string
	next http.RoundTripper
}

func (h headers) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.set {
		r.Header.Set(k, v)
	}
	return h.next.RoundTrip(r)
}

// connect opens a session with the SDK's own client, as an agent's gateway
// would, sending set on every request.
func connect(t *testing.T, srv *httptest.Server, protocol string, set map[string]string) *sdk.ClientSession {
	t.Helper()
	if _, ok := set["Authorization"]; !ok {
		set["Authorization"] = "Bearer tok"
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "gateway", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &sdk.StreamableClientTransport{
		Endpoint:   srv.URL + "/mcp",
		HTTPClient: &http.Client{Transport: headers{set: set, next: http.DefaultTransport}},
	}, &sdk.ClientSessionOptions{ProtocolVersion: protocol})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) (*sdk.CallToolResult, map[string]any) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var structured map[string]any
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &structured)
	// The structured content is what openapi.json says it is.
	schema := map[string]string{mcp.ScheduleTool: "ToolFollowup", mcp.CancelTool: "ToolFollowup", mcp.ListTool: "ToolFollowupPage"}[tool]
	if res.IsError {
		schema = "Error"
	}
	contract, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := contract.CheckSchema(schema, b); err != nil {
		t.Errorf("%s: %v", tool, err)
	}
	return res, structured
}

func text(res *sdk.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// errorOf returns the code and field of a refused call's error object.
func errorOf(t *testing.T, res *sdk.CallToolResult, structured map[string]any) (code, field string) {
	t.Helper()
	if !res.IsError {
		t.Fatalf("call succeeded: %s %v", text(res), structured)
	}
	e, _ := structured["error"].(map[string]any)
	if e == nil || e["message"] != text(res) {
		t.Fatalf("refusal %q: structured content %v is not the error object with the text as message", text(res), structured)
	}
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return code, field
}

func TestToolsDescribeTheLimitsInForce(t *testing.T) {
	srv, _ := newAPI(t)
	for _, protocol := range []string{"", "2025-06-18"} {
		t.Run("protocol "+protocol, func(t *testing.T) {
			cs := connect(t, srv, protocol, map[string]string{})
			res, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]*sdk.Tool{}
			for _, tool := range res.Tools {
				byName[tool.Name] = tool
			}
			if len(byName) != 3 || byName[mcp.ScheduleTool] == nil || byName[mcp.ListTool] == nil || byName[mcp.CancelTool] == nil {
				t.Fatalf("tools: %v", byName)
			}
			schedule := byName[mcp.ScheduleTool]
			if !strings.Contains(schedule.Description, "120 to 7200 seconds (2 minutes to 2 hours)") {
				t.Errorf("schedule_followup's description does not state the range in force: %s", schedule.Description)
			}
			var schema struct {
				Properties map[string]map[string]any `json:"properties"`
				Required   []string                  `json:"required"`
				Additional bool                      `json:"additionalProperties"`
			}
			b, _ := json.Marshal(schedule.InputSchema)
			if err := json.Unmarshal(b, &schema); err != nil {
				t.Fatal(err)
			}
			delay := schema.Properties["delay_seconds"]
			if delay["type"] != "integer" || delay["minimum"] != 120.0 || delay["maximum"] != 7200.0 {
				t.Errorf("delay_seconds schema %v, want an integer in 120..7200", delay)
			}
			if schema.Properties["prompt"]["maxLength"] != float64(followup.MaxPromptBytes) || schema.Properties["reason"]["maxLength"] != float64(followup.MaxReasonBytes) {
				t.Errorf("prompt and reason schemas do not carry their limits: %v", schema.Properties)
			}
			if _, ok := schema.Properties["thread_id"]; ok || schema.Additional || len(schema.Required) != 1 || schema.Required[0] != "prompt" {
				t.Errorf("schedule_followup takes a thread or other arguments: %s", b)
			}
		})
	}
}

func TestScheduleListCancel(t *testing.T) {
	srv, svc := newAPI(t)
	for _, protocol := range []string{"", "2025-06-18"} {
		t.Run("protocol "+protocol, func(t *testing.T) {
			thread := "team/a b" + protocol
			cs := connect(t, srv, protocol, map[string]string{mcp.ThreadHeader: thread, mcp.RunHeader: "run-1"})
			res, first := call(t, cs, mcp.ScheduleTool, map[string]any{"prompt": "Check the build.", "delay_seconds": 600, "reason": "waiting on CI"})
			if res.IsError || first["thread_id"] != thread || first["originating_run_id"] != "run-1" || first["status"] != "scheduled" ||
				first["scheduled_for"] != "2026-11-27T12:10:00Z" || first["scheduled_for_unix"] != float64(now.Add(10*time.Minute).Unix()) ||
				first["delay_seconds_requested"] != 600.0 || first["reason"] != "waiting on CI" {
				t.Fatalf("schedule: %s %v", text(res), first)
			}
			id := first["followup_id"].(string)
			if want := "Scheduled followup " + id + " for 2026-11-27T12:10:00Z (in 10m)."; text(res) != want {
				t.Errorf("text %q, want %q", text(res), want)
			}
			if f, err := svc.Get(context.Background(), id); err != nil || f.ThreadID != thread || f.OriginatingRunID != "run-1" || f.Prompt != "Check the build." {
				t.Fatalf("stored: %+v %v", f, err)
			}

			// The same run again replaces it.
			res, second := call(t, cs, mcp.ScheduleTool, map[string]any{"prompt": "Check the build again.", "run_at": "2026-11-27T14:00:00+01:00"})
			prev, _ := second["replaced_previous"].(map[string]any)
			if res.IsError || prev["followup_id"] != id || prev["status"] != "cancelled" || second["scheduled_for"] != "2026-11-27T13:00:00Z" {
				t.Fatalf("second schedule: %s %v", text(res), second)
			}

			res, page := call(t, cs, mcp.ListTool, map[string]any{"limit": 1})
			items, _ := page["followups"].([]any)
			if res.IsError || len(items) != 1 || page["next_cursor"] == nil {
				t.Fatalf("list: %s %v", text(res), page)
			}
			res, rest := call(t, cs, mcp.ListTool, map[string]any{"limit": 1, "cursor": page["next_cursor"]})
			more, _ := rest["followups"].([]any)
			if res.IsError || len(more) != 1 || rest["next_cursor"] != nil {
				t.Fatalf("second page: %s %v", text(res), rest)
			}
			res, scheduled := call(t, cs, mcp.ListTool, map[string]any{"status": "scheduled"})
			only, _ := scheduled["followups"].([]any)
			if res.IsError || len(only) != 1 || only[0].(map[string]any)["followup_id"] != second["followup_id"] || only[0].(map[string]any)["attempts"] != 0.0 {
				t.Fatalf("scheduled: %s %v", text(res), scheduled)
			}

			res, cancelled := call(t, cs, mcp.CancelTool, map[string]any{"followup_id": second["followup_id"]})
			if res.IsError || cancelled["status"] != "cancelled" {
				t.Fatalf("cancel: %s %v", text(res), cancelled)
			}
			res, again := call(t, cs, mcp.CancelTool, map[string]any{"followup_id": second["followup_id"]})
			if code, _ := errorOf(t, res, again); code != "conflict" {
				t.Fatalf("second cancel: %s", code)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	srv, svc := newAPI(t)
	other := connect(t, srv, "", map[string]string{mcp.ThreadHeader: "t-other"})
	_, theirs := call(t, other, mcp.ScheduleTool, map[string]any{"prompt": "theirs", "delay_seconds": 300})

	cs := connect(t, srv, "", map[string]string{mcp.ThreadHeader: "t-mine", mcp.RunHeader: strings.Repeat("r", 257)})
	noThread := connect(t, srv, "", map[string]string{})
	for _, tc := range []struct {
		name        string
		session     *sdk.ClientSession
		tool        string
		args        map[string]any
		code, field string
	}{
		{"no X-Thread-Id", noThread, mcp.ScheduleTool, map[string]any{"prompt": "p", "delay_seconds": 300}, "invalid_argument", mcp.ThreadHeader},
		{"no X-Thread-Id to list", noThread, mcp.ListTool, nil, "invalid_argument", mcp.ThreadHeader},
		{"delay out of range", other, mcp.ScheduleTool, map[string]any{"prompt": "p", "delay_seconds": 60}, "out_of_range", "delay_seconds"},
		{"delay not an integer", other, mcp.ScheduleTool, map[string]any{"prompt": "p", "delay_seconds": 300.5}, "invalid_argument", "delay_seconds"},
		{"both times", other, mcp.ScheduleTool, map[string]any{"prompt": "p", "delay_seconds": 300, "run_at": "2026-11-27T13:00:00Z"}, "invalid_argument", "delay_seconds"},
		{"a thread argument", other, mcp.ScheduleTool, map[string]any{"prompt": "p", "delay_seconds": 300, "thread_id": "t-mine"}, "invalid_argument", "thread_id"},
		{"a run id too long", cs, mcp.ScheduleTool, map[string]any{"prompt": "p", "delay_seconds": 300}, "invalid_argument", mcp.RunHeader},
		{"blank prompt", other, mcp.ScheduleTool, map[string]any{"prompt": " ", "delay_seconds": 300}, "invalid_argument", "prompt"},
		{"bad status", other, mcp.ListTool, map[string]any{"status": "done"}, "invalid_argument", "status"},
		{"bad limit", other, mcp.ListTool, map[string]any{"limit": 101}, "invalid_argument", "limit"},
		{"a borrowed cursor", cs, mcp.ListTool, map[string]any{"cursor": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "invalid_argument", "cursor"},
		{"no followup_id", other, mcp.CancelTool, map[string]any{}, "invalid_argument", "followup_id"},
		{"another thread's followup", cs, mcp.CancelTool, map[string]any{"followup_id": theirs["followup_id"]}, "not_found", ""},
		{"an unknown followup", cs, mcp.CancelTool, map[string]any{"followup_id": "fu_nope"}, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, structured := call(t, tc.session, tc.tool, tc.args)
			if code, field := errorOf(t, res, structured); code != tc.code || field != tc.field {
				t.Errorf("%s / %s (%s), want %s / %s", code, field, text(res), tc.code, tc.field)
			}
		})
	}
	page, _, err := svc.List(context.Background(), followup.ListQuery{ThreadID: "t-mine", Limit: 10})
	if err != nil || len(page) != 0 {
		t.Errorf("refused calls created %d followups (%v)", len(page), err)
	}
	if f, err := svc.Get(context.Background(), theirs["followup_id"].(string)); err != nil || f.Status != followup.StatusScheduled {
		t.Errorf("another thread's followup: %+v %v", f, err)
	}
	if got := text(mustCall(t, other, mcp.ScheduleTool, map[string]any{"prompt": "p", "delay_seconds": 60})); got != "delay_seconds out of range: must be in 120..7200, got 60" {
		t.Errorf("the refusal's text is not the API's message: %q", got)
	}
}

func mustCall(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) *sdk.CallToolResult {
	t.Helper()
	res, _ := call(t, cs, tool, args)
	return res
}

// The endpoint answers as every route does: authentication first, the
// error object for what the transport refuses, 405 for GET.
func TestEndpoint(t *testing.T) {
	srv, _ := newAPI(t)
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`
	for _, tc := range []struct {
		name, method, body string
		header             map[string]string
		status             int
		code               string
	}{
		{"no token", "POST", initialize, map[string]string{"Authorization": ""}, 401, "unauthorized"},
		{"GET", "GET", "", nil, 405, "method_not_allowed"},
		{"DELETE", "DELETE", "", nil, 405, "method_not_allowed"},
		{"no Content-Type", "POST", initialize, map[string]string{"Content-Type": ""}, 415, "unsupported_media_type"},
		{"not JSON", "POST", `{"jsonrpc":`, nil, 400, "invalid_json"},
		{"Accept without the event stream", "POST", initialize, map[string]string{"Accept": "application/json"}, 400, "invalid_argument"},
		{"not JSON-RPC", "POST", `{"hello":1}`, nil, 400, "invalid_argument"},
		{"too large", "POST", `{"x":"` + strings.Repeat("a", followup.MaxBodyBytes) + `"}`, nil, 413, "payload_too_large"},
		{"initialize", "POST", initialize, nil, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+"/mcp", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer tok")
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			raw, _ := io.ReadAll(res.Body)
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			if err := json.Unmarshal(raw, &body); err != nil || res.StatusCode != tc.status || body.Error.Code != tc.code ||
				res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%d %s %q, want %d %q", res.StatusCode, res.Header.Get("Content-Type"), raw, tc.status, tc.code)
			}
		})
	}
}
