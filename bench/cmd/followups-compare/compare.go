package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/followups/followups/bench/internal/proc"
	"github.com/google/uuid"
	"golang.org/x/mod/modfile"
)

// comparison is one run: what it started for all rounds, and the results.
type comparison struct {
	o         *options
	log       *slog.Logger
	work      string // temporary directory: logs, stores, the followupd binary
	self      string // this binary, started again as driver and front
	followupd string
	sink      *sink
	pg        *postgresServer // nil unless River is compared
	env       environment
	results   []*roundResult
}

// round names one system's run in one round.
type round struct {
	system string
	n      int // 1-based
}

// name is a file or database name for the round: "followupd-data-r2".
func (r *round) name(what string) string { return fmt.Sprintf("%s-r%d", what, r.n) }

// newComparison sets up what every round shares: the temporary directory,
// followupd's binary, the null thread API and, for River, PostgreSQL. On
// error the caller still closes what it returns.
func newComparison(ctx context.Context, o *options) (*comparison, error) {
	c := &comparison{o: o, log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	var err error
	if c.self, err = os.Executable(); err != nil {
		return nil, err
	}
	if c.work, err = os.MkdirTemp("", "followups-compare-"); err != nil {
		return nil, err
	}
	c.env = readEnvironment(o)
	if c.followupd, err = c.buildFollowupd(ctx); err != nil {
		return c, err
	}
	if c.sink, err = startSink(); err != nil {
		return c, fmt.Errorf("null thread API: %w", err)
	}
	if slices.Contains(o.systems, "river") {
		c.log.Info("starting PostgreSQL", "bin", o.pgBin, "work", c.work)
		// A connection per creator and River's own, and the comparison's.
		conns := max(100, riverPoolConns(o.concurrency)+16)
		if c.pg, err = startPostgres(ctx, o.pgBin, o.pgUser, conns, c.work); err != nil {
			return c, fmt.Errorf("PostgreSQL: %w", err)
		}
	}
	return c, nil
}

// buildFollowupd builds followupd from the repository, unless -followupd
// names a binary.
func (c *comparison) buildFollowupd(ctx context.Context) (string, error) {
	if c.o.followupd != "" {
		return c.o.followupd, nil
	}
	repo := c.o.repo
	if repo == "" {
		wd, _ := os.Getwd()
		var err error
		if repo, err = findRepo(wd); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(c.work, "followupd")
	c.log.Info("building followupd", "repo", repo, "out", bin)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/followupd")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/followupd in %s: %w\n%s", repo, err, out)
	}
	return bin, nil
}

// productModule is the module path of the repository's root.
const productModule = "github.com/followups/followups"

// findRepo looks for the repository's root at dir and above it.
func findRepo(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modfile.ModulePath(b) == productModule {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no %s module at or above %s: give -repo or -followupd", productModule, dir)
		}
	}
}

// close stops what newComparison started and removes the temporary
// directory, unless it is kept.
func (c *comparison) close() {
	if c.pg != nil {
		if err := c.pg.close(); err != nil {
			c.log.Warn("stop PostgreSQL", "err", err)
		}
	}
	if c.sink != nil {
		c.sink.close()
	}
	if c.work == "" {
		return
	}
	if c.o.keep {
		c.log.Info("kept the temporary directory", "dir", c.work)
		return
	}
	os.RemoveAll(c.work)
}

// run runs the rounds and prints the report; it reports whether every
// round was correct.
func (c *comparison) run(ctx context.Context) bool {
	c.env.loadStart = proc.LoadAverage()
	for n := 1; n <= c.o.rounds; n++ {
		// Rotate the order, so that no system always runs first or
		// right after another one.
		order := slices.Clone(c.o.systems)
		k := (n - 1) % len(order)
		order = append(order[k:], order[:k]...)
		for _, name := range order {
			if ctx.Err() != nil {
				c.log.Error("interrupted")
				return false
			}
			r := &round{system: name, n: n}
			c.log.Info("round", "round", fmt.Sprintf("%d/%d", n, c.o.rounds), "system", name)
			res := c.runRound(ctx, systems[name], r)
			c.results = append(c.results, res)
			res.log(c.log)
		}
	}
	c.env.loadEnd = proc.LoadAverage()
	ok := !slices.ContainsFunc(c.results, func(r *roundResult) bool { return len(r.failures) > 0 })
	if ok || ctx.Err() == nil {
		printReport(os.Stdout, c.o, c.env, c.results)
	}
	if !ok && ctx.Err() == nil {
		c.o.keep = true // the logs tell what went wrong
	}
	return ok
}

