package dispatch

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/followups/followups/shared/followup"
)

func TestDispatchClassifiesAnswers(t *testing.T) {
	const (
		retryable = followup.OutcomeRetryableError
		drop      = followup.OutcomeDrop
		success   = followup.OutcomeSuccess
	)
	tests := []struct {
		status    int
		body      string
		outcome   followup.Outcome
		reason    followup.DropReason
		wantError string // exact; "" on success
	}{
		{200, `{"ok":true}`, success, "", ""},
		{201, "", success, "", ""},
		{202, "queued", success, "", ""},
		{204, "", success, "", ""},
		{400, `{"error":"bad role"}`, drop, followup.DropRejected, `thread API answered 400 Bad Request: {"error":"bad role"}`},
		{401, "", drop, followup.DropRejected, "thread API answered 401 Unauthorized"},
		{403, "forbidden", drop, followup.DropRejected, "thread API answered 403 Forbidden: forbidden"},
		{404, "no such thread", drop, followup.DropThreadNotFound, "thread API answered 404 Not Found: no such thread"},
		{409, "thread closed", drop, followup.DropThreadInactive, "thread API answered 409 Conflict: thread closed"},
		{410, "", drop, followup.DropThreadNotFound, "thread API answered 410 Gone"},
		{413, "", drop, followup.DropRejected, "thread API answered 413 Request Entity Too Large"},
		{422, "prompt too long", drop, followup.DropRejected, "thread API answered 422 Unprocessable Entity: prompt too long"},
		{499, "", drop, followup.DropRejected, "thread API answered 499"},
		{408, "", retryable, "", "thread API answered 408 Request Timeout"},
		{425, "", retryable, "", "thread API answered 425 Too Early"},
		{429, "slow down", retryable, "", "thread API answered 429 Too Many Requests: slow down"},
		{500, "boom", retryable, "", "thread API answered 500 Internal Server Error: boom"},
		{502, "", retryable, "", "thread API answered 502 Bad Gateway"},
		{503, "down for maintenance\n", retryable, "", "thread API answered 503 Service Unavailable: down for maintenance"},
		{504, "", retryable, "", "thread API answered 504 Gateway Timeout"},
		{599, "", retryable, "", "thread API answered 599"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			thread := startThread(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			c := newClient(t, thread.URL, Options{})

			a := c.Dispatch(t.Context(), sampleFollowup(), 1)
			want := followup.Attempt{Outcome: tt.outcome, DropReason: tt.reason, HTTPStatus: tt.status, Error: tt.wantError}
			if a != want {
				t.Errorf("Dispatch =\n %+v, want\n %+v", a, want)
			}
		})
	}
}

func TestDispatchDoesNotFollowRedirects(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var moved atomic.Int32
			mux := http.NewServeMux()
			mux.HandleFunc("/moved/", func(w http.ResponseWriter, r *http.Request) { moved.Add(1) })
			var srv *httptest.Server
			mux.HandleFunc("/threads/", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", srv.URL+"/moved/")
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(status)
			})
			srv = httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			// A caller's client that follows redirects must not make the Client follow them.
			caller := &http.Client{}
			c := newClient(t, srv.URL, Options{HTTPClient: caller})

			a := c.Dispatch(t.Context(), sampleFollowup(), 1)

			if a.Outcome != followup.OutcomeRetryableError || a.HTTPStatus != status || a.RetryAfter != 30*time.Second {
				t.Errorf("Dispatch = %+v, want retryable %d after 30s", a, status)
			}
			want := "thread API answered " + strconv.Itoa(status) + " " + http.StatusText(status) +
				" (redirects are not followed; Location: " + srv.URL + "/moved/)"
			if a.Error != want {
				t.Errorf("Error = %q, want %q", a.Error, want)
			}
			if n := moved.Load(); n != 0 {
				t.Errorf("the redirect target received %d requests, want 0", n)
			}
			if caller.CheckRedirect != nil {
				t.Error("New changed the caller's http.Client")
			}
		})
	}
}

