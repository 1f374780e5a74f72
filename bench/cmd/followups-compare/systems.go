package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/followups/followups/bench/internal/proc"
)

// system is one of the compared systems: how a round deploys it, how the
// driver makes its creates, and what its figures count.
type system struct {
	name   string
	via    string // the driver's creates: "http", "asynq" or "river"
	counts string // what its CPU and memory figures count, for the report
	deploy func(ctx context.Context, c *comparison, r *round) (*deployment, error)
}

// deployment is a system set up for one round, on a fresh store.
type deployment struct {
	url   string // via http: the API's base URL
	redis string // via asynq: Redis's address
	dsn   string // via river: the round's database
	// servers are the processes whose CPU and memory count, besides the
	// driver's when inProcess.
	servers   []proc.Target
	inProcess bool
	cleanups  []func() error // run last first
}

// close undoes the deployment, last step first, and returns the first error.
func (d *deployment) close() error {
	var first error
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		if err := d.cleanups[i](); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// targets are the processes measured, given the driver's process id.
func (d *deployment) targets(driverPID int) []proc.Target {
	t := append([]proc.Target(nil), d.servers...)
	if d.inProcess {
		t = append(t, proc.Target{PID: driverPID})
	}
	return t
}

var systems = map[string]system{
	"followupd": {
		name:   "followupd",
		via:    "http",
		counts: "the followupd process (HTTP API, bbolt store fsynced before each 201, timer, dispatcher); the HTTP load client is not counted",
		deploy: deployFollowupd,
	},
	"asynq": {
		name:   "asynq",
		via:    "asynq",
		counts: "redis-server + the driver process, which calls Client.Enqueue from the creator goroutines and runs the asynq Server and its handler",
		deploy: deployAsynq,
	},
	"asynq+http": {
		name:   "asynq+http",
		via:    "http",
		counts: "redis-server + the front process (net/http front calling Client.Enqueue, the asynq Server and its handler); the HTTP load client is not counted",
		deploy: deployAsynqHTTP,
	},
	"river": {
		name:   "river",
		via:    "river",
		counts: "PostgreSQL (postmaster, every backend and background process) + the driver process, which calls Client.Insert from the creator goroutines and runs River's producer, workers and maintenance",
		deploy: deployRiver,
	},
}

// deployFollowupd starts followupd on a fresh data directory, dispatching
// to the null thread API.
func deployFollowupd(ctx context.Context, c *comparison, r *round) (*deployment, error) {
	d := &deployment{}
	dir, err := os.MkdirTemp(c.work, r.name("followupd-data"))
	if err != nil {
		return nil, err
	}
	d.cleanups = append(d.cleanups, func() error { return os.RemoveAll(dir) })
	addr, err := freeAddr()
	if err != nil {
		return d, err
	}
	cmd := exec.Command(c.followupd)
	cmd.Env = append(withoutSettings(os.Environ()),
		"THREAD_API_URL="+c.sink.url,
		"FOLLOWUPS_MIN_DELAY=1s", // the followups are due seconds ahead
		fmt.Sprintf("FOLLOWUPS_WORKERS=%d", c.o.workers),
		"FOLLOWUPS_ADDR="+addr,
		"FOLLOWUPS_DATA_DIR="+dir)
	p, err := startProcess("followupd", cmd, filepath.Join(c.work, r.name("followupd")+".log"))
	if err != nil {
		return d, err
	}
	d.cleanups = append(d.cleanups, func() error { return p.stop(syscall.SIGTERM, time.Minute) })
	d.url = "http://" + addr
	d.servers = []proc.Target{{PID: p.pid()}}
	return d, p.waitFor(30*time.Second, "answer /healthz", healthy(ctx, d.url))
}

// deployAsynq starts a fresh Redis; the driver is the asynq client and server.
func deployAsynq(ctx context.Context, c *comparison, r *round) (*deployment, error) {
	d := &deployment{inProcess: true}
	rs, err := startRedis(ctx, c.o.redisServer, c.work, r.name("redis"))
	if err != nil {
		return d, err
	}
	d.cleanups = append(d.cleanups, rs.close)
	d.redis = rs.addr
	d.servers = []proc.Target{{PID: rs.pid()}}
	return d, nil
}

// deployAsynqHTTP starts a fresh Redis and the asynq front in front of it.
func deployAsynqHTTP(ctx context.Context, c *comparison, r *round) (*deployment, error) {
	d, err := deployAsynq(ctx, c, r)
	if err != nil {
		return d, err
	}
	d.inProcess = false
	addr, err := freeAddr()
	if err != nil {
		return d, err
	}
	fo := frontOptions{Addr: addr, Redis: d.redis, Queue: c.queueSettings()}
	p, err := startProcess(roleFront, exec.Command(c.self, roleArgs(roleFront, fo)...), filepath.Join(c.work, r.name("front")+".log"))
	if err != nil {
		return d, err
	}
	d.cleanups = append(d.cleanups, func() error { return p.stop(syscall.SIGTERM, 30*time.Second) })
	d.url = "http://" + addr
	d.servers = append(d.servers, proc.Target{PID: p.pid()})
	return d, p.waitFor(30*time.Second, "answer /healthz", healthy(ctx, d.url))
}

// deployRiver creates a fresh database with River's tables in the
// comparison's PostgreSQL, and checkpoints so that each round starts from
// the same state of the write-ahead log.
func deployRiver(ctx context.Context, c *comparison, r *round) (*deployment, error) {
	d := &deployment{inProcess: true}
	db := strings.ReplaceAll(r.name("river"), "-", "_")
	if err := c.pg.createDatabase(ctx, db); err != nil {
		return d, err
	}
	d.cleanups = append(d.cleanups, func() error { return c.pg.dropDatabase(context.Background(), db) })
	d.dsn = c.pg.dsn(db)
	if err := migrateRiver(ctx, d.dsn); err != nil {
		return d, err
	}
	if err := c.pg.exec(ctx, "CHECKPOINT"); err != nil {
		return d, fmt.Errorf("checkpoint: %w", err)
	}
	d.servers = []proc.Target{{PID: c.pg.pid(), Tree: true}}
	return d, nil
}

// healthy checks that GET base/healthz answers 200.
func healthy(ctx context.Context, base string) func() error {
	client := &http.Client{Timeout: time.Second}
	return func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz answered %s", res.Status)
		}
		return nil
	}
}

// withoutSettings drops Followups' own settings from an environment: the
// child gets only the comparison's.
func withoutSettings(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "FOLLOWUPS_") && !strings.HasPrefix(e, "THREAD_API_") {
			out = append(out, e)
		}
	}
	return out
}
