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
	"github.com/followups/followups/shared/config"
	"github.com/followups/followups/shared/dispatch"
	"github.com/followups/followups/shared/embedded"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/telemetry"
)

// purgeEvery is how often settled records past retention are removed.
const purgeEvery = 10 * time.Minute

// app is followupd's parts wired together: the embedded store, queue and
// timer, the service, and the HTTP handler with /healthz and /metrics.
type app struct {
	log     *slog.Logger
	store   *embedded.Store
	queue   *embedded.Queue
	timer   *embedded.Timer
	svc     *followup.Service
	handler http.Handler
	opened  time.Time
	bg      sync.WaitGroup
	cancel  context.CancelFunc
}

// openApp opens the store and builds every part; nothing runs until start.
func openApp(cfg *options, log *slog.Logger) (*app, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", config.DataDir, err)
	}
	a := &app{log: log, opened: time.Now()}
	store, err := embedded.Open(filepath.Join(cfg.DataDir, "followups.db"), embedded.Options{Retention: cfg.Retention})
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
	a.queue = embedded.NewQueue(embedded.QueueOptions{
		Handler: func(ctx context.Context, d embedded.Delivery) followup.Verdict { return a.svc.Fire(ctx, d.Body) },
		DeadLetter: func(ctx context.Context, d embedded.Delivery) followup.Verdict {
			return a.svc.DeadLetter(ctx, d.Body, d.Attributes)
		},
		MaxReceiveCount: cfg.Retry.MaxAttempts(),
		// A delivery must outlast its attempt's lease (the dispatch timeout
		// and the writes around it): the queue cancels a handler past its
		// visibility timeout and delivers the message again.
		VisibilityTimeout: cfg.Lease() + 30*time.Second,
		Workers:           cfg.Workers,
		Logger:            log,
	})
	a.timer = embedded.NewTimer(a.queue)
	a.svc = followup.New(followup.Config{
		Store: store, Scheduler: a.timer, Dispatcher: disp, Observer: telemetry.NewPrometheus(reg), Log: log,
		Limits: cfg.Limits, Retry: cfg.Retry, Lease: cfg.Lease(), Retention: cfg.Retention,
	})
	if err := telemetry.RegisterGauges(reg, a.gauges); err != nil {
		store.Close()
		return nil, err
	}
	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	a.handler = api.New(api.Options{
		Service: a.svc, Token: cfg.APIToken, CursorKey: key, Log: log,
		Open: map[string]http.Handler{"/healthz": health, "/metrics": telemetry.Handler(reg)},
	})
	return a, nil
}

func (a *app) gauges() telemetry.GaugeValues {
	st, _ := a.store.Stats()
	qs := a.queue.Stats()
	return telemetry.GaugeValues{
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
	a.bg.Go(func() { a.purgeLoop(ctx) })
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

// purgeLoop purges at start, then every purgeEvery: a followupd restarted
// more often than that still purges.
func (a *app) purgeLoop(ctx context.Context) {
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for now := time.Now(); ; {
		if n, err := a.store.Purge(ctx, now); err != nil && ctx.Err() == nil {
			a.log.Error("purge failed", "error", err)
		} else if n > 0 {
			a.log.Info("purged settled followups past retention", "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		}
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
