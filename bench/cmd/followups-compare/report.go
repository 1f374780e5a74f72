package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/followups/followups/bench/internal/proc"
	"github.com/followups/followups/bench/internal/stats"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// environment is what the report says about where and how it ran.
type environment struct {
	machine   proc.Machine
	loadStart string
	loadEnd   string
	goVersion string
	redis     string
	postgres  string
	libraries string
}

func readEnvironment(o *options) environment {
	return environment{
		machine:   proc.ReadMachine(),
		goVersion: runtime.Version(),
		redis:     redisVersion(o.redisServer),
		postgres:  postgresVersion(o.pgBin),
		libraries: libraryVersions(),
	}
}

// libraryVersions lists the versions of the compared libraries this
// binary was built with.
func libraryVersions() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	names := map[string]string{
		"github.com/hibiken/asynq":                           "asynq",
		"github.com/riverqueue/river":                        "river",
		"github.com/riverqueue/river/riverdriver/riverpgxv5": "riverpgxv5",
		"github.com/jackc/pgx/v5":                            "pgx",
		"github.com/redis/go-redis/v9":                       "go-redis",
	}
	var out []string
	for _, m := range info.Deps {
		if n, ok := names[m.Path]; ok {
			out = append(out, n+" "+m.Version)
		}
	}
	return strings.Join(out, ", ")
}

// column is a figure of the table.
type column struct {
	head  string
	value func(*roundResult) float64
	ratio string // its heading in the ratios table; "" when not there
}

var columns = []column{
	{"creates/s", func(r *roundResult) float64 { return r.createsPerSec }, "creates/s"},
	{"create p99 ms", func(r *roundResult) float64 { return ms(r.createP99) }, ""},
	{"lateness p50 ms", func(r *roundResult) float64 { return ms(r.lateP50) }, ""},
	{"lateness p99 ms", func(r *roundResult) float64 { return ms(r.lateP99) }, "lateness p99"},
	{"CPU/create µs", func(r *roundResult) float64 { return r.cpuPerCreate }, "CPU/create"},
	{"CPU/delivery µs", func(r *roundResult) float64 { return r.cpuPerDelivery }, "CPU/delivery"},
	{"memory MiB", func(r *roundResult) float64 { return mib(r.memory) }, "memory"},
}

// summary is one system's figures over the rounds that were correct.
type summary struct {
	system  string
	rounds  int // counted: without a correctness failure
	failed  int
	spreads []stats.Spread // by column
	client  stats.Spread   // HTTP load client µs per create
	dups    int
	missing int
}

func summarize(system string, results []*roundResult) summary {
	s := summary{system: system, spreads: make([]stats.Spread, len(columns))}
	var counted []*roundResult
	for _, r := range results {
		if r.system != system {
			continue
		}
		s.dups += r.duplicates
		s.missing += r.missing
		if len(r.failures) > 0 {
			s.failed++
			continue
		}
		counted = append(counted, r)
	}
	s.rounds = len(counted)
	for i, c := range columns {
		s.spreads[i] = spreadOf(counted, c.value)
	}
	s.client = spreadOf(counted, func(r *roundResult) float64 { return r.clientPerCreate })
	return s
}

// spreadOf is the spread of a figure, leaving out rounds where it was not
// measured.
func spreadOf(results []*roundResult, value func(*roundResult) float64) stats.Spread {
	var vs []float64
	for _, r := range results {
		if v := value(r); !math.IsNaN(v) {
			vs = append(vs, v)
		}
	}
	return stats.SpreadOf(vs)
}

