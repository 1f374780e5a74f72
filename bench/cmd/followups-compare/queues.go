package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// queueSettings are what the asynq and River runs are configured with.
type queueSettings struct {
	Workers      int           `json:"workers"`       // concurrent deliveries, as followupd's FOLLOWUPS_WORKERS
	Creators     int           `json:"creators"`      // concurrent creators: each gets a connection
	AsynqDelayed time.Duration `json:"asynq_delayed"` // asynq's DelayedTaskCheckInterval
	ThreadAPI    string        `json:"thread_api"`    // the null thread API's base URL
}

// queue is asynq or River, as the driver uses it.
type queue interface {
	schedule(ctx context.Context, f followup) error // durably, for f.RunAt
	close()
}

var (
	_ queue = (*asynqQueue)(nil)
	_ queue = (*riverQueue)(nil)
)

// taskType is the asynq task type of a followup.
const taskType = "followup"

// asynqQueue is an asynq client and a server delivering its tasks.
type asynqQueue struct {
	client *asynq.Client
	server *asynq.Server
}

// startAsynq connects an asynq client to Redis at addr and starts a server
// whose handler delivers each followup to the thread API.
func startAsynq(addr string, s queueSettings) (*asynqQueue, error) {
	thread := newThreadAPI(s.ThreadAPI, s.Workers)
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: addr, PoolSize: s.Creators})
	server := asynq.NewServer(asynq.RedisClientOpt{Addr: addr, PoolSize: s.Workers}, asynq.Config{
		Concurrency:              s.Workers,
		DelayedTaskCheckInterval: s.AsynqDelayed,
		LogLevel:                 asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc(taskType, func(ctx context.Context, t *asynq.Task) error {
		var f followup
		if err := json.Unmarshal(t.Payload(), &f); err != nil {
			return fmt.Errorf("%w: %v", asynq.SkipRetry, err)
		}
		retried, _ := asynq.GetRetryCount(ctx)
		return thread.deliver(ctx, f, retried+1)
	})
	if err := server.Start(mux); err != nil {
		client.Close()
		return nil, fmt.Errorf("start asynq server: %w", err)
	}
	return &asynqQueue{client: client, server: server}, nil
}

// schedule enqueues f to be processed at f.RunAt.
func (q *asynqQueue) schedule(ctx context.Context, f followup) error {
	payload, err := json.Marshal(f)
	if err != nil {
		return err
	}
	_, err = q.client.EnqueueContext(ctx, asynq.NewTask(taskType, payload), asynq.ProcessAt(f.RunAt))
	return err
}

// close stops the server (waiting for deliveries in flight, up to asynq's
// shutdown timeout) and the client.
func (q *asynqQueue) close() {
	q.server.Shutdown()
	q.client.Close()
}

// riverQueue is a River client that inserts followups and works them.
type riverQueue struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
}

// riverWorker delivers a followup job to the thread API.
type riverWorker struct {
	river.WorkerDefaults[followup]
	thread *threadAPI
}

// Work delivers the job's followup.
func (w *riverWorker) Work(ctx context.Context, job *river.Job[followup]) error {
	return w.thread.deliver(ctx, job.Args, job.Attempt)
}

// riverPoolConns is the pool's size: a connection per creator, and a few
// for River's producer, completer, notifier and maintenance.
func riverPoolConns(creators int) int { return creators + 8 }

// startRiver connects to PostgreSQL at dsn and starts a River client
// working the default queue with s.Workers workers.
func startRiver(ctx context.Context, dsn string, s queueSettings) (*riverQueue, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(riverPoolConns(s.Creators))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &riverWorker{thread: newThreadAPI(s.ThreadAPI, s.Workers)})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: s.Workers}},
		Workers: workers,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("river client: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("start river client: %w", err)
	}
	return &riverQueue{pool: pool, client: client}, nil
}

// schedule inserts f as a job scheduled at f.RunAt.
func (q *riverQueue) schedule(ctx context.Context, f followup) error {
	_, err := q.client.Insert(ctx, f, &river.InsertOpts{ScheduledAt: f.RunAt})
	return err
}

// close stops the client (waiting up to 20 s for jobs in flight) and the
// pool.
func (q *riverQueue) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := q.client.Stop(ctx); err != nil {
		_ = q.client.StopAndCancel(context.Background())
	}
	q.pool.Close()
}

// migrateRiver creates River's tables in the database at dsn.
func migrateRiver(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate River's tables: %w", err)
	}
	return nil
}
