package main

import (
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// sink is the null thread API every system delivers to: it answers 200 at
// once and records, per followup id, when the first request arrived and
// how many came.
type sink struct {
	url string
	srv *http.Server

	mu        sync.Mutex
	got       map[string]*arrival
	malformed int // requests that are not a thread message naming a followup
}

// arrival is what the sink saw of one followup id.
type arrival struct {
	first time.Time
	count int
}

// startSink serves the null thread API on a free loopback port.
func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String(), got: map[string]*arrival{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// ServeHTTP records one delivery.
func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get(followupIDHeader)
	ok := r.Method == http.MethodPost && id != "" &&
		strings.HasPrefix(r.URL.Path, "/threads/") && strings.HasSuffix(r.URL.Path, "/messages")
	s.mu.Lock()
	if ok {
		if a := s.got[id]; a != nil {
			a.count++
		} else {
			s.got[id] = &arrival{first: now, count: 1}
		}
	} else {
		s.malformed++
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "not a thread message", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// reset forgets what arrived.
func (s *sink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = map[string]*arrival{}
	s.malformed = 0
}

// hasAll reports whether every id has arrived. It looks them up only once
// as many distinct ids arrived, so that polling it costs next to nothing.
func (s *sink) hasAll(ids []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) < len(ids) {
		return false
	}
	for _, id := range ids {
		if s.got[id] == nil {
			return false
		}
	}
	return true
}

// deliveries is what reached the sink of the followups a round created.
type deliveries struct {
	late       []time.Duration // first arrival minus due time, per followup delivered, sorted
	duplicates int             // requests after the first, summed over the followups
	missing    int             // followups that never arrived
	unexpected int             // requests for followups the round did not create
	malformed  int
}

// tally compares what arrived with the ids created, all due at due.
func (s *sink) tally(ids []string, due time.Time) deliveries {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := deliveries{late: make([]time.Duration, 0, len(ids)), malformed: s.malformed}
	created := make(map[string]bool, len(ids))
	for _, id := range ids {
		created[id] = true
		if a := s.got[id]; a != nil {
			d.late = append(d.late, a.first.Sub(due))
			d.duplicates += a.count - 1
		} else {
			d.missing++
		}
	}
	for id, a := range s.got {
		if !created[id] {
			d.unexpected += a.count
		}
	}
	slices.Sort(d.late)
	return d
}

// close stops serving at once: nothing is due any more.
func (s *sink) close() { _ = s.srv.Close() }
