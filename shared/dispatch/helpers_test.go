package dispatch

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// now is the fixed time of every test clock.
var now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// sampleFollowup has every field the thread request carries.
func sampleFollowup() *followup.Followup {
	cet := time.FixedZone("CET", 3600)
	return &followup.Followup{
		ID:                    "fu_01JQ2Z7K4M",
		ThreadID:              "a/b c?d#é",
		Prompt:                "Check whether the <nightly> build finished & report back.",
		Reason:                "waiting on CI",
		OriginatingRunID:      "run-42",
		Metadata:              json.RawMessage(`{"channel":"slack","n":1}`),
		RunAt:                 time.Date(2026, 3, 14, 16, 9, 26, 500_000_000, cet),
		DelaySecondsRequested: new(int64(3600)),
		Status:                followup.StatusDispatching,
		Attempts:              2,
		CreatedAt:             time.Date(2026, 3, 14, 15, 9, 26, 123456789, time.UTC),
		UpdatedAt:             now,
	}
}

// received is one request as the thread saw it.
type received struct {
	Method     string
	RequestURI string
	Header     http.Header
	Body       []byte
}

// fakeThread is a thread API that records what it receives and answers
// with answer (200 when nil).
type fakeThread struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func startThread(t *testing.T, answer http.HandlerFunc) *fakeThread {
	t.Helper()
	ft := &fakeThread{}
	ft.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ft.mu.Lock()
		ft.reqs = append(ft.reqs, received{r.Method, r.RequestURI, r.Header.Clone(), body})
		ft.mu.Unlock()
		if answer != nil {
			answer(w, r)
		}
	}))
	t.Cleanup(ft.Close)
	return ft
}

func (ft *fakeThread) received() []received {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]received(nil), ft.reqs...)
}

// only returns the one request the thread received.
func (ft *fakeThread) only(t *testing.T) received {
	t.Helper()
	got := ft.received()
	if len(got) != 1 {
		t.Fatalf("thread received %d requests, want 1: %+v", len(got), got)
	}
	return got[0]
}

// newClient builds a Client on base with o, on the fixed clock unless o
// has one.
func newClient(t testing.TB, base string, o Options) *Client {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse base URL %q: %v", base, err)
	}
	o.BaseURL = u
	if o.Clock == nil {
		o.Clock = fixedClock{now}
	}
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// decodeJSON decodes b keeping numbers as json.Number.
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, b)
	}
	return v
}

// compareJSON reports, field by field, where got differs from want.
func compareJSON(t *testing.T, path string, got, want any) {
	t.Helper()
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if !wok || !gok {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
		return
	}
	keys := make([]string, 0, len(wm)+len(gm))
	for k := range wm {
		keys = append(keys, k)
	}
	for k := range gm {
		if _, ok := wm[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, gin := gm[k]
		w, win := wm[k]
		switch {
		case !gin:
			t.Errorf("%s.%s is missing, want %#v", path, k, w)
		case !win:
			t.Errorf("%s.%s = %#v, want it omitted", path, k, g)
		default:
			compareJSON(t, path+"."+k, g, w)
		}
	}
}
