package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/followups/followups/shared/followup"
)

// tools serves the three tools by calling the API.
type tools struct {
	api         http.Handler
	errorObject func(error) any
	log         *slog.Logger
}

// call is one tool call: the conversation and run the gateway named, and
// the arguments the agent gave.
type call struct {
	tool   string
	header http.Header
	thread string
	run    string
	raw    []byte // the arguments object as sent
	args   map[string]json.RawMessage
}

// begin reads a call of tool, whose arguments may be the names given. It
// refuses a call without a usable X-Thread-Id, and any other argument.
func begin(req *sdk.CallToolRequest, tool string, names ...string) (*call, error) {
	c := &call{tool: tool, header: http.Header{}}
	if req.Extra != nil && req.Extra.Header != nil {
		c.header = req.Extra.Header
	}
	c.thread, c.run = c.header.Get(ThreadHeader), c.header.Get(RunHeader)
	if c.thread == "" {
		return c, followup.FieldErrorf(followup.CodeInvalidArgument, ThreadHeader,
			"the %s header is required: the gateway that runs the agent names the conversation with it", ThreadHeader)
	}
	if err := followup.ValidateThreadID(c.thread); err != nil {
		return c, fromHeaders(err)
	}
	if !utf8.ValidString(c.run) {
		return c, followup.FieldErrorf(followup.CodeInvalidArgument, RunHeader, "%s must be valid UTF-8", RunHeader)
	}
	c.raw = bytes.TrimSpace(req.Params.Arguments)
	if len(c.raw) == 0 || string(c.raw) == "null" {
		c.raw = []byte("{}")
	}
	if err := json.Unmarshal(c.raw, &c.args); err != nil || c.raw[0] != '{' {
		return c, followup.Errorf(followup.CodeInvalidArgument, "the arguments of %s must be a JSON object", tool)
	}
	for _, name := range slices.Sorted(maps.Keys(c.args)) {
		if !slices.Contains(names, name) {
			return c, followup.FieldErrorf(followup.CodeInvalidArgument, name, "unknown argument %q: %s takes %s", name, tool, strings.Join(names, ", "))
		}
	}
	return c, nil
}

func (t *tools) schedule(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	c, err := begin(req, ScheduleTool, "prompt", "delay_seconds", "run_at", "timezone", "reason")
	if err != nil {
		return t.refuse(ctx, c, err), nil
	}
	var f followup.Followup
	if err := t.do(ctx, c, http.MethodPost, "/followups", c.createBody(), &f); err != nil {
		return t.refuse(ctx, c, fromHeaders(err)), nil
	}
	text := fmt.Sprintf("Scheduled followup %s for %s (in %s).", f.ID, f.RunAt.UTC().Format(timeFormat), short(f.RunAt.Sub(f.CreatedAt)))
	if r := f.ReplacedPrevious; r != nil {
		text += fmt.Sprintf(" It replaces %s of the same run, now %s.", r.ID, r.Status)
	}
	return t.result(ctx, c, text, shown(&f), "followup_id", f.ID), nil
}

func (t *tools) list(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	c, err := begin(req, ListTool, "status", "limit", "cursor")
	if err != nil {
		return t.refuse(ctx, c, err), nil
	}
	q := url.Values{}
	for _, name := range []string{"status", "limit", "cursor"} {
		if v, ok := c.param(name); ok {
			q.Set(name, v)
		}
	}
	target := "/threads/" + url.PathEscape(c.thread) + "/followups"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var page struct {
		Followups  []*followup.Followup `json:"followups"`
		NextCursor string               `json:"next_cursor"`
	}
	if err := t.do(ctx, c, http.MethodGet, target, nil, &page); err != nil {
		return t.refuse(ctx, c, err), nil
	}
	res := listResult{Followups: make([]listed, len(page.Followups)), NextCursor: page.NextCursor}
	lines := []string{fmt.Sprintf("%d followups of this conversation.", len(page.Followups))}
	for i, f := range page.Followups {
		res.Followups[i] = listedOf(f)
		lines = append(lines, fmt.Sprintf("%s %s, for %s.", f.ID, f.Status, f.RunAt.UTC().Format(timeFormat)))
	}
	if page.NextCursor != "" {
		lines = append(lines, "More follow: call again with cursor set to next_cursor.")
	}
	return t.result(ctx, c, strings.Join(lines, "\n"), res), nil
}

func (t *tools) cancel(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	c, err := begin(req, CancelTool, "followup_id")
	if err != nil {
		return t.refuse(ctx, c, err), nil
	}
	id, err := c.requiredString("followup_id")
	if err != nil {
		return t.refuse(ctx, c, err), nil
	}
	target := "/followups/" + url.PathEscape(id)
	var f followup.Followup
	if err := t.do(ctx, c, http.MethodGet, target, nil, &f); err != nil {
		return t.refuse(ctx, c, err), nil
	}
	if f.ThreadID != c.thread {
		// Another conversation's followup is one this one cannot see.
		return t.refuse(ctx, c, followup.NotFound(id)), nil
	}
	if err := t.do(ctx, c, http.MethodDelete, target, nil, &f); err != nil {
		return t.refuse(ctx, c, err), nil
	}
	return t.result(ctx, c, fmt.Sprintf("Cancelled followup %s: it will not fire.", f.ID), shown(&f), "followup_id", f.ID), nil
}

