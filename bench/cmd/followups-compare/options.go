package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// options is the command line.
type options struct {
	n               int
	rounds          int
	concurrency     int
	workers         int
	warmup          int
	lead            time.Duration
	deliveryTimeout time.Duration
	roundTimeout    time.Duration
	systems         []string
	followupd       string
	repo            string
	redisServer     string
	pgBin           string
	pgUser          string
	asynqDelayed    time.Duration
	keep            bool
	commandLine     string
}

const usageHead = `Usage: followups-compare [flags]

Runs one workload against each system, in interleaved rounds, each round on
a fresh store, and prints the medians (with min–max) side by side, followupd's
ratios to each, and the machine. The workload: -concurrency creators make -n
creates, all due in the same second (-lead ahead, so that every create is
acknowledged before it); each followup is delivered as one POST to a null
thread API on loopback that answers 200 and records, per followup id, its
first arrival and the count.

Systems:
  followupd   the followupd binary built from this repository, over HTTP
  asynq       asynq on Redis (appendfsync always), in-process calls
  asynq+http  the same asynq behind a thin net/http front taking followupd's create
  river       River on PostgreSQL (default durability), in-process calls

Exit status: 0 when every create was accepted and every followup delivered
exactly once; 1 otherwise or when a system could not be run; 2 on bad usage.

Flags:
`

// systemNames are the systems in the order of the table.
var systemNames = []string{"followupd", "asynq", "asynq+http", "river"}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("followups-compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.n, "n", 10_000, "followups per round, all due in the same second")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every system once, in a rotated order, on a fresh store")
	fs.IntVar(&o.concurrency, "concurrency", 64, "concurrent creators (HTTP keep-alive connections or goroutines calling the library)")
	fs.IntVar(&o.workers, "workers", 256, "concurrent deliveries: FOLLOWUPS_WORKERS, asynq's Concurrency, River's MaxWorkers")
	fs.IntVar(&o.warmup, "warmup", 500, "creates made before the measured ones, due in 23 h, not counted")
	fs.DurationVar(&o.lead, "lead", 0, "how far after the creates start the followups are due; 0 means 5 s + 1 ms per followup")
	fs.DurationVar(&o.deliveryTimeout, "delivery-timeout", 2*time.Minute, "how long after the due time to wait for the deliveries")
	fs.DurationVar(&o.roundTimeout, "round-timeout", 10*time.Minute, "upper bound on one system's round")
	systems := fs.String("systems", strings.Join(systemNames, ","), "comma-separated systems to run")
	fs.StringVar(&o.followupd, "followupd", "", "followupd binary to run; empty builds it from the repository")
	fs.StringVar(&o.repo, "repo", "", "the repository's root; empty finds it above the working directory")
	fs.StringVar(&o.redisServer, "redis-server", "redis-server", "the redis-server binary")
	fs.StringVar(&o.pgBin, "pg-bin", "/usr/lib/postgresql/15/bin", "directory of PostgreSQL's initdb and postgres")
	fs.StringVar(&o.pgUser, "pg-user", "followups-bench", "the user PostgreSQL runs as when the comparison runs as root")
	fs.DurationVar(&o.asynqDelayed, "asynq-delayed", time.Second, "asynq's DelayedTaskCheckInterval (asynq's default is 5 s)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, stores)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, c := range []struct {
		bad  bool
		what string
	}{
		{o.n < 1, "-n must be at least 1"},
		{o.rounds < 1, "-rounds must be at least 1"},
		{o.concurrency < 1, "-concurrency must be at least 1"},
		{o.workers < 1, "-workers must be at least 1"},
		{o.warmup < 0, "-warmup must not be negative"},
		{o.lead < 0, "-lead must not be negative"},
		{o.deliveryTimeout <= 0, "-delivery-timeout must be positive"},
		{o.roundTimeout <= 0, "-round-timeout must be positive"},
		{o.asynqDelayed <= 0, "-asynq-delayed must be positive"},
	} {
		if c.bad {
			return nil, errors.New(c.what)
		}
	}
	for s := range strings.SplitSeq(*systems, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(systemNames, s) {
			return nil, fmt.Errorf("-systems: unknown system %q: want some of %s", s, strings.Join(systemNames, ", "))
		}
		if !slices.Contains(o.systems, s) {
			o.systems = append(o.systems, s)
		}
	}
	if o.lead == 0 {
		o.lead = 5*time.Second + time.Duration(o.n)*time.Millisecond
	}
	return o, nil
}

// plainArg is an argument a shell reads back as it is, unquoted.
var plainArg = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// commandLine writes args as a command line a shell reads back the same.
func commandLine(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if !plainArg.MatchString(a) {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}