// queueSettings are the settings of asynq and River.
func (c *comparison) queueSettings() queueSettings {
	return queueSettings{Workers: c.o.workers, Creators: c.o.concurrency, AsynqDelayed: c.o.asynqDelayed, ThreadAPI: c.sink.url}
}

// runRound runs one system's round: deploy on a fresh store, warm up,
// measure the creates, wait for the due time, measure the deliveries,
// check them, tear down.
func (c *comparison) runRound(ctx context.Context, sys system, r *round) *roundResult {
	res := &roundResult{system: sys.name, round: r.n}
	ctx, cancel := context.WithTimeout(ctx, c.o.roundTimeout)
	defer cancel()
	c.sink.reset()

	d, err := sys.deploy(ctx, c, r)
	if d != nil {
		defer func() {
			if err := d.close(); err != nil {
				res.fail("tear down: %v", err)
			}
		}()
	}
	if err != nil {
		res.fail("deploy: %v", err)
		return res
	}
	drv, err := c.startDriver(sys, d, r)
	if err != nil {
		res.fail("start driver: %v", err)
		return res
	}
	defer func() {
		if err := drv.close(); err != nil {
			res.fail("driver: %v", err)
		}
	}()
	if _, err := drv.await(ctx, "ready", 2*time.Minute); err != nil {
		res.fail("driver set-up and warm-up: %v", err)
		return res
	}

	targets := d.targets(drv.pid())
	mem := sampleMemory(targets, time.Second)
	defer mem.stop()
	client := []proc.Target{{PID: drv.pid()}}
	cpu0, client0 := cpuOf(targets), cpuOf(client)
	due := time.Now().Add(c.o.lead).Truncate(time.Second).Add(time.Second)
	if err := drv.send(goMessage{Due: due}); err != nil {
		res.fail("driver: %v", err)
		return res
	}
	ev, err := drv.await(ctx, "created", c.o.roundTimeout)
	if err != nil {
		res.fail("creates: %v", err)
		return res
	}
	cpu1, client1 := cpuOf(targets), cpuOf(client)
	created := ev.Created
	if created == nil {
		res.fail("creates: the driver sent no outcome")
		return res
	}
	createsDone := time.Now()
	res.addCreates(created, used(cpu0, cpu1), used(client0, client1), !d.inProcess)
	if createsDone.After(due) {
		res.note("the creates ended %s after the due time: raise -lead", createsDone.Sub(due).Round(time.Millisecond))
	}

	// Nothing is due before the due time: the deliveries' CPU counts from
	// there until the last one arrived.
	if err := sleepUntil(ctx, due); err != nil {
		res.fail("interrupted")
		return res
	}
	cpu2 := cpuOf(targets)
	allIn := c.waitDeliveries(ctx, created.IDs, due.Add(c.o.deliveryTimeout))
	cpu3 := cpuOf(targets)
	if allIn {
		// A duplicate may come late.
		_ = sleepUntil(ctx, time.Now().Add(2*time.Second))
	}
	res.memory = mem.stop()
	res.addDeliveries(c.sink.tally(created.IDs, due), used(cpu2, cpu3))
	if !allIn && res.missing == 0 {
		res.fail("deliveries: interrupted")
	}
	return res
}

// cpuOf is the CPU time the targets used so far, or -1 when it cannot be
// read.
func cpuOf(targets []proc.Target) time.Duration {
	d, err := proc.CPU(targets)
	if err != nil {
		return -1
	}
	return d
}

// used is the CPU time between two readings of cpuOf, -1 when either
// failed.
func used(before, after time.Duration) time.Duration {
	if before < 0 || after < 0 {
		return -1
	}
	return after - before
}

