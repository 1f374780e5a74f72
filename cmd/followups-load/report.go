package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// machine describes where the figures were measured.
type machine struct {
	cpus     int
	model    string
	memTotal int64 // bytes
	kernel   string
}

func readMachine() machine {
	m := machine{cpus: runtime.NumCPU(), model: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "MemTotal:" {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				m.memTotal = n << 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

func (m machine) String() string {
	gib := strconv.FormatFloat(float64(m.memTotal)/(1<<30), 'f', 1, 64)
	return fmt.Sprintf("%d CPUs (nproc), %s, %s GiB memory, %s, load tool built with %s", m.cpus, m.model, gib, m.kernel, runtime.Version())
}

// loadAverage is /proc/loadavg's first three figures: the machine is shared.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// result is what one run of one scenario found: rows to print, figures to
// compare across runs, and correctness failures.
type result struct {
	scenario string
	run      int
	rows     [][2]string
	figures  []figure
	failures []string
	missed   []string
}

// figure is one measured number, for the spread across runs.
type figure struct {
	name string
	unit string
	v    float64
}

func (r *result) row(label, format string, args ...any) {
	r.rows = append(r.rows, [2]string{label, fmt.Sprintf(format, args...)})
}

func (r *result) figure(name, unit string, v float64) {
	r.figures = append(r.figures, figure{name: name, unit: unit, v: v})
}

// fail records a correctness failure, which makes the command exit 1.
func (r *result) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.failures = append(r.failures, msg)
	r.row("FAILED", "%s", msg)
}

// atLeast prints how got compares with a target floor.
func (r *result) atLeast(label string, got, want float64, unit string) {
	if got >= want {
		r.row("target", "%s ≥ %s %s: met (%s)", label, num(want), unit, num(got))
		return
	}
	msg := fmt.Sprintf("%s ≥ %s %s: target missed by %s %s (%.0f%% short; got %s)", label, num(want), unit, num(want-got), unit, 100*(want-got)/want, num(got))
	r.missed = append(r.missed, msg)
	r.row("target", "%s", msg)
}

// atMost prints how got compares with a target ceiling.
func (r *result) atMost(label string, got, want float64, unit string) {
	if got <= want {
		r.row("target", "%s ≤ %s %s: met (%s)", label, num(want), unit, num(got))
		return
	}
	msg := fmt.Sprintf("%s ≤ %s %s: target missed by %s %s (%.0f%% over; got %s)", label, num(want), unit, num(got-want), unit, 100*(got-want)/want, num(got))
	r.missed = append(r.missed, msg)
	r.row("target", "%s", msg)
}

// print writes the result as one block.
func (r *result) print(w io.Writer, head [][2]string) {
	fmt.Fprintf(w, "\n== followups-load: %s (run %d) ==\n", r.scenario, r.run)
	rows := append(append([][2]string{}, head...), r.rows...)
	width := 0
	for _, row := range rows {
		width = max(width, len(row[0]))
	}
	for _, row := range rows {
		fmt.Fprintf(w, "%-*s  %s\n", width, row[0], row[1])
	}
	verdict := "PASS (correct)"
	if len(r.failures) > 0 {
		verdict = fmt.Sprintf("FAIL: %d correctness failure(s)", len(r.failures))
	}
	if len(r.missed) > 0 {
		verdict += fmt.Sprintf("; %d speed target(s) missed", len(r.missed))
	}
	fmt.Fprintf(w, "%-*s  %s\n", width, "result", verdict)
}

// printSpread writes min, median and max of every figure across runs.
func printSpread(w io.Writer, results []*result) {
	type series struct {
		scenario, name, unit string
		vs                   []float64
	}
	var order []string
	all := map[string]*series{}
	for _, r := range results {
		for _, f := range r.figures {
			k := r.scenario + "\x00" + f.name
			s := all[k]
			if s == nil {
				s = &series{scenario: r.scenario, name: f.name, unit: f.unit}
				all[k] = s
				order = append(order, k)
			}
			s.vs = append(s.vs, f.v)
		}
	}
	fmt.Fprintf(w, "\n== followups-load: spread over runs ==\n")
	fmt.Fprintf(w, "%-9s %-28s %5s %12s %12s %12s  %s\n", "scenario", "figure", "runs", "min", "median", "max", "unit")
	for _, k := range order {
		s := all[k]
		vs := slices.Clone(s.vs)
		slices.Sort(vs)
		fmt.Fprintf(w, "%-9s %-28s %5d %12s %12s %12s  %s\n", s.scenario, s.name, len(vs), num(vs[0]), num(median(vs)), num(vs[len(vs)-1]), s.unit)
	}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// percentile is the nearest-rank q-quantile (0 < q ≤ 1) of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// ms writes d in milliseconds.
func ms(d time.Duration) string {
	return num(msf(d)) + " ms"
}

// msf is d in milliseconds, for figures.
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mib writes a byte count in MiB.
func mib(b int64) string {
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}

// num writes v with thousands separators and at most one decimal, fewer
// for large values.
func num(v float64) string {
	neg := v < 0
	v = math.Abs(v)
	var s string
	switch {
	case v >= 100:
		s = strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case v >= 10 || v == math.Trunc(v):
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" && strings.Trim(frac, "0") != "" {
		b.WriteString("." + frac)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