func TestDispatchTransportFailures(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T) (base string, o Options, ctx context.Context)
		wantError string // exact, or a prefix when it ends with "…"
	}{
		{
			name: "timeout",
			setup: func(t *testing.T) (string, Options, context.Context) {
				thread := startThread(t, func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
				})
				return thread.URL, Options{Timeout: 50 * time.Millisecond}, t.Context()
			},
			wantError: "thread API request failed: timeout after 50ms",
		},
		{
			name: "timeout while reading the body",
			setup: func(t *testing.T) (string, Options, context.Context) {
				thread := startThread(t, func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write([]byte("partial"))
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
					case <-time.After(5 * time.Second):
					}
				})
				return thread.URL, Options{Timeout: 100 * time.Millisecond}, t.Context()
			},
			// The answer arrived: it is classified, with what of the body came in time.
			wantError: "thread API answered 503 Service Unavailable: partial",
		},
		{
			name: "connection refused",
			setup: func(t *testing.T) (string, Options, context.Context) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := ln.Addr().String()
				ln.Close()
				return "http://" + addr, Options{}, t.Context()
			},
			wantError: "thread API request failed: connection refused (dial …",
		},
		{
			name: "connection closed without an answer",
			setup: func(t *testing.T) (string, Options, context.Context) {
				thread := startThread(t, func(w http.ResponseWriter, r *http.Request) {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						conn.Close()
					}
				})
				return thread.URL, Options{}, t.Context()
			},
			wantError: "thread API request failed: connection closed before the thread API answered",
		},
		{
			name: "caller canceled",
			setup: func(t *testing.T) (string, Options, context.Context) {
				thread := startThread(t, nil)
				ctx, cancel := context.WithCancel(t.Context())
				cancel()
				return thread.URL, Options{}, ctx
			},
			wantError: "thread API request failed: canceled before the thread API answered",
		},
		{
			name: "caller's deadline before the timeout",
			setup: func(t *testing.T) (string, Options, context.Context) {
				thread := startThread(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				t.Cleanup(cancel)
				return thread.URL, Options{Timeout: time.Minute}, ctx
			},
			wantError: "thread API request failed: the caller's deadline passed before the thread API answered",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, o, ctx := tt.setup(t)
			c := newClient(t, base, o)

			a := c.Dispatch(ctx, sampleFollowup(), 1)

			if a.Outcome != followup.OutcomeRetryableError || a.DropReason != "" || a.RetryAfter != 0 {
				t.Errorf("Dispatch = %+v, want a retryable error", a)
			}
			if prefix, ok := strings.CutSuffix(tt.wantError, "…"); ok {
				if !strings.HasPrefix(a.Error, prefix) {
					t.Errorf("Error = %q, want it to start with %q", a.Error, prefix)
				}
			} else if a.Error != tt.wantError {
				t.Errorf("Error = %q, want %q", a.Error, tt.wantError)
			}
			if answered := strings.HasPrefix(a.Error, "thread API answered"); answered != (a.HTTPStatus != 0) {
				t.Errorf("HTTPStatus = %d with Error %q", a.HTTPStatus, a.Error)
			}
		})
	}
}

func TestDispatchRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       time.Duration
	}{
		{"seconds on 503", 503, "120", 120 * time.Second},
		{"seconds on 429", 429, "7", 7 * time.Second},
		{"HTTP date on 429", 429, now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"HTTP date on 503", 503, now.Add(2 * time.Hour).Format(http.TimeFormat), 2 * time.Hour},
		{"past date", 503, now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage", 503, "soon", 0},
		{"negative", 503, "-5", 0},
		{"capped", 503, "86400", followup.MaxRetryAfter},
		{"absent", 503, "", 0},
		{"ignored on success", 200, "120", 0},
		{"ignored on a drop", 404, "120", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			thread := startThread(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
			})
			c := newClient(t, thread.URL, Options{})

			if a := c.Dispatch(t.Context(), sampleFollowup(), 1); a.RetryAfter != tt.want {
				t.Errorf("RetryAfter = %s, want %s (attempt %+v)", a.RetryAfter, tt.want, a)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		v    string
		want time.Duration
	}{
		{"zero", "0", 0},
		{"seconds", "120", 2 * time.Minute},
		{"spaces", " 30 ", 30 * time.Second},
		{"twelve hours", "43200", 12 * time.Hour},
		{"above the cap", "43201", followup.MaxRetryAfter},
		{"overflow", "99999999999999999999999", followup.MaxRetryAfter},
		{"negative", "-1", 0},
		{"fraction", "1.5", 0},
		{"plus sign", "+5", 0},
		{"garbage", "later", 0},
		{"empty", "", 0},
		{"IMF date", "Sat, 14 Mar 2026 15:10:26 GMT", time.Minute},
		{"RFC 850 date", "Saturday, 14-Mar-26 15:10:26 GMT", time.Minute},
		{"asctime date", "Sat Mar 14 15:10:26 2026", time.Minute},
		{"date now", "Sat, 14 Mar 2026 15:09:26 GMT", 0},
		{"date past", "Fri, 13 Mar 2026 15:09:26 GMT", 0},
		{"date far ahead", "Sat, 14 Mar 2027 15:09:26 GMT", followup.MaxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.v, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.v, got, tt.want)
			}
		})
	}
	t.Run("date rounds up to whole seconds", func(t *testing.T) {
		if got := parseRetryAfter("Sat, 14 Mar 2026 15:10:26 GMT", now.Add(300*time.Millisecond)); got != time.Minute {
			t.Errorf("parseRetryAfter = %s, want 1m0s", got)
		}
	})
}

func TestDispatchKeepsAnExcerptOfTheBody(t *testing.T) {
	const prefix = "thread API answered 500 Internal Server Error: "
	tests := []struct {
		name string
		body string
		want string // the excerpt after prefix
	}{
		{"short", "boom", "boom"},
		{"trimmed", "\n\t  boom \r\n", "boom"},
		{"exactly 256 bytes", strings.Repeat("x", 256), strings.Repeat("x", 256)},
		{"truncated to 256 bytes", strings.Repeat("x", 256) + "TAIL" + strings.Repeat("y", 10_000), strings.Repeat("x", 256)},
		{"cut on a whole character", "a" + strings.Repeat("é", 200), "a" + strings.Repeat("é", 127)},
		{"four-byte characters", strings.Repeat("😀", 100), strings.Repeat("😀", 64)},
		{"invalid UTF-8 replaced", "bad \xff\xfe bytes", "bad \uFFFD\uFFFD bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			thread := startThread(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(tt.body))
			})
			c := newClient(t, thread.URL, Options{})

			a := c.Dispatch(t.Context(), sampleFollowup(), 1)

			got, ok := strings.CutPrefix(a.Error, prefix)
			if !ok {
				t.Fatalf("Error = %q, want it to start with %q", a.Error, prefix)
			}
			if got != tt.want {
				t.Errorf("excerpt = %q (%d bytes), want %q (%d bytes)", got, len(got), tt.want, len(tt.want))
			}
			if len(got) > 256 || !utf8.ValidString(got) {
				t.Errorf("excerpt is %d bytes, valid UTF-8 %v; want at most 256 valid", len(got), utf8.ValidString(got))
			}
		})
	}
}

func TestDispatchReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(strings.Repeat("long error page ", 1000)))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, Options{HTTPClient: srv.Client()})

	for range 5 {
		if a := c.Dispatch(t.Context(), sampleFollowup(), 1); a.HTTPStatus != 503 {
			t.Fatalf("Dispatch = %+v, want 503", a)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 attempts opened %d connections, want 1", n)
	}
}
