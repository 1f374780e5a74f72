package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/followups/followups/shared/api/apitest"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/mcp"
)

// Session opens a session as the agent's gateway would, naming the thread
// and run in the headers (empty values are not sent).
func (tg Target) Session(t *testing.T, thread, run string) *sdk.ClientSession {
	t.Helper()
	h := tg.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if thread != "" {
		h.Set(mcp.ThreadHeader, thread)
	}
	if run != "" {
		h.Set(mcp.RunHeader, run)
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "e2e-gateway", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &sdk.StreamableClientTransport{
		Endpoint: tg.BaseURL + "/mcp", HTTPClient: &http.Client{Transport: WithHeader(h, tg.Transport)},
	}, nil)
	if err != nil {
		t.Fatalf("connect to %s/mcp: %v", tg.BaseURL, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// Result is a tool call's answer.
type Result struct {
	*sdk.CallToolResult
	Structured map[string]any
}

// Text is the answer's text.
func (r Result) Text() string {
	var parts []string
	for _, c := range r.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// Code is a refused call's error code ("" for a result).
func (r Result) Code() string {
	e, _ := r.Structured["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// Call calls a tool and checks its structured content against
// openapi.json: ToolFollowup, ToolFollowupPage, or the Error object of a
// refusal, whose message is the text.
func Call(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) Result {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	r := Result{CallToolResult: res}
	raw, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(raw, &r.Structured)
	schema := map[string]string{mcp.ScheduleTool: "ToolFollowup", mcp.CancelTool: "ToolFollowup", mcp.ListTool: "ToolFollowupPage"}[tool]
	if res.IsError {
		schema = "Error"
		if e, _ := r.Structured["error"].(map[string]any); e == nil || e["message"] != r.Text() {
			t.Errorf("%s refused with text %q and structured content %s", tool, r.Text(), raw)
		}
	}
	doc, err := apitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.CheckSchema(schema, raw); err != nil {
		t.Errorf("%s: %v", tool, err)
	}
	return r
}

// MCP is the scenario of the agent's tools: the tools listed with their limits; a schedule that
// is stored with the headers' thread and run and delivered; a second call
// of the same run replacing the first; the list; a cancel; the refusals
// (no X-Thread-Id, a delay out of range, another thread's followup), which
// create nothing. It runs on t itself, not in subtests: the targets' helpers
// fail the test they were made for.
func MCP(t *testing.T, tg Target) {
	thread := fmt.Sprintf("team/agent %d", time.Now().UnixNano())
	run := "run-" + fmt.Sprint(time.Now().UnixNano())
	cs := tg.Session(t, thread, run)
	lo, hi := tg.Limits.DelaySeconds()

	// The tools, with the limits in force.
	{
		res, err := cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		tools := map[string]*sdk.Tool{}
		for _, tool := range res.Tools {
			tools[tool.Name] = tool
		}
		if len(tools) != 3 || tools[mcp.ScheduleTool] == nil || tools[mcp.ListTool] == nil || tools[mcp.CancelTool] == nil {
			t.Fatalf("tools: %v", tools)
		}
		var schema struct {
			Properties map[string]map[string]any `json:"properties"`
		}
		raw, _ := json.Marshal(tools[mcp.ScheduleTool].InputSchema)
		_ = json.Unmarshal(raw, &schema)
		if d := schema.Properties["delay_seconds"]; d["minimum"] != float64(lo) || d["maximum"] != float64(hi) {
			t.Errorf("delay_seconds schema %v, want %d..%d", d, lo, hi)
		}
		if !strings.Contains(tools[mcp.ScheduleTool].Description, tg.Limits.String()) {
			t.Errorf("schedule_followup's description does not state %q: %s", tg.Limits, tools[mcp.ScheduleTool].Description)
		}
		raw, _ = json.Marshal(tools[mcp.ListTool].InputSchema)
		_ = json.Unmarshal(raw, &schema)
		if l := schema.Properties["limit"]; l["minimum"] != 1.0 || l["maximum"] != float64(followup.MaxListLimit) {
			t.Errorf("limit schema %v", l)
		}
	}

	// A schedule, then a second one of the same run, which replaces it.
	var first, second string
	{
		r := Call(t, cs, mcp.ScheduleTool, map[string]any{"prompt": "Check whether the nightly build finished.", "delay_seconds": hi, "reason": "waiting on CI"})
		if r.IsError || r.Structured["thread_id"] != thread || r.Structured["originating_run_id"] != run || r.Structured["status"] != "scheduled" {
			t.Fatalf("schedule: %s %v", r.Text(), r.Structured)
		}
		first = r.Structured["followup_id"].(string)
		if f := tg.Get(t, first); f.ThreadID != thread || f.OriginatingRunID != run || f.Reason != "waiting on CI" ||
			f.DelaySecondsRequested == nil || *f.DelaySecondsRequested != hi {
			t.Fatalf("the followup as stored: %+v", f)
		}
		r = Call(t, cs, mcp.ScheduleTool, map[string]any{"prompt": "Check the build now.", "delay_seconds": lo})
		prev, _ := r.Structured["replaced_previous"].(map[string]any)
		if r.IsError || prev["followup_id"] != first || prev["status"] != "cancelled" {
			t.Fatalf("second schedule of the run: %s %v", r.Text(), r.Structured)
		}
		second = r.Structured["followup_id"].(string)
		if f := tg.Get(t, first); f.Status != followup.StatusCancelled {
			t.Errorf("the replaced followup is %s", f.Status)
		}
		if f := tg.WaitSettled(t, second); f.Status != followup.StatusDelivered || f.ThreadID != thread || tg.Deliveries(second) != 1 {
			t.Errorf("the second followup: %s, %d deliveries", f.Status, tg.Deliveries(second))
		}
		if n := tg.Deliveries(first); n != 0 {
			t.Errorf("the replaced followup was delivered %d times", n)
		}
	}

	// The list, and a cancel.
	{
		c := Call(t, cs, mcp.ScheduleTool, map[string]any{"prompt": "Ask whether the fix worked.", "run_at": time.Now().Add(time.Duration(hi/2) * time.Second).UTC().Format(time.RFC3339)})
		if c.IsError {
			t.Fatalf("schedule: %s", c.Text())
		}
		third := c.Structured["followup_id"].(string)
		r := Call(t, cs, mcp.ListTool, nil)
		items, _ := r.Structured["followups"].([]any)
		statuses := map[string]any{}
		for _, it := range items {
			m := it.(map[string]any)
			statuses[m["followup_id"].(string)] = m["status"]
		}
		if r.IsError || len(items) != 3 || statuses[first] != "cancelled" || statuses[second] != "delivered" || statuses[third] != "scheduled" {
			t.Fatalf("list: %s %v", r.Text(), r.Structured)
		}
		r = Call(t, cs, mcp.ListTool, map[string]any{"status": "scheduled", "limit": 1})
		if items, _ := r.Structured["followups"].([]any); r.IsError || len(items) != 1 {
			t.Fatalf("list of the scheduled: %s %v", r.Text(), r.Structured)
		}
		r = Call(t, cs, mcp.CancelTool, map[string]any{"followup_id": third})
		if r.IsError || r.Structured["status"] != "cancelled" || tg.Get(t, third).Status != followup.StatusCancelled {
			t.Fatalf("cancel: %s %v", r.Text(), r.Structured)
		}
		if r := Call(t, cs, mcp.CancelTool, map[string]any{"followup_id": second}); r.Code() != "conflict" {
			t.Errorf("cancel of a delivered followup: %s %v", r.Text(), r.Structured)
		}
	}

	// Refusals, which create nothing.
	{
		before := len(listed(t, cs))
		if r := Call(t, tg.Session(t, "", run), mcp.ScheduleTool, map[string]any{"prompt": "p", "delay_seconds": lo}); r.Code() != "invalid_argument" ||
			!strings.Contains(r.Text(), mcp.ThreadHeader) {
			t.Errorf("without X-Thread-Id: %s %v", r.Text(), r.Structured)
		}
		for _, delay := range []int64{lo - 1, hi + 1} {
			if r := Call(t, cs, mcp.ScheduleTool, map[string]any{"prompt": "p", "delay_seconds": delay}); r.Code() != "out_of_range" {
				t.Errorf("delay %d: %s %v", delay, r.Text(), r.Structured)
			}
		}
		other := tg.Session(t, thread+" (other)", "")
		if r := Call(t, other, mcp.CancelTool, map[string]any{"followup_id": second}); r.Code() != "not_found" {
			t.Errorf("another thread's followup: %s %v", r.Text(), r.Structured)
		}
		if r := Call(t, other, mcp.ListTool, nil); len(r.Structured["followups"].([]any)) != 0 {
			t.Errorf("another thread lists %v", r.Structured)
		}
		if after := len(listed(t, cs)); after != before {
			t.Errorf("refused calls changed the thread's followups from %d to %d", before, after)
		}
	}
}

func listed(t *testing.T, cs *sdk.ClientSession) []any {
	t.Helper()
	r := Call(t, cs, mcp.ListTool, nil)
	items, _ := r.Structured["followups"].([]any)
	return items
}
