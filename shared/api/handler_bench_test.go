package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/followups/followups/internal/benchcpu"

	"github.com/followups/followups/shared/api"
	"github.com/followups/followups/shared/bolt"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/inmem"
	"github.com/followups/followups/shared/memqueue"
	"github.com/followups/followups/shared/telemetry"
)

// BenchmarkCreateHandler measures POST /followups through the API handler
// (httptest request and recorder, no network): parse, validate, schedule,
// store, answer. Requests run from 32×GOMAXPROCS goroutines, as many HTTP
// requests are in flight under load, so the bolt store's writes share
// their fsyncs (group commit) as they do in followupd.
//
//   - inmem: the map store and the recording scheduler, no I/O: the cost
//     of the handler and the domain alone.
//   - bolt: the bbolt store in a temporary directory (every create
//     fsynced before its answer) and followupd's timer.
//   - bolt-logged: the same with followupd's JSON request and
//     "followup scheduled" log lines, written to io.Discard.
func BenchmarkCreateHandler(b *testing.B) {
	b.Run("inmem", func(b *testing.B) {
		benchCreate(b, inmem.NewStore(), inmem.NewScheduler(), nil)
	})
	b.Run("bolt", func(b *testing.B) {
		store, timer := openBolt(b)
		benchCreate(b, store, timer, nil)
	})
	b.Run("bolt-logged", func(b *testing.B) {
		store, timer := openBolt(b)
		benchCreate(b, store, timer, telemetry.NewLogger(io.Discard, slog.LevelInfo))
	})
}

// openBolt opens followupd's store in a temporary directory, with the
// timer it schedules on (not started: nothing fires during the benchmark).
func openBolt(b *testing.B) (*bolt.Store, *memqueue.Timer) {
	b.Helper()
	store, err := bolt.Open(filepath.Join(b.TempDir(), "followups.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	queue := memqueue.NewQueue(memqueue.QueueOptions{})
	b.Cleanup(func() { _ = queue.Shutdown(context.Background()) })
	return store, memqueue.NewTimer(queue)
}

func benchCreate(b *testing.B, store followup.Store, scheduler followup.Scheduler, log *slog.Logger) {
	svc, err := followup.New(followup.Config{Store: store, Scheduler: scheduler, Log: log})
	if err != nil {
		b.Fatal(err)
	}
	h := api.New(api.Options{Service: svc, Log: log})
	var n atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	reportCPU := benchcpu.Start(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			req := httptest.NewRequest(http.MethodPost, "/followups", bytes.NewReader(createBody(i)))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
	reportCPU()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

// createBody is a typical create on one of 1,000 threads, as the load
// command sends.
func createBody(i int64) []byte {
	body := []byte(`{"thread_id":"bench-t`)
	body = strconv.AppendInt(body, i%1000, 10)
	body = append(body, `","prompt":"Check whether the nightly build finished and report back with the failing tests, if any.","reason":"waiting on CI","metadata":{"channel":"load","seq":`...)
	body = strconv.AppendInt(body, i, 10)
	return append(body, `},"delay_seconds":82800}`...)
}
