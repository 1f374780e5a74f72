package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runner runs the scenarios and prints their figures.
type runner struct {
	o       *options
	out     io.Writer
	errOut  io.Writer
	machine machine
	sink    *sink
	work    string // temporary directory: the children's data and logs
	starts  int    // children started, to name their logs
	keep    bool   // keep work: asked for, or something failed
	results []*result
}

func newRunner(o *options, out, errOut io.Writer) (*runner, error) {
	r := &runner{o: o, out: out, errOut: errOut, machine: readMachine(), keep: o.keep}
	if o.target == "" {
		if _, err := os.Stat(o.followupd); err != nil {
			return nil, fmt.Errorf("-followupd %s: %w (build it with make build)", o.followupd, err)
		}
	}
	s, err := startSink(o.sinkAddr)
	if err != nil {
		return nil, fmt.Errorf("null thread API on %s: %w", o.sinkAddr, err)
	}
	r.sink = s
	if r.work, err = os.MkdirTemp("", "followups-load-"); err != nil {
		s.close()
		return nil, err
	}
	return r, nil
}

func (r *runner) close() {
	r.sink.close()
	if r.keep {
		fmt.Fprintf(r.errOut, "followups-load: kept %s (data directories and followupd logs)\n", r.work)
		return
	}
	os.RemoveAll(r.work)
}

// run runs the scenarios asked for and reports whether all were correct.
func (r *runner) run(ctx context.Context) bool {
	names := scenarioNames
	if r.o.scenario != "all" {
		names = []string{r.o.scenario}
	}
	scenarios := map[string]func(context.Context, *result) error{
		"creates": r.creates,
		"burst":   r.burst,
		"pending": r.pending,
		"abuse":   r.abuse,
	}
	ok := true
	for run := 1; run <= r.o.repeat; run++ {
		for _, name := range names {
			if ctx.Err() != nil {
				fmt.Fprintf(r.errOut, "followups-load: interrupted\n")
				return false
			}
			res := &result{scenario: name, run: run}
			head := r.head()
			sctx, cancel := context.WithTimeout(ctx, r.o.timeout)
			if err := scenarios[name](sctx, res); err != nil {
				res.fail("%v", err)
			}
			cancel()
			res.print(r.out, head)
			r.results = append(r.results, res)
			if len(res.failures) > 0 {
				ok = false
				r.keep = true
			}
		}
	}
	if r.o.repeat > 1 {
		printSpread(r.out, r.results)
	}
	r.printSummary(ok)
	return ok
}

// head is the rows every block starts with: where and how it was measured.
func (r *runner) head() [][2]string {
	target := "child " + r.o.followupd + " (fresh process and data directory per run)"
	if r.o.target != "" {
		target = r.o.target + " (already running; not restarted or measured in-process)"
	}
	return [][2]string{
		{"machine", r.machine.String()},
		{"load average", loadAverage() + " (at start of run)"},
		{"command", r.o.commandLine},
		{"followupd", target},
		{"thread API", r.sink.url + " (null sink, answers 201 at once)"},
	}
}

func (r *runner) printSummary(ok bool) {
	fmt.Fprintf(r.out, "\n== followups-load: summary ==\n")
	fmt.Fprintf(r.out, "machine   %s\ncommand   %s\n", r.machine, r.o.commandLine)
	for _, res := range r.results {
		for _, m := range res.missed {
			fmt.Fprintf(r.out, "%-8s  run %d: %s\n", res.scenario, res.run, m)
		}
		for _, f := range res.failures {
			fmt.Fprintf(r.out, "%-8s  run %d: FAILED: %s\n", res.scenario, res.run, f)
		}
	}
	if ok {
		fmt.Fprintf(r.out, "result    PASS: no errors, duplicates, missing deliveries or lost followups\n")
	} else {
		fmt.Fprintf(r.out, "result    FAIL: correctness failures above\n")
	}
}

// daemonFor returns the followupd a scenario runs against: a fresh child
// on a fresh data directory, or the target.
func (r *runner) daemonFor(ctx context.Context, scenario string) (*daemon, error) {
	if r.o.target != "" {
		return &daemon{base: r.o.target}, nil
	}
	dir, err := os.MkdirTemp(r.work, scenario+"-data-")
	if err != nil {
		return nil, err
	}
	return r.startChild(ctx, dir)
}

