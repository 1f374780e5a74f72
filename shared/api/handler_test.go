package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/shared/api"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func newServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	svc, err := followup.New(followup.Config{
		Store: inmem.NewStore(), Scheduler: inmem.NewScheduler(),
		Clock: fixedClock{time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Options{Service: svc, Token: token}))
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, srv *httptest.Server, method, path, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "<none>" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header[http.CanonicalHeaderKey(headers[i])] = []string{headers[i+1]}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return r
}

func (r response) errorCode() (code, field string) {
	e, _ := r.body["error"].(map[string]any)
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return code, field
}

const valid = `{"thread_id":"t-1","prompt":"check the build","delay_seconds":3600}`

func TestErrors(t *testing.T) {
	srv := newServer(t, "")
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code, field              string
	}{
		{"unknown route", "GET", "/nope", "", nil, 404, "not_found", ""},
		{"trailing slash", "GET", "/followups/", "", nil, 404, "not_found", ""},
		{"method not allowed", "PUT", "/followups", valid, nil, 405, "method_not_allowed", ""},
		{"method not allowed on id", "POST", "/followups/fu_x", valid, nil, 405, "method_not_allowed", ""},
		{"no content type", "POST", "/followups", valid, []string{"Content-Type", "<none>"}, 415, "unsupported_media_type", ""},
		{"text content type", "POST", "/followups", valid, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", ""},
		{"charset allowed", "POST", "/followups", valid, []string{"Content-Type", "application/json; charset=utf-8"}, 201, "", ""},
		{"too large", "POST", "/followups", `{"thread_id":"` + strings.Repeat("a", 70000) + `"}`, nil, 413, "payload_too_large", ""},
		{"415 before 413", "POST", "/followups", strings.Repeat("a", 70000), []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", ""},
		{"invalid json", "POST", "/followups", `{`, nil, 400, "invalid_json", ""},
		{"wrong type", "POST", "/followups", `{"thread_id":"t","prompt":"p","delay_seconds":"60"}`, nil, 400, "invalid_argument", "delay_seconds"},
		{"out of range", "POST", "/followups", `{"thread_id":"t","prompt":"p","delay_seconds":5}`, nil, 400, "out_of_range", "delay_seconds"},
		{"empty idempotency key", "POST", "/followups", valid, []string{"Idempotency-Key", ""}, 400, "invalid_argument", "Idempotency-Key"},
		{"bad idempotency key", "POST", "/followups", valid, []string{"Idempotency-Key", "a b"}, 400, "invalid_argument", "Idempotency-Key"},
		{"get unknown", "GET", "/followups/fu_nope", "", nil, 404, "not_found", ""},
		{"cancel unknown", "DELETE", "/followups/fu_nope", "", nil, 404, "not_found", ""},
		{"list bad status", "GET", "/threads/t-1/followups?status=done", "", nil, 400, "invalid_argument", "status"},
		{"list empty status", "GET", "/threads/t-1/followups?status=", "", nil, 400, "invalid_argument", "status"},
		{"list limit zero", "GET", "/threads/t-1/followups?limit=0", "", nil, 400, "invalid_argument", "limit"},
		{"list limit 101", "GET", "/threads/t-1/followups?limit=101", "", nil, 400, "invalid_argument", "limit"},
		{"list limit text", "GET", "/threads/t-1/followups?limit=ten", "", nil, 400, "invalid_argument", "limit"},
		{"list garbled cursor", "GET", "/threads/t-1/followups?cursor=%%%", "", nil, 400, "invalid_argument", "cursor"},
		{"list forged cursor", "GET", "/threads/t-1/followups?cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", nil, 400, "invalid_argument", "cursor"},
		{"list control char thread", "GET", "/threads/a%0Ab/followups", "", nil, 400, "invalid_argument", "thread_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %v", r.status, tt.status, r.body)
			}
			if tt.code == "" {
				return
			}
			code, field := r.errorCode()
			if code != tt.code || field != tt.field {
				t.Fatalf("error %s field %q, want %s field %q: %v", code, field, tt.code, tt.field, r.body)
			}
			if tt.status == 405 && r.header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
}

func TestAuth(t *testing.T) {
	srv := newServer(t, "s3cret")
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/followups", valid}, {"GET", "/followups/fu_x", ""}, {"DELETE", "/followups/fu_x", ""},
		{"GET", "/threads/t/followups", ""}, {"DELETE", "/threads/t/followups", ""}, {"GET", "/unknown", ""}, {"PATCH", "/followups", ""},
	} {
		for _, auth := range []string{"<none>", "Bearer wrong", "s3cret", "Basic s3cret"} {
			r := do(t, srv, tt.method, tt.path, tt.body, "Authorization", auth)
			if code, _ := r.errorCode(); r.status != 401 || code != "unauthorized" {
				t.Errorf("%s %s with %q: %d %s", tt.method, tt.path, auth, r.status, code)
			}
		}
		r := do(t, srv, tt.method, tt.path, tt.body, "Authorization", "Bearer s3cret")
		if r.status == 401 {
			t.Errorf("%s %s with the token: 401", tt.method, tt.path)
		}
	}
}

