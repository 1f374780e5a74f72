// Command followupd runs Followups on one machine: the HTTP API, an
// embedded durable store, timer and queue, and the dispatcher, in one
// process, with no AWS account.
//
//	followupd --thread-api-url https://threads.example.com
//	followupd --demo
//
// Every flag may be given as its environment variable (DESIGN §6); run
// followupd -h for the list.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// shutdownGrace bounds how long a stop waits for requests and attempts in
// flight: longer than one dispatch timeout, so none is cut short.
const shutdownGrace = 30 * time.Second

// purgeEvery is how often settled records past retention are removed.
const purgeEvery = 10 * time.Minute

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(args, lookupEnv, stderr)
	if errors.Is(err, flagHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "followupd: %v\n", err)
		return 2
	}
	log := telemetry.NewLogger(stderr, cfg.LogLevel)
	if err := serve(ctx, cfg, log, stdout); err != nil {
		log.Error("followupd stopped", "error", err)
		fmt.Fprintf(stderr, "followupd: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg *options, log *slog.Logger, stdout io.Writer) error {
	var demo *demoThreads
	if cfg.Demo {
		var err error
		if demo, err = startDemoThreads(stdout); err != nil {
			return err
		}
		defer demo.Close()
		cfg.ThreadAPIURL = demo.URL
		cfg.SigningSecret = demo.Secret
		if !cfg.Given[config.DataDir.Env] {
			dir, err := os.MkdirTemp("", "followups-demo-")
			if err != nil {
				return fmt.Errorf("demo data directory: %w", err)
			}
			defer os.RemoveAll(dir)
			cfg.DataDir = dir
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("FOLLOWUPS_DATA_DIR (--data-dir): %w", err)
	}
	opened := time.Now()
	store, err := embedded.Open(filepath.Join(cfg.DataDir, "followups.db"), embedded.Options{Retention: cfg.Retention})
	if err != nil {
		return fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	defer store.Close()

	disp, err := dispatch.New(dispatch.Options{
		BaseURL: cfg.ThreadAPIURL, Token: cfg.ThreadAPIToken,
		SigningSecret: []byte(cfg.SigningSecret), Timeout: cfg.DispatchTimeout,
	})
	if err != nil {
		return fmt.Errorf("THREAD_API_URL (--thread-api-url): %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	obs := telemetry.NewPrometheus(reg)

	var svc *followup.Service
	queue := embedded.NewQueue(embedded.QueueOptions{
		Handler: func(ctx context.Context, d embedded.Delivery) followup.Verdict { return svc.Fire(ctx, d.Body) },
		DeadLetter: func(ctx context.Context, d embedded.Delivery) followup.Verdict {
			return svc.DeadLetter(ctx, d.Body, d.Attributes)
		},
		MaxReceiveCount: cfg.Retry.MaxAttempts(),
		Workers:         cfg.Workers,
		Logger:          log,
	})
	timer := embedded.NewTimer(queue)
	svc = followup.New(followup.Config{
		Store: store, Scheduler: timer, Dispatcher: disp, Observer: obs, Log: log,
		Limits: cfg.Limits, Retry: cfg.Retry, Lease: cfg.Lease(), Retention: cfg.Retention,
	})
	if err := telemetry.RegisterGauges(reg, func() telemetry.GaugeValues {
		st, _ := store.Stats()
		qs := queue.Stats()
		return telemetry.GaugeValues{Followups: st.Followups, StoreBytes: st.FileBytes, QueueDepth: int64(qs.Visible + qs.InFlight + qs.Delayed + timer.Len())}
	}); err != nil {
		return err
	}

	key, err := cursorKey(cfg.DataDir)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("FOLLOWUPS_ADDR (--addr): %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.Handle("GET /metrics", telemetry.Handler(reg))
	mux.Handle("/", api.New(api.Options{Service: svc, Token: cfg.APIToken, CursorKey: key, Log: log}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}

	// Serve first, rebuild the timer from the store behind it: due-while-down
	// followups fire as soon as they are loaded, and a large backlog does not
	// keep the API down.
	queue.Start()
	timer.Start()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("followupd listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "thread_api_url", cfg.ThreadAPIURL.String(),
		"auth", cfg.APIToken != "", "startup_ms", time.Since(opened).Milliseconds())
	go func() {
		n := 0
		err := store.Pending(ctx, func(m followup.Message, due time.Time) error {
			n++
			return timer.Load(m, due)
		})
		if err != nil && ctx.Err() == nil {
			log.Error("rebuild timers from store failed", "error", err)
		}
		log.Info("timers rebuilt from store", "pending", n, "elapsed_ms", time.Since(opened).Milliseconds())
	}()
	go purgeLoop(ctx, store, log)
	if demo != nil {
		go demo.Run(ctx, "http://"+ln.Addr().String(), cfg.APIToken, stdout, log)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("shutting down: no new requests; finishing attempts in flight")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "error", err)
	}
	timer.Stop()
	if err := queue.Shutdown(shutdownCtx); err != nil {
		log.Warn("queue shutdown", "error", err)
	}
	log.Info("followupd stopped")
	return nil
}

func purgeLoop(ctx context.Context, store *embedded.Store, log *slog.Logger) {
	t := time.NewTicker(purgeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := store.Purge(ctx, now); err != nil {
				log.Error("purge failed", "error", err)
			} else if n > 0 {
				log.Info("purged settled followups past retention", "removed", n)
			}
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
