package followup_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followups/followups/internal/benchcpu"

	"github.com/followups/followups/shared/bolt"
	"github.com/followups/followups/shared/dispatch"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
	"github.com/followups/followups/shared/telemetry"
)

// BenchmarkFire measures Service.Fire of due followups (claim, dispatch,
// settle) from 256 concurrent callers, followupd's default number of queue
// workers, as in a burst of followups due at once. One op is one followup
// delivered. The sub-benchmarks take the parts apart:
//
//   - inmem/no-http: the domain alone, a map store and a dispatcher that
//     succeeds without I/O.
//   - bolt/no-http: followupd's bbolt store (two fsynced, group
//     committed writes per fire) and the same dispatcher.
//   - bolt/http-default-transport: the thread API client as followupd
//     builds it (on http.DefaultTransport, which keeps 2 idle connections
//     per host) posting to an httptest thread API that answers 201.
//   - bolt/http-keepalive: the same client on a transport that keeps
//     one idle connection per worker.
//
// Every variant logs as followupd does (JSON, INFO) to io.Discard.
func BenchmarkFire(b *testing.B) {
	const workers = 256
	ok := followup.Attempt{Outcome: followup.OutcomeSuccess, HTTPStatus: http.StatusCreated}
	b.Run("inmem/no-http", func(b *testing.B) {
		benchFire(b, inmem.NewStore(), okDispatcher{ok}, workers)
	})
	b.Run("bolt/no-http", func(b *testing.B) {
		benchFire(b, openStore(b), okDispatcher{ok}, workers)
	})
	b.Run("bolt/http-default-transport", func(b *testing.B) {
		benchFire(b, openStore(b), threadClient(b, nil), workers)
	})
	b.Run("bolt/http-keepalive", func(b *testing.B) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = workers
		benchFire(b, openStore(b), threadClient(b, &http.Client{Transport: tr}), workers)
	})
}

type okDispatcher struct{ a followup.Attempt }

func (d okDispatcher) Dispatch(context.Context, *followup.Followup, int) followup.Attempt { return d.a }

func openStore(b *testing.B) *bolt.Store {
	b.Helper()
	s, err := bolt.Open(filepath.Join(b.TempDir(), "followups.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// threadClient is the thread API client posting to an httptest thread API
// that answers 201 at once.
func threadClient(b *testing.B, hc *http.Client) *dispatch.Client {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	b.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	c, err := dispatch.New(dispatch.Options{BaseURL: u, HTTPClient: hc})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchFire(b *testing.B, store followup.Store, d followup.Dispatcher, workers int) {
	ctx := context.Background()
	now := time.Now()
	fs := make([]*followup.Followup, b.N)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
				f := &followup.Followup{
					ID: followup.NewID(), ThreadID: fmt.Sprintf("bench-t%d", i%1000),
					Prompt: strings.Repeat("p", 100), RunAt: now.Add(-time.Second),
					Status: followup.StatusScheduled, Runs: []followup.Run{},
					CreatedAt: now, UpdatedAt: now, Version: 1, NextAttemptAt: now.Add(-time.Second),
				}
				if _, err := store.Create(ctx, followup.Creation{Followup: f}); err != nil {
					b.Error(err)
					return
				}
				fs[i] = f
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	svc, err := followup.New(followup.Config{Store: store, Dispatcher: d, Log: telemetry.NewLogger(io.Discard, slog.LevelInfo)})
	if err != nil {
		b.Fatal(err)
	}
	deliveries := make([]followup.Delivery, b.N)
	for i, f := range fs {
		deliveries[i] = followup.Delivery{Body: []byte(`{"followup_id":"` + f.ID + `","thread_id":"` + f.ThreadID + `"}`), ReceiveCount: 1}
	}
	next.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	reportCPU := benchcpu.Start(b)
	for range min(workers, b.N) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
				if v := svc.Fire(ctx, deliveries[i]); v != followup.Ack {
					b.Errorf("fire %s: %+v", fs[i].ID, v)
				}
			}
		})
	}
	wg.Wait()
	reportCPU()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fires/s")
}