func TestCreateGetCancel(t *testing.T) {
	srv := newServer(t, "")
	r := do(t, srv, "POST", "/followups", valid, "Idempotency-Key", "k-1")
	if r.status != 201 {
		t.Fatalf("create: %d %v", r.status, r.body)
	}
	id := r.body["id"].(string)
	if loc := r.header.Get("Location"); loc != "/followups/"+id {
		t.Fatalf("Location %q", loc)
	}
	for _, k := range []string{"id", "thread_id", "prompt", "run_at", "delay_seconds_requested", "status", "attempts", "runs", "created_at", "updated_at"} {
		if _, ok := r.body[k]; !ok {
			t.Errorf("create response lacks %s", k)
		}
	}
	if r.body["run_at"] != "2026-11-27T13:00:00Z" || r.body["status"] != "scheduled" {
		t.Fatalf("create response %v", r.body)
	}
	if runs, ok := r.body["runs"].([]any); !ok || len(runs) != 0 {
		t.Fatalf("runs %v, want []", r.body["runs"])
	}
	replay := do(t, srv, "POST", "/followups", `{"delay_seconds":3600,"prompt":"check the build","thread_id":"t-1"}`, "Idempotency-Key", "k-1")
	if replay.status != 200 || replay.body["id"] != id {
		t.Fatalf("replay %d %v", replay.status, replay.body)
	}
	conflict := do(t, srv, "POST", "/followups", `{"thread_id":"t-1","prompt":"x","delay_seconds":3600}`, "Idempotency-Key", "k-1")
	if code, _ := conflict.errorCode(); conflict.status != 409 || code != "idempotency_conflict" {
		t.Fatalf("conflict %d %v", conflict.status, conflict.body)
	}
	if g := do(t, srv, "GET", "/followups/"+id, ""); g.status != 200 || g.body["id"] != id {
		t.Fatalf("get %d %v", g.status, g.body)
	}
	if c := do(t, srv, "DELETE", "/followups/"+id, ""); c.status != 200 || c.body["status"] != "cancelled" || c.body["settled_at"] == nil {
		t.Fatalf("cancel %d %v", c.status, c.body)
	}
	c := do(t, srv, "DELETE", "/followups/"+id, "")
	if code, _ := c.errorCode(); c.status != 409 || code != "conflict" || !strings.Contains(c.body["error"].(map[string]any)["message"].(string), "cancelled") {
		t.Fatalf("second cancel %d %v", c.status, c.body)
	}
}

func TestListPaginationAndThreadEscaping(t *testing.T) {
	for _, thread := range []string{"team/a b?c#é", "/", "//", "a/", "%2F"} {
		t.Run(thread, func(t *testing.T) { testList(t, newServer(t, ""), thread) })
	}
}

func testList(t *testing.T, srv *httptest.Server, thread string) {
	esc := url.PathEscape(thread)
	var ids []string
	for i := range 7 {
		r := do(t, srv, "POST", "/followups", fmt.Sprintf(`{"thread_id":%q,"prompt":"p","delay_seconds":%d}`, thread, 3600-i*60))
		if r.status != 201 {
			t.Fatalf("create: %v", r.body)
		}
		ids = append([]string{r.body["id"].(string)}, ids...) // earlier run_at first
	}
	do(t, srv, "POST", "/followups", `{"thread_id":"team","prompt":"p","delay_seconds":600}`)
	var got []string
	cursor := ""
	pages := 0
	for {
		path := "/threads/" + esc + "/followups?limit=3"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := do(t, srv, "GET", path, "")
		if r.status != 200 {
			t.Fatalf("list: %d %v", r.status, r.body)
		}
		pages++
		for _, f := range r.body["followups"].([]any) {
			got = append(got, f.(map[string]any)["id"].(string))
		}
		next, ok := r.body["next_cursor"].(string)
		if !ok {
			break
		}
		cursor = next
		// A cursor is bound to its listing.
		other := do(t, srv, "GET", "/threads/team/followups?cursor="+url.QueryEscape(next), "")
		if code, field := other.errorCode(); code != "invalid_argument" || field != "cursor" {
			t.Fatalf("borrowed cursor: %v", other.body)
		}
		filtered := do(t, srv, "GET", "/threads/"+esc+"/followups?status=scheduled&cursor="+url.QueryEscape(next), "")
		if code, field := filtered.errorCode(); code != "invalid_argument" || field != "cursor" {
			t.Fatalf("cursor with another filter: %v", filtered.body)
		}
	}
	if pages != 3 || strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("%d pages, ids %v, want %v", pages, got, ids)
	}
	r := do(t, srv, "DELETE", "/threads/"+esc+"/followups", "")
	if r.status != 200 || r.body["cancelled"] != float64(7) || len(r.body["ids"].([]any)) != 7 {
		t.Fatalf("cancel thread: %v", r.body)
	}
	r = do(t, srv, "GET", "/threads/"+esc+"/followups?status=cancelled&limit=100", "")
	if n := len(r.body["followups"].([]any)); n != 7 {
		t.Fatalf("cancelled listing has %d", n)
	}
	if r = do(t, srv, "GET", "/threads/team/followups?status=scheduled", ""); len(r.body["followups"].([]any)) != 1 {
		t.Fatalf("other thread touched: %v", r.body)
	}
}

