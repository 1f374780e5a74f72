package apigw_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/followups/followups/shared/api"
	"github.com/followups/followups/shared/apigw"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// readEvent reads a sample event from the repository's events/ folder, the
// files sam local invoke uses, so that they stay valid.
func readEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatalf("read sample event: %v", err)
	}
	var e events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return e
}

type apiFixture struct {
	serve func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	logs  *bytes.Buffer
}

func newAPI(t *testing.T) apiFixture {
	t.Helper()
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := followup.New(followup.Config{
		Store: inmem.NewStore(), Scheduler: inmem.NewScheduler(),
		Clock: fixedClock{time.Date(2026, 3, 12, 20, 3, 58, 0, time.UTC)},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := apigw.Rejoin(api.New(api.Options{Service: svc, Log: log}), "/threads/{thread_id}/followups")
	return apiFixture{serve: apigw.Handler(h), logs: logs}
}

func (a apiFixture) do(t *testing.T, e events.APIGatewayV2HTTPRequest) (int, map[string]any, events.APIGatewayV2HTTPResponse) {
	t.Helper()
	resp, err := a.serve(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("response body is not a JSON object: %v: %q", err, resp.Body)
	}
	return resp.StatusCode, body, resp
}

// create posts the sample create event with thread_id and run id replaced.
func (a apiFixture) create(t *testing.T, threadID, runID string) map[string]any {
	t.Helper()
	e := readEvent(t, "create.json")
	var req map[string]any
	if err := json.Unmarshal([]byte(e.Body), &req); err != nil {
		t.Fatal(err)
	}
	req["thread_id"], req["originating_run_id"] = threadID, runID
	b, _ := json.Marshal(req)
	e.Body = string(b)
	delete(e.Headers, "content-length")
	status, body, _ := a.do(t, e)
	if status != http.StatusCreated {
		t.Fatalf("create: status %d: %v", status, body)
	}
	return body
}

func TestRoundTripThroughAPI(t *testing.T) {
	a := newAPI(t)

	// The sample create event as it is.
	status, created, resp := a.do(t, readEvent(t, "create.json"))
	if status != http.StatusCreated || created["thread_id"] != "t-123" || created["status"] != "scheduled" {
		t.Fatalf("create: status %d, body %v", status, created)
	}
	id := created["id"].(string)
	if resp.Headers["Location"] != "/followups/"+id || !strings.HasPrefix(resp.Headers["Content-Type"], "application/json") {
		t.Errorf("create headers = %v", resp.Headers)
	}
	var logLine map[string]any
	if err := json.Unmarshal(bytes.SplitN(a.logs.Bytes(), []byte("\n"), 2)[0], &logLine); err != nil {
		t.Fatal(err)
	}
	if logLine["msg"] != "request" || logLine["request_id"] != "Hq4mZgAbIAMEV-Q=" {
		t.Errorf("request log line does not carry the gateway's request id: %v", logLine)
	}

	// The sample get event, pointed at the new followup.
	get := readEvent(t, "get.json")
	get.RawPath, get.RequestContext.HTTP.Path = "/followups/"+id, "/followups/"+id
	get.PathParameters = map[string]string{"id": id}
	status, got, _ := a.do(t, get)
	if status != http.StatusOK || got["id"] != id {
		t.Fatalf("get: status %d, body %v", status, got)
	}

	// The same create as base64, as API Gateway sends bodies it deems binary.
	e := readEvent(t, "create.json")
	e.Body = base64.StdEncoding.EncodeToString([]byte(e.Body))
	e.IsBase64Encoded = true
	status, again, _ := a.do(t, e)
	if status != http.StatusCreated || again["replaced_previous"] == nil {
		t.Fatalf("base64 create: status %d, body %v (want it to replace the first of run-42)", status, again)
	}

	// Unknown route: the API's JSON 404, not API Gateway's.
	status, body, _ := a.do(t, event(http.MethodGet, "/nowhere"))
	if status != http.StatusNotFound || body["error"].(map[string]any)["code"] != "not_found" {
		t.Errorf("unknown route: status %d, body %v", status, body)
	}
}

func TestRoundTripThreadWithSlash(t *testing.T) {
	const thread = "team/support desk"
	a := newAPI(t)
	first := a.create(t, thread, "run-1")
	a.create(t, thread, "run-2")
	a.create(t, "team", "run-3") // a different thread: must not be listed

	list := func(rawPath, rawQuery string) (int, map[string]any) {
		e := event(http.MethodGet, rawPath)
		e.RawQueryString = rawQuery
		status, body, _ := a.do(t, e)
		return status, body
	}
	escaped := "/threads/" + url.PathEscape(thread) + "/followups"
	decoded := "/threads/" + thread + "/followups" // what an HTTP API hands over
	for _, path := range []string{escaped, decoded} {
		t.Run(path, func(t *testing.T) {
			status, body := list(path, "limit=1")
			if status != http.StatusOK {
				t.Fatalf("list: status %d, body %v", status, body)
			}
			page := body["followups"].([]any)
			if len(page) != 1 || page[0].(map[string]any)["thread_id"] != thread {
				t.Fatalf("first page = %v", body)
			}
			cursor, _ := body["next_cursor"].(string)
			if cursor == "" {
				t.Fatal("no next_cursor after a page of 1 of 2")
			}
			status, body = list(path, "limit=1&cursor="+url.QueryEscape(cursor))
			if status != http.StatusOK || len(body["followups"].([]any)) != 1 || body["next_cursor"] != nil {
				t.Fatalf("second page: status %d, body %v", status, body)
			}
			status, body = list(path, "status=bogus")
			if status != http.StatusBadRequest || body["error"].(map[string]any)["field"] != "status" {
				t.Errorf("bad status query: status %d, body %v", status, body)
			}
		})
	}

	e := event(http.MethodDelete, decoded)
	status, body, _ := a.do(t, e)
	if status != http.StatusOK || body["cancelled"] != 2.0 {
		t.Fatalf("cancel thread: status %d, body %v", status, body)
	}
	ids := body["ids"].([]any)
	if ids[0] != first["id"] && ids[1] != first["id"] {
		t.Errorf("cancelled ids %v do not include %v", ids, first["id"])
	}
}
