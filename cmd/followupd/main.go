// Command followupd runs Followups on one machine: the HTTP API, an
// embedded durable store, timer and queue, and the dispatcher, in one
// process, with no AWS account.
//
//	followupd --thread-api-url https://threads.example.com
//	followupd --demo
//
// Every flag may be given as its environment variable (README,
// "Configuration"); run followupd -h for the list.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/followups/followups/shared/config"
	"github.com/followups/followups/shared/memqueue"
	"github.com/followups/followups/shared/telemetry"
)

// gcPercent is followupd's GOGC unless the environment sets one. The live
// heap is small (100,000 pending followups take about 22 MiB) and a burst
// of deliveries allocates fast, so collecting less often buys about a
// quarter of the CPU per delivery (docs/PERFORMANCE.md).
const gcPercent = 400

// memoryLimit is followupd's soft memory limit (GOMEMLIMIT) unless the
// environment sets one. With GOGC at 400 alone the heap would grow to five
// times the live heap: about 100 MiB at 100,000 pending. Near the limit
// the collector works harder instead, so the process stays within about
// 115 MiB of RSS at 100,000 pending (the store's memory-mapped pages
// included), and a flood of requests (each bounded by the API) cannot grow
// it without end, while GOGC stays high for throughput when the heap is
// small. The collector never spends more than about half the CPU to keep
// the limit, so a live heap beyond it slows followupd; it does not stop it.
const memoryLimit = 64 << 20

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// shutdownGrace bounds how long a stop waits for requests and attempts in
// flight: longer than one dispatch timeout, so none is cut short.
const shutdownGrace = 30 * time.Second

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
	a, err := openApp(cfg, log, memqueue.SystemClock{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		a.close(context.Background())
		return fmt.Errorf("%s: %w", config.Addr, err)
	}
	// Every request is bounded: its headers in size and time, its body in
	// size (the API's 64 KiB) and time; an idle connection is closed.
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}

	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			a.close(context.Background())
			ln.Close()
			return err
		}
		defer stopDebug()
	}

	// Serve first and rebuild the timer from the store behind it:
	// due-while-down followups fire as soon as they are loaded, and a large
	// backlog does not keep the API down.
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("followupd listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "thread_api_url", cfg.ThreadAPIURL.String(),
		"auth", cfg.APIToken != "", "startup_ms", time.Since(a.opened).Milliseconds())
	a.start(ctx)
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
	a.close(shutdownCtx)
	log.Info("followupd stopped")
	return nil
}

// serveDebug serves Go's profiles (net/http/pprof) on addr, a loopback
// address, on a mux of its own: the API's handler never routes them.
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.DebugAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("profiles served", "debug_addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