func TestPathsThatNeedCleaningAreNotRoutes(t *testing.T) {
	srv := newServer(t, "tok")
	for _, p := range []string{"/followups//x", "//followups", "/./followups", "/followups/./x", "/threads/a/../b/followups", "/threads//followups", "/nope//x"} {
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		req.URL.Opaque = p // keep the path as written
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("%s without a token: %d", p, res.StatusCode)
		}
		req.Header.Set("Authorization", "bearer tok") // the scheme is case-insensitive
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with a token: %d %s", p, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
}

func TestOpenRoutes(t *testing.T) {
	svc, err := followup.New(followup.Config{Store: inmem.NewStore(), Scheduler: inmem.NewScheduler()})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	})
	srv := httptest.NewServer(api.New(api.Options{Service: svc, Token: "tok", Open: map[string]http.Handler{"/healthz": ok}}))
	defer srv.Close()
	if r := do(t, srv, "GET", "/healthz", ""); r.status != 200 {
		t.Fatalf("GET /healthz without a token: %d", r.status)
	}
	r := do(t, srv, "POST", "/healthz", "{}")
	if code, _ := r.errorCode(); r.status != 405 || code != "method_not_allowed" || r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /healthz: %d %v", r.status, r.body)
	}
}

// blockingStore holds every Get until release is closed.
type blockingStore struct {
	*inmem.Store
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) Get(ctx context.Context, id string) (*followup.Followup, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.Get(ctx, id)
}

// Past MaxInFlight requests at once, the next one is answered 503
// unavailable with Retry-After at once, and nothing waits.
func TestMaxInFlight(t *testing.T) {
	store := &blockingStore{Store: inmem.NewStore(), entered: make(chan struct{}, 2), release: make(chan struct{})}
	svc, err := followup.New(followup.Config{Store: store, Scheduler: inmem.NewScheduler()})
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(api.Options{Service: svc, MaxInFlight: 2})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/followups/fu_x", nil))
			if rec.Code != http.StatusNotFound {
				t.Errorf("a request within the bound: %d %s", rec.Code, rec.Body)
			}
		})
	}
	<-store.entered
	<-store.entered
	// A create's body is read before it takes a slot; it is refused then.
	req := httptest.NewRequest("POST", "/followups", strings.NewReader(`{"thread_id":"t","prompt":"p","delay_seconds":60}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"unavailable"`) {
		t.Fatalf("past the bound: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	close(store.release)
	wg.Wait()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/followups/fu_x", nil))
	if rec.Code == http.StatusServiceUnavailable {
		t.Fatalf("after the others finished: %d", rec.Code)
	}
}

// Large bodies share a budget of bytes: while one holds it (trickling its
// body), another large one is refused before it is read, and a small
// create still goes through.
func TestMaxBodyBytesInFlight(t *testing.T) {
	svc, err := followup.New(followup.Config{Store: inmem.NewStore(), Scheduler: inmem.NewScheduler()})
	if err != nil {
		t.Fatal(err)
	}
	h := api.New(api.Options{Service: svc, MaxBodyBytesInFlight: 70 << 10})
	post := func(body io.Reader, size int64) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/followups", body)
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = size
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	pr, pw := io.Pipe()
	trickling := make(chan *httptest.ResponseRecorder)
	go func() { trickling <- post(pr, 60<<10) }()
	if _, err := pw.Write([]byte(`{"thread_id":"t",`)); err != nil { // the handler is reading it
		t.Fatal(err)
	}
	if rec := post(strings.NewReader(strings.Repeat(" ", 20<<10)+`{}`), 20<<10+2); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("a second large body: %d %s, want 503", rec.Code, rec.Body)
	}
	small := `{"thread_id":"t","prompt":"p","delay_seconds":60}`
	if rec := post(strings.NewReader(small), int64(len(small))); rec.Code != http.StatusCreated {
		t.Fatalf("a small create beside a large body: %d %s", rec.Code, rec.Body)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-trickling
	if rec := post(strings.NewReader(strings.Repeat(" ", 20<<10)+`{}`), 20<<10+2); rec.Code == http.StatusServiceUnavailable {
		t.Fatalf("a large body after the first gave its bytes back: %d", rec.Code)
	}
}
