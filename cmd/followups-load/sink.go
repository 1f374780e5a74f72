package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followups/followups/shared/dispatch"
)

// sink is the null thread API the child dispatches to. It answers 201 at
// once and records, for each followup id, when it first arrived and how
// many times, so the burst can tell lateness, duplicates and gaps.
type sink struct {
	url   string
	srv   *http.Server
	conns atomic.Int64 // TCP connections accepted, to see connection reuse

	mu        sync.Mutex
	got       map[string]*arrival
	malformed int // requests that are not a thread message with an X-Followup-Id
}

// arrival is what the sink saw of one followup id.
type arrival struct {
	first      time.Time // when the first request's headers were read
	count      int       // requests, every attempt included
	maxAttempt int       // highest X-Followup-Attempt seen
}

// startSink serves the null thread API on addr (a loopback host:port).
func startSink(addr string) (*sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String(), got: map[string]*arrival{}}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		},
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// ServeHTTP records one delivery and answers 201.
func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get(dispatch.FollowupIDHeader)
	attempt, _ := strconv.Atoi(r.Header.Get(dispatch.AttemptHeader))
	ok := r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/threads/") && strings.HasSuffix(r.URL.Path, "/messages") && id != ""
	s.mu.Lock()
	if ok {
		a := s.got[id]
		if a == nil {
			a = &arrival{first: now}
			s.got[id] = a
		}
		a.count++
		a.maxAttempt = max(a.maxAttempt, attempt)
	} else {
		s.malformed++
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, `{"error":"not a thread message"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// reset forgets every delivery and connection seen so far.
func (s *sink) reset() {
	s.mu.Lock()
	s.got = map[string]*arrival{}
	s.malformed = 0
	s.mu.Unlock()
	s.conns.Store(0)
}

// arrived counts the ids that arrived at least once. It only looks them
// up once as many distinct ids have arrived, so that polling it costs the
// measured machine next to nothing.
func (s *sink) arrived(ids []string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) < len(ids) {
		return 0
	}
	n := 0
	for _, id := range ids {
		if s.got[id] != nil {
			n++
		}
	}
	return n
}

// snapshot copies what arrived so far.
func (s *sink) snapshot() (got map[string]arrival, malformed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	got = make(map[string]arrival, len(s.got))
	for id, a := range s.got {
		got[id] = *a
	}
	return got, s.malformed
}

// close stops the sink.
func (s *sink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}