// waitDeliveries waits until every id has reached the null thread API,
// and reports whether they all did before the deadline.
func (c *comparison) waitDeliveries(ctx context.Context, ids []string, deadline time.Time) bool {
	for !c.sink.hasAll(ids) {
		if time.Now().After(deadline) || sleepUntil(ctx, time.Now().Add(10*time.Millisecond)) != nil {
			return false
		}
	}
	return true
}

// sleepUntil sleeps until t, or returns ctx's error.
func sleepUntil(ctx context.Context, t time.Time) error {
	wait, cancel := context.WithDeadline(ctx, t)
	defer cancel()
	<-wait.Done()
	return ctx.Err()
}

// driver is a running driver child and the two ends of its control.
type driver struct {
	*process
	control io.WriteCloser
	eventCh chan driverEventOrErr
}

type driverEventOrErr struct {
	ev  driverEvent
	err error
}

// startDriver starts the round's driver child.
func (c *comparison) startDriver(sys system, d *deployment, r *round) (*driver, error) {
	o := driverOptions{Via: sys.via, URL: d.url, Redis: d.redis, DSN: d.dsn, N: c.o.n, Warmup: c.o.warmup,
		Token: fmt.Sprintf("r%d-%s", r.n, uuid.NewString()[:8]), Queue: c.queueSettings()}
	cmd := exec.Command(c.self, roleArgs(roleDriver, o)...)
	control, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	er, ew, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{ew}
	p, err := startProcess("driver", cmd, filepath.Join(c.work, r.name(sys.name+"-driver")+".log"))
	ew.Close()
	if err != nil {
		er.Close()
		return nil, err
	}
	drv := &driver{process: p, control: control, eventCh: make(chan driverEventOrErr, 2)}
	go func() {
		defer er.Close()
		dec := json.NewDecoder(er)
		for {
			var ev driverEvent
			err := dec.Decode(&ev)
			drv.eventCh <- driverEventOrErr{ev, err}
			if err != nil {
				return
			}
		}
	}()
	return drv, nil
}

// await waits up to limit for the driver's next event, which must be want.
func (d *driver) await(ctx context.Context, want string, limit time.Duration) (driverEvent, error) {
	select {
	case e := <-d.eventCh:
		switch {
		case e.err != nil:
			<-d.exited
			return driverEvent{}, fmt.Errorf("driver ended (%v, %v); its log: %s\n%s", e.err, d.waitErr, d.logPath, logEnd(d.logPath))
		case e.ev.Event != want:
			return driverEvent{}, fmt.Errorf("driver said %q, want %q", e.ev.Event, want)
		}
		return e.ev, nil
	case <-time.After(limit):
		return driverEvent{}, fmt.Errorf("no %q from the driver within %s; its log: %s", want, limit, d.logPath)
	case <-ctx.Done():
		return driverEvent{}, ctx.Err()
	}
}

// send writes one control message.
func (d *driver) send(m goMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = d.control.Write(append(b, '\n'))
	return err
}

// close ends the driver's input, which stops it, and waits for it.
func (d *driver) close() error {
	d.control.Close()
	err := d.waitExit(time.Minute)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("driver exited with %v; its log: %s\n%s", err, d.logPath, logEnd(d.logPath))
	}
	return err
}

// memorySampler keeps the largest memory of its targets seen (see
// proc.Memory).
type memorySampler struct {
	stopOnce sync.Once
	done     chan struct{}
	finished chan struct{}
	peak     uint64
}

// sampleMemory samples the targets' memory every interval until stop.
func sampleMemory(targets []proc.Target, interval time.Duration) *memorySampler {
	m := &memorySampler{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(m.finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		sample := func() {
			if v, err := proc.Memory(targets); err == nil {
				m.peak = max(m.peak, v)
			}
		}
		for {
			sample()
			select {
			case <-m.done:
				sample() // the last: a single process's peak so far
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// stop ends the sampling and returns the peak, in bytes.
func (m *memorySampler) stop() uint64 {
	m.stopOnce.Do(func() { close(m.done) })
	<-m.finished
	return m.peak
}