// do makes one request to the API, as the caller, and decodes a 2xx answer
// into v. Any other answer is returned as the *followup.Error it carries.
func (t *tools) do(ctx context.Context, c *call, method, target string, body []byte, v any) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, target, err)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, name := range []string{"Authorization", "X-Request-Id"} {
		if value := c.header.Get(name); value != "" {
			r.Header.Set(name, value)
		}
	}
	rec := &recorder{header: http.Header{}}
	t.api.ServeHTTP(rec, r)
	if rec.status/100 == 2 {
		if err := json.Unmarshal(rec.body.Bytes(), v); err != nil {
			return fmt.Errorf("decode the answer to %s %s: %w", method, r.URL.Path, err)
		}
		return nil
	}
	var answer struct {
		Error struct {
			Code    followup.Code `json:"code"`
			Message string        `json:"message"`
			Field   string        `json:"field"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &answer); err != nil || answer.Error.Code == "" {
		return fmt.Errorf("%s %s answered %d without an error object", method, r.URL.Path, rec.status)
	}
	return &followup.Error{Code: answer.Error.Code, Message: answer.Error.Message, Field: answer.Error.Field}
}

// result is a tool's answer: a short text and the structured result.
func (t *tools) result(ctx context.Context, c *call, text string, structured any, attrs ...any) *sdk.CallToolResult {
	t.log.InfoContext(ctx, "tool call", append([]any{"tool", c.tool, "thread_id", c.thread, "outcome", "ok"}, attrs...)...)
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: text}}, StructuredContent: structured}
}

// refuse is a refused call: a tool error whose text is the error's message
// and whose structured content is the API's error object. An error without
// a code is a bug, shown as internal and logged.
func (t *tools) refuse(ctx context.Context, c *call, err error) *sdk.CallToolResult {
	var e *followup.Error
	if !errors.As(err, &e) || e.Code == followup.CodeInternal {
		t.log.ErrorContext(ctx, "tool call failed", "tool", c.tool, "error", err)
		e = followup.Errorf(followup.CodeInternal, "internal error")
	}
	attrs := []any{"tool", c.tool, "thread_id", c.thread, "outcome", e.Code}
	if e.Field != "" {
		attrs = append(attrs, "field", e.Field)
	}
	t.log.InfoContext(ctx, "tool call", attrs...)
	return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: e.Message}}, StructuredContent: t.errorObject(e)}
}

// createBody is the POST /followups body of a schedule_followup call: the
// thread and run from the headers, then the arguments as the agent wrote
// them, so the API sees (and refuses) exactly what was sent.
func (c *call) createBody() []byte {
	var b bytes.Buffer
	b.WriteString(`{"thread_id":`)
	b.Write(quote(c.thread))
	if c.run != "" {
		b.WriteString(`,"originating_run_id":`)
		b.Write(quote(c.run))
	}
	if inner := bytes.TrimSpace(c.raw[1 : len(c.raw)-1]); len(inner) > 0 {
		b.WriteByte(',')
		b.Write(inner)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// param returns a list argument as a query parameter: a string as its
// text, anything else as its JSON literal, for the API to judge.
func (c *call) param(name string) (string, bool) {
	raw, ok := c.args[name]
	if !ok || string(raw) == "null" {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true
	}
	return string(raw), true
}

// requiredString returns a string argument that must be given.
func (c *call) requiredString(name string) (string, error) {
	raw, ok := c.args[name]
	var s string
	if !ok || string(raw) == "null" || (json.Unmarshal(raw, &s) == nil && s == "") {
		return "", followup.FieldErrorf(followup.CodeInvalidArgument, name, "%s is required", name)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", followup.FieldErrorf(followup.CodeInvalidArgument, name, "%s must be a string", name)
	}
	return s, nil
}

// fromHeaders names the header a field came from: the agent gives neither
// thread_id nor originating_run_id, its gateway does.
func fromHeaders(err error) error {
	var e *followup.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Field {
	case "thread_id":
		return &followup.Error{Code: e.Code, Message: e.Message, Field: ThreadHeader}
	case "originating_run_id":
		return &followup.Error{Code: e.Code, Message: e.Message, Field: RunHeader}
	}
	return e
}

// short writes d to the second without zero units: 1h, 1h30m, 90s as 1m30s.
func short(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func quote(s string) []byte {
	b, _ := json.Marshal(s) // valid UTF-8 always encodes
	return b
}

// recorder keeps an in-process answer of the API.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
