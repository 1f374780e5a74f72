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

// addDeliveries checks what reached the null thread API against the ids
// created, all due at due, and records lateness and the CPU they took.
func (r *roundResult) addDeliveries(ids []string, due time.Time, got map[string]arrival, malformed int, cpu time.Duration) {
	want := make(map[string]bool, len(ids))
	late := make([]time.Duration, 0, len(ids))
	for _, id := range ids {
		want[id] = true
		a, ok := got[id]
		if !ok {
			r.missing++
			continue
		}
		late = append(late, a.first.Sub(due))
		r.duplicates += a.count - 1
	}
	unexpected := 0
	for id, a := range got {
		if !want[id] {
			unexpected += a.count
		}
	}
	slices.Sort(late)
	r.delivered = len(late)
	if len(late) > 0 {
		r.lateP50, r.lateP99, r.lateMax = stats.Percentile(late, 0.5), stats.Percentile(late, 0.99), late[len(late)-1]
	}
	r.cpuPerDelivery = perOp(cpu, r.delivered)
	if r.duplicates > 0 {
		r.fail("%d duplicate deliveries", r.duplicates)
	}
	if r.missing > 0 {
		r.fail("%d followups not delivered", r.missing)
	}
	if unexpected > 0 {
		r.fail("%d deliveries of followups the round did not create", unexpected)
	}
	if malformed > 0 {
		r.fail("%d requests to the thread API that name no followup", malformed)
	}
}

// log writes the round's figures as one progress line.
func (r *roundResult) log(l *slog.Logger) {
	args := []any{"round", r.round, "system", r.system,
		"creates_per_s", math.Round(r.createsPerSec), "create_p99_ms", ms(r.createP99),
		"lateness_p50_ms", ms(r.lateP50), "lateness_p99_ms", ms(r.lateP99),
		"cpu_per_create_us", math.Round(r.cpuPerCreate), "cpu_per_delivery_us", math.Round(r.cpuPerDelivery),
		"memory_mib", mib(r.memory), "duplicates", r.duplicates, "missing", r.missing}
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