// printReport writes the table, the ratios, what each figure counts, the
// rounds one by one, and the machine.
func printReport(w io.Writer, o *options, env environment, results []*roundResult) {
	var sums []summary
	for _, name := range o.systems {
		sums = append(sums, summarize(name, results))
	}
	fmt.Fprintf(w, "\n== followups-compare: %s followups due in the same second, %d concurrent creators, %d delivery workers; median (min–max) of the correct rounds ==\n\n",
		number(float64(o.n)), o.concurrency, o.workers)
	printTable(w, sums)

	fmt.Fprintf(w, "\n== ratios: followupd's median ÷ the other's ==\n")
	fmt.Fprintf(w, "creates/s above 1: followupd accepts more per second; CPU, lateness and memory below 1: followupd uses less or is earlier\n\n")
	printRatios(w, sums)

	fmt.Fprintf(w, "\n== what the figures count ==\n")
	printLegend(w, o, sums)

	fmt.Fprintf(w, "\n== rounds (in the order run) ==\n\n")
	printRounds(w, results)

	fmt.Fprintf(w, "\n== machine ==\n\n")
	printMachine(w, o, env)
	printVerdict(w, results)
}

// printVerdict writes whether every round was correct, and if not, why.
func printVerdict(w io.Writer, results []*roundResult) {
	var failures []string
	for _, r := range results {
		for _, f := range r.failures {
			failures = append(failures, fmt.Sprintf("round %d %s: %s", r.round, r.system, f))
		}
	}
	if len(failures) == 0 {
		fmt.Fprintf(w, "%-13s PASS: every create accepted, every followup delivered exactly once\n", "result")
		return
	}
	fmt.Fprintf(w, "%-13s FAIL: %d correctness failure(s)\n", "result", len(failures))
	for _, f := range failures {
		fmt.Fprintf(w, "  %s\n", f)
	}
}

// figureTable writes a table of rows: their names under heads, then a
// cell per column by cell, then their tail cells under tails.
func figureTable(w io.Writer, heads, tails []string, rows int, name func(row int) []string, cell func(row, col int) string, tail func(row int) []string) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	line := slices.Clone(heads)
	for _, c := range columns {
		line = append(line, c.head)
	}
	fmt.Fprintln(tw, strings.Join(append(line, tails...), "\t"))
	for r := range rows {
		line = name(r)
		for c := range columns {
			line = append(line, cell(r, c))
		}
		fmt.Fprintln(tw, strings.Join(append(line, tail(r)...), "\t"))
	}
	tw.Flush()
	// An empty last column leaves the padding of the one before it.
	for l := range strings.Lines(b.String()) {
		fmt.Fprintln(w, strings.TrimRight(l, " \n"))
	}
}

func printTable(w io.Writer, sums []summary) {
	figureTable(w, []string{"system", "rounds"}, []string{"duplicates / missing"}, len(sums),
		func(r int) []string { return []string{sums[r].system, fmt.Sprint(sums[r].rounds)} },
		func(r, c int) string { return spreadCell(sums[r].spreads[c]) },
		func(r int) []string { return []string{fmt.Sprintf("%d / %d", sums[r].dups, sums[r].missing)} })
}

