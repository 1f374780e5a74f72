package dispatch

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

func TestNewRejectsUnusableOptions(t *testing.T) {
	mustParse := func(s string) *url.URL {
		t.Helper()
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	tests := []struct {
		name string
		opts Options
		want string // in the error
	}{
		{"no URL", Options{}, "thread API URL is required"},
		{"not http", Options{BaseURL: mustParse("ftp://h/x")}, "scheme must be http or https"},
		{"relative", Options{BaseURL: mustParse("/threads")}, "scheme must be http or https"},
		{"no host", Options{BaseURL: mustParse("http:///x")}, "no host"},
		{"opaque", Options{BaseURL: mustParse("http:h")}, "no host"},
		{"password kept out", Options{BaseURL: mustParse("gopher://u:secret@h")}, "u:xxxxx@h"},
		{"token with a newline", Options{BaseURL: mustParse("http://h"), Token: "a\nb"}, "thread API token"},
		{"negative timeout", Options{BaseURL: mustParse("http://h"), Timeout: -time.Second}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts)
			if err == nil {
				t.Fatalf("New = %v, nil; want an error", c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("New error %q shows the URL's password", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Options{BaseURL: &url.URL{Scheme: "https", Host: "threads.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != DefaultTimeout {
		t.Errorf("timeout = %s, want %s", c.timeout, DefaultTimeout)
	}
	if _, ok := c.clock.(followup.SystemClock); !ok {
		t.Errorf("clock = %T, want followup.SystemClock", c.clock)
	}
}

func TestDispatchDropsWhatCannotBeSent(t *testing.T) {
	tests := []struct {
		name   string
		change func(f *followup.Followup) *followup.Followup
	}{
		{"no followup", func(*followup.Followup) *followup.Followup { return nil }},
		{"no id", func(f *followup.Followup) *followup.Followup { f.ID = ""; return f }},
		{"id with a newline", func(f *followup.Followup) *followup.Followup { f.ID = "fu\r\nX-Evil: 1"; return f }},
		{"no thread id", func(f *followup.Followup) *followup.Followup { f.ThreadID = ""; return f }},
		{"metadata not JSON", func(f *followup.Followup) *followup.Followup { f.Metadata = []byte("{nope"); return f }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			thread := startThread(t, nil)
			c := newClient(t, thread.URL, Options{})

			a := c.Dispatch(t.Context(), tt.change(sampleFollowup()), 1)

			if a.Outcome != followup.OutcomeDrop || a.DropReason != followup.DropInvalidMessage || a.HTTPStatus != 0 {
				t.Errorf("Dispatch = %+v, want drop invalid_message", a)
			}
			if !strings.HasPrefix(a.Error, "cannot send to the thread API: ") {
				t.Errorf("Error = %q", a.Error)
			}
			if n := len(thread.received()); n != 0 {
				t.Errorf("thread received %d requests, want 0", n)
			}
		})
	}
}

// One attempt is one request: when a kept-alive connection drops under a
// request, the attempt fails retryably and nothing is resent behind it.
func TestDroppedReusedConnectionIsOneRequest(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		if n == 2 { // the second request arrives on the kept-alive connection
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	c, err := New(Options{BaseURL: base, Clock: fixedClock{now}})
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Dispatch(t.Context(), sampleFollowup(), 1); a.Outcome != followup.OutcomeSuccess {
		t.Fatalf("first attempt: %+v", a)
	}
	a := c.Dispatch(t.Context(), sampleFollowup(), 2)
	if a.Outcome != followup.OutcomeRetryableError || a.HTTPStatus != 0 {
		t.Fatalf("attempt on a dropped connection: %+v", a)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 2 {
		t.Fatalf("the thread API received %d requests for 2 attempts", requests)
	}
}