// startChild starts followupd on dataDir.
func (r *runner) startChild(ctx context.Context, dataDir string) (*daemon, error) {
	r.starts++
	logPath := filepath.Join(r.work, fmt.Sprintf("followupd-%d.log", r.starts))
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := r.childEnv()
	debug := ""
	if r.o.profile != "" {
		if debug, err = freeAddr(); err != nil {
			return nil, err
		}
		env = append(env, "FOLLOWUPS_DEBUG_ADDR="+debug)
	}
	d, err := startDaemon(ctx, r.o.followupd, addr, dataDir, logPath, env)
	if err == nil {
		d.debugAddr = debug
	}
	return d, err
}

// childEnv is this process's environment without any Followups setting,
// then the child's: the null thread API and a minimum delay short enough
// for a burst a few seconds ahead. -child-env entries come next and win;
// startDaemon adds the address and data directory last.
func (r *runner) childEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "FOLLOWUPS_") && !strings.HasPrefix(e, "THREAD_API_") {
			env = append(env, e)
		}
	}
	env = append(env, "THREAD_API_URL="+r.sink.url, "FOLLOWUPS_MIN_DELAY=1s")
	return append(env, r.o.childEnv...)
}

// logsInfo reports whether the child logs INFO lines, which tell its
// startup and timer rebuild times.
func (r *runner) logsInfo() bool {
	level := "info"
	for _, e := range r.o.childEnv {
		if v, ok := strings.CutPrefix(e, "FOLLOWUPS_LOG_LEVEL="); ok {
			level = strings.ToLower(strings.TrimSpace(v))
		}
	}
	return strings.HasPrefix(level, "info") || strings.HasPrefix(level, "debug")
}

// childRows describes a child for the report.
func childRows(res *result, d *daemon, extra []string) {
	if d.cmd == nil {
		return
	}
	res.row("child", "pid %d, %s, data %s, log %s", d.pid(), d.base, d.dataDir, d.logPath)
	if len(extra) > 0 {
		res.row("child env", "%s", strings.Join(extra, " "))
	}
}

// checkLog fails the run when the child logged an ERROR, and shows any
// WARN lines.
func checkLog(res *result, d *daemon) {
	if d.cmd == nil {
		return
	}
	errs, warns, notes := d.logged()
	switch {
	case errs > 0:
		res.fail("followupd logged %d ERROR and %d WARN lines, first: %s", errs, warns, strings.Join(notes, "; "))
	case warns > 0:
		res.row("followupd log", "%d WARN lines, first: %s", warns, strings.Join(notes, "; "))
	default:
		res.row("followupd log", "no ERROR or WARN lines")
	}
}

// stopChild stops a child with SIGTERM, failing the run unless it exits
// cleanly.
func stopChild(res *result, d *daemon, label string) time.Duration {
	if d.cmd == nil {
		return 0
	}
	took, err := d.stop(time.Minute)
	if err != nil {
		res.fail("%s: %v", label, err)
	}
	return took
}

// runToken makes the thread ids (and keys) of one run its own, so runs
// against the same target never meet.
func runToken(scenario string, run int) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s%d-%s", scenario[:1], run, hex.EncodeToString(b))
}

// farFuture is the delay of followups that must not fire during a run: 23
// hours, inside the default 24 h maximum.
const farFuture = `"delay_seconds":82800`

// requests builds create i of a run: its body, and a distinct
// Idempotency-Key when -idempotency-keys is given.
func (r *runner) requests(token, when string) func(i int) createRequest {
	return func(i int) createRequest {
		c := createRequest{body: createBody(token, i, when)}
		if r.o.idempotency {
			c.key = fmt.Sprintf("load-%s-%d", token, i)
		}
		return c
	}
}

// reportFailures fails the run for every create that was not accepted.
func reportFailures(res *result, b *batch) {
	for kind, n := range b.failures {
		res.fail("%d creates failed: %s (e.g. %s)", n, kind, truncate(b.examples[kind], 200))
	}
}