func printRatios(w io.Writer, sums []summary) {
	base := -1
	for i, s := range sums {
		if s.system == "followupd" {
			base = i
		}
	}
	if base < 0 || len(sums) < 2 {
		fmt.Fprintln(w, "(needs followupd and another system)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "followupd vs")
	for _, c := range columns {
		if c.ratio != "" {
			fmt.Fprintf(tw, "\t%s", c.ratio)
		}
	}
	fmt.Fprintln(tw)
	for i, s := range sums {
		if i == base {
			continue
		}
		fmt.Fprint(tw, s.system)
		for j, c := range columns {
			if c.ratio != "" {
				a, b := sums[base].spreads[j], s.spreads[j]
				r := math.NaN()
				if a.N > 0 && b.N > 0 {
					r = stats.Ratio(a.Median, b.Median)
				}
				fmt.Fprintf(tw, "\t%s", ratioCell(r))
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func printLegend(w io.Writer, o *options, sums []summary) {
	fmt.Fprintf(w, "CPU and memory of each row count:\n")
	for _, s := range sums {
		fmt.Fprintf(w, "  %-11s %s\n", s.system, systems[s.system].counts)
	}
	for _, s := range sums {
		if s.client.N > 0 {
			fmt.Fprintf(w, "  not counted: the HTTP load client of %s used %s µs per create (median)\n", s.system, number(s.client.Median))
		}
	}
	fmt.Fprintf(w, "  never counted: the null thread API, which runs in the comparison's own process\n")
	fmt.Fprintf(w, `creates/s      the measured creates (after %d warm-up creates due in 23 h) over the wall time from the first sent to the last acknowledged
create p99     per create, as the creator saw it: the HTTP request to followupd or the front, or the Enqueue / Insert call
lateness       first arrival of each followup at the null thread API minus its due time (the whole second after %s from the creates' start)
CPU/create     user + system CPU time (/proc/PID/stat; a tree also counts its reaped children) over the creates, ÷ creates accepted
CPU/delivery   the same from the due time until the last first arrival, ÷ followups delivered
memory         peak RSS (VmHWM) of followupd, redis-server, the driver and the front, each new for the round; for PostgreSQL, which serves every round and whose processes share memory, the largest summed PSS (/proc/PID/smaps_rollup) of its processes, sampled every second from the end of the warm-up to the end of the round
durability     followupd: bbolt fdatasync before every 201; Redis: appendonly yes, appendfsync always (fsync before replying), save ''; PostgreSQL: defaults (fsync on, synchronous_commit on)
queues         asynq: Concurrency %d, DelayedTaskCheckInterval %s, other settings default; River: MaxWorkers %d, pgx pool of %d connections, other settings default (FetchPollInterval 1 s); followupd: FOLLOWUPS_WORKERS %d
`, o.warmup, o.lead, o.workers, o.asynqDelayed, o.workers, riverPoolConns(o.concurrency), o.workers)
}

func printRounds(w io.Writer, results []*roundResult) {
	figureTable(w, []string{"round", "system"}, []string{"duplicates / missing", "notes"}, len(results),
		func(r int) []string { return []string{fmt.Sprint(results[r].round), results[r].system} },
		func(r, c int) string { return number(columns[c].value(results[r])) },
		func(r int) []string {
			res := results[r]
			notes := append(slices.Clone(res.notes), prefixed("FAILED: ", res.failures)...)
			return []string{fmt.Sprintf("%d / %d", res.duplicates, res.missing), strings.Join(notes, "; ")}
		})
}

func printMachine(w io.Writer, o *options, env environment) {
	m := env.machine
	rows := [][2]string{
		{"nproc", fmt.Sprint(m.CPUs)},
		{"CPU", m.Model},
		{"load average", env.loadStart + " at the start, " + env.loadEnd + " at the end (1, 5, 15 min)"},
		{"kernel", m.Kernel},
		{"Go", env.goVersion + " (the comparison; followupd built by the same go)"},
		{"Redis", env.redis},
		{"PostgreSQL", env.postgres},
		{"libraries", env.libraries},
		{"command", o.commandLine},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%-13s %s\n", r[0], r[1])
	}
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// printer writes numbers with thousands separators.
var printer = message.NewPrinter(language.English)

// number writes v with at most two decimals, fewer as it grows, and "–"
// for a figure not measured.
func number(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case a >= 100:
		return printer.Sprintf("%.0f", v)
	case a >= 10:
		return printer.Sprintf("%.1f", v)
	default:
		return printer.Sprintf("%.2f", v)
	}
}

// spreadCell writes a spread as "median (min–max)".
func spreadCell(s stats.Spread) string {
	switch {
	case s.N == 0:
		return "–"
	case s.N == 1 || s.Min == s.Max:
		return number(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", number(s.Median), number(s.Min), number(s.Max))
}

// ratioCell writes a ratio as "0.52×".
func ratioCell(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}
