package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/followups/followups/shared/api"
	"github.com/followups/followups/shared/bolt"
	"github.com/followups/followups/shared/config"
	"github.com/followups/followups/shared/dispatch"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/memqueue"
	"github.com/followups/followups/shared/prom"
)

// purgeEvery is how often settled records past retention are removed.
const purgeEvery = 10 * time.Minute

// The API's bounds on the work it holds at once: past them a request gets
// 503 with Retry-After instead of memory. 512 requests at once is several
// times what the store's group commit needs to stay busy; 32 MiB of large
// bodies is 500 of the largest.
const (
	maxInFlight          = 512
	maxBodyBytesInFlight = 32 << 20
)

// sweepEvery is how often the sweep looks for followups whose message was
// lost: a bug, or a message a test dropped; followupd's own queue loses
// none.
const sweepEvery = time.Minute

// app is followupd's parts wired together: the store, the queue and the
// timer, the service, and the HTTP handler with /healthz and /metrics.
type app struct {
	log     *slog.Logger
	clock   memqueue.Clock
	store   *bolt.Store
	queue   *memqueue.Queue
	timer   *memqueue.Timer
	svc     *followup.Service
	handler http.Handler
	opened  time.Time
	bg      sync.WaitGroup
	cancel  context.CancelFunc
}

// openApp opens the store and builds every part, on clock; nothing runs
// until start.
func openApp(cfg *options, log *slog.Logger, clock memqueue.Clock) (*app, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", config.DataDir, err)
	}
	a := &app{log: log, clock: clock, opened: time.Now()}
	store, err := bolt.Open(filepath.Join(cfg.DataDir, "followups.db"), bolt.Options{Retention: cfg.Retention})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	a.store = store
	key, err := cursorKey(cfg.DataDir)
	if err != nil {
		store.Close()
		return nil, err
	}
	disp, err := dispatch.New(dispatch.Options{
		BaseURL: cfg.ThreadAPIURL, Token: cfg.ThreadAPIToken,
		SigningSecret: []byte(cfg.SigningSecret), Timeout: cfg.DispatchTimeout,
		IdleConns: cfg.Workers,
	})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("%s: %w", config.ThreadAPIURL, err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	timing := cfg.Timing()
	a.queue = memqueue.NewQueue(memqueue.QueueOptions{
		Handler: func(ctx context.Context, d memqueue.Delivery) followup.Verdict { return a.svc.Fire(ctx, d.Followup()) },
		DeadLetter: func(ctx context.Context, d memqueue.Delivery) followup.Verdict {
			return a.svc.DeadLetter(ctx, d.Followup())
		},
		// The same limit and semantics as the fire queue's redrive on AWS.
		MaxReceiveCount: cfg.MaxReceives,
		// A delivery outlasts its attempt's lease: the queue cancels a
		// handler past its visibility timeout and delivers again.
		VisibilityTimeout: timing.Visibility,
		Workers:           cfg.Workers,
		Clock:             clock,
		Logger:            log,
	})
	a.timer = memqueue.NewTimer(a.queue)
	a.svc, err = followup.New(followup.Config{
		Store: store, Scheduler: a.timer, Queues: a.queue, Dispatcher: disp, Clock: clock,
		Observer: prom.NewObserver(reg), Log: log,
		Limits: cfg.Limits, Retry: cfg.Retry, Timing: timing, MaxReceives: cfg.MaxReceives, Retention: cfg.Retention,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	if err := prom.RegisterGauges(reg, a.gauges); err != nil {
		store.Close()
		return nil, err
	}
	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	a.handler = api.New(api.Options{
		Service: a.svc, Token: cfg.APIToken, CursorKey: key, Log: log,
		MaxInFlight: maxInFlight, MaxBodyBytesInFlight: maxBodyBytesInFlight,
		Open: map[string]http.Handler{"/healthz": health, "/metrics": prom.Handler(reg)},
	})
	return a, nil
}

func (a *app) gauges() prom.GaugeValues {
	st, _ := a.store.Stats()
	qs := a.queue.Stats()
	return prom.GaugeValues{
		Followups:  st.Followups,
		StoreBytes: st.FileBytes,
		QueueDepth: int64(qs.Visible + qs.InFlight + qs.Delayed + a.timer.Len()),
	}
}

// start runs the queue and the timer, rebuilds the timer from the store's
// pending followups (due ones fire at once), and purges on a schedule.
func (a *app) start(ctx context.Context) {
	ctx, a.cancel = context.WithCancel(ctx)
	a.queue.Start()
	a.timer.Start()
	a.bg.Go(func() {
		n := 0
		err := a.store.Pending(ctx, func(m followup.Message, due time.Time) error {
			n++
			return a.timer.Load(m, due)
		})
		if err != nil && ctx.Err() == nil {
			a.log.Error("rebuild timers from store failed", "error", err)
			return
		}
		a.log.Info("timers rebuilt from store", "pending", n, "elapsed_ms", time.Since(a.opened).Milliseconds())
	})
	a.bg.Go(func() { a.every(ctx, purgeEvery, a.purge) })
	a.bg.Go(func() { a.every(ctx, sweepEvery, a.sweep) })
}

// close stops the timer, lets attempts in flight finish (bounded by ctx),
// and closes the store.
func (a *app) close(ctx context.Context) {
	if a.cancel != nil {
		a.cancel()
	}
	a.timer.Stop()
	if err := a.queue.Shutdown(ctx); err != nil {
		a.log.Warn("queue shutdown", "error", err)
	}
	a.bg.Wait()
	if err := a.store.Close(); err != nil {
		a.log.Error("close store", "error", err)
	}
}

// every calls do at start, then every period on the app's clock, until
// ctx ends: a followupd restarted more often than period still does it.
func (a *app) every(ctx context.Context, period time.Duration, do func(ctx context.Context, now time.Time)) {
	for {
		now := a.clock.Now()
		do(ctx, now)
		ring, release := a.clock.Alarm(now.Add(period))
		select {
		case <-ctx.Done():
			release()
			return
		case <-ring:
		}
	}
}

func (a *app) purge(ctx context.Context, now time.Time) {
	if n, err := a.store.Purge(ctx, now); err != nil && ctx.Err() == nil {
		a.log.Error("purge failed", "error", err)
	} else if n > 0 {
		a.log.Info("purged settled followups past retention", "removed", n)
	}
}

func (a *app) sweep(ctx context.Context, _ time.Time) {
	if n, err := a.svc.Sweep(ctx); err != nil && ctx.Err() == nil {
		a.log.Error("sweep failed", "error", err)
	} else if n > 0 {
		a.log.Info("sweep sent lost messages again", "redriven", n)
	}
}

// cursorKey returns the key that seals list cursors, made once and kept in
// the data directory, so cursors survive restarts and cannot be made up.
func cursorKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, "cursor.key")
	key, err := os.ReadFile(path)
	if err == nil && len(key) == 32 {
		return key, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	key = make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return key, nil
}
