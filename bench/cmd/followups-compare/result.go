package main

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/followups/followups/bench/internal/stats"
)

// roundResult is what one system's round measured.
type roundResult struct {
	system string
	round  int

	accepted        int
	createsPerSec   float64
	createP99       time.Duration
	cpuPerCreate    float64 // µs of the system's processes; NaN when not read
	clientPerCreate float64 // µs of the HTTP load client (not counted); NaN for in-process creates

	delivered      int
	duplicates     int
	missing        int
	lateP50        time.Duration
	lateP99        time.Duration
	lateMax        time.Duration
	cpuPerDelivery float64 // µs; NaN when not read
	memory         uint64  // peak summed PSS, bytes

	failures []string // correctness failures: the command exits 1
	notes    []string // what makes a figure doubtful
}

func (r *roundResult) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *roundResult) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// perOp is CPU time per operation in µs, NaN when it was not read.
func perOp(cpu time.Duration, ops int) float64 {
	if cpu < 0 || ops == 0 {
		return math.NaN()
	}
	return float64(cpu.Microseconds()) / float64(ops)
}

// addCreates records the measured creates and the CPU they took.
func (r *roundResult) addCreates(c *createResult, cpu, clientCPU time.Duration, overHTTP bool) {
	r.accepted = c.Accepted
	for kind, n := range c.Failures {
		r.fail("%d creates failed: %s (e.g. %s)", n, kind, c.Examples[kind])
	}
	if c.Seconds > 0 {
		r.createsPerSec = float64(c.Accepted) / c.Seconds
	}
	lat := make([]time.Duration, len(c.LatencyUS))
	for i, us := range c.LatencyUS {
		lat[i] = time.Duration(us) * time.Microsecond
	}
	slices.Sort(lat)
	r.createP99 = stats.Percentile(lat, 0.99)
	r.cpuPerCreate = perOp(cpu, c.Accepted)
	r.clientPerCreate = math.NaN()
	if overHTTP {
		r.clientPerCreate = perOp(clientCPU, c.Accepted)
	}
}

// addDeliveries records what reached the null thread API and the CPU the
// deliveries took.
func (r *roundResult) addDeliveries(d deliveries, cpu time.Duration) {
	r.delivered, r.duplicates, r.missing = len(d.late), d.duplicates, d.missing
	if n := len(d.late); n > 0 {
		r.lateP50, r.lateP99, r.lateMax = stats.Percentile(d.late, 0.5), stats.Percentile(d.late, 0.99), d.late[n-1]
	}
	r.cpuPerDelivery = perOp(cpu, r.delivered)
	for _, c := range []struct {
		n    int
		what string
	}{
		{d.duplicates, "duplicate deliveries"},
		{d.missing, "followups not delivered"},
		{d.unexpected, "deliveries of followups the round did not create"},
		{d.malformed, "requests to the thread API that name no followup"},
	} {
		if c.n > 0 {
			r.fail("%d %s", c.n, c.what)
		}
	}
}

// log writes the round's figures as one progress line.
func (r *roundResult) log(l *slog.Logger) {
	args := []any{"round", r.round, "system", r.system,
		"creates_per_s", number(r.createsPerSec), "create_p99_ms", number(ms(r.createP99)),
		"lateness_p50_ms", number(ms(r.lateP50)), "lateness_p99_ms", number(ms(r.lateP99)),
		"cpu_per_create_us", number(r.cpuPerCreate), "cpu_per_delivery_us", number(r.cpuPerDelivery),
		"memory_mib", number(mib(r.memory)), "duplicates", r.duplicates, "missing", r.missing}
	for _, n := range r.notes {
		args = append(args, "note", n)
	}
	if len(r.failures) > 0 {
		l.Error("round failed", append(args, "failures", r.failures)...)
		return
	}
	l.Info("round done", args...)
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mib is a byte count in MiB.
func mib(b uint64) float64 { return float64(b) / (1 << 20) }
