package harness

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// ReportEnv names the variable that asks for a summary file of the
// measurements: a path ending in .json gets JSON, any other markdown.
const ReportEnv = "FOLLOWUPS_E2E_REPORT"

// Report gathers the measurements of one test run. It is safe for
// concurrent use.
type Report struct {
	mu         sync.Mutex
	Binaries   []BinaryRecord    `json:"binaries"`
	ColdStarts []ColdStartRecord `json:"cold_starts"`
	Calls      []CallRecord      `json:"aws_calls"`
	Batches    []BatchRecord     `json:"batches"`
	Lateness   []LatenessRecord  `json:"lateness"`
	// Durations are the invocations' durations by function, in ms.
	Durations map[string][]float64 `json:"durations_ms"`
}

// LatenessRecord is how late one delivery reached the thread: its arrival
// minus run_at.
type LatenessRecord struct {
	Path       string  `json:"path"`
	LatenessMS float64 `json:"lateness_ms"`
}

// BinaryRecord is the size of one bootstrap.
type BinaryRecord struct {
	Function string `json:"function"`
	Target   string `json:"target"`
	Bytes    int64  `json:"bytes"`
}

// ColdStartRecord is one function's cold start under the emulator.
type ColdStartRecord struct {
	Test        string  `json:"test"`
	Function    string  `json:"function"`
	TotalMS     float64 `json:"total_ms"`
	ListeningMS float64 `json:"emulator_listening_ms"`
	InitMS      float64 `json:"bootstrap_init_ms"`
	InvokeMS    float64 `json:"first_invoke_ms"`
}

// CallRecord is the AWS calls one invocation made for a step of a
// followup's life.
type CallRecord struct {
	Test      string         `json:"test"`
	Lifecycle string         `json:"lifecycle"`
	Function  string         `json:"function"`
	Calls     map[string]int `json:"calls"`
	Total     int            `json:"total"`
	Budget    string         `json:"budget,omitempty"`
}

// BatchRecord is how long one fire batch took.
type BatchRecord struct {
	Test      string  `json:"test"`
	Records   int     `json:"records"`
	Hanging   int     `json:"hanging"`
	TimeoutMS float64 `json:"dispatch_timeout_ms"`
	TookMS    float64 `json:"took_ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// AddBinary records a bootstrap's size.
func (r *Report) AddBinary(b Binary, target string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Binaries = append(r.Binaries, BinaryRecord{Function: b.Function, Target: target, Bytes: b.Bytes})
}

// AddColdStart records a function's cold start.
func (r *Report) AddColdStart(test string, c ColdStart) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ColdStarts = append(r.ColdStarts, ColdStartRecord{
		Test: test, Function: c.Function, TotalMS: ms(c.Total), ListeningMS: ms(c.Listening),
		InitMS: ms(c.Init), InvokeMS: ms(c.Invoke),
	})
}

// AddCalls records the calls of one lifecycle step.
func (r *Report) AddCalls(rec CallRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec.Calls = maps.Clone(rec.Calls)
	rec.Total = 0
	for _, n := range rec.Calls {
		rec.Total += n
	}
	r.Calls = append(r.Calls, rec)
}

// AddBatch records a fire batch's duration.
func (r *Report) AddBatch(rec BatchRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Batches = append(r.Batches, rec)
}

// AddDuration records how long one invocation of function fn took.
func (r *Report) AddDuration(fn string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Durations == nil {
		r.Durations = map[string][]float64{}
	}
	r.Durations[fn] = append(r.Durations[fn], ms(d))
}

// AddLateness records one delivery's lateness on path ("direct" or
// "scheduler").
func (r *Report) AddLateness(path string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Lateness = append(r.Lateness, LatenessRecord{Path: path, LatenessMS: ms(d)})
}

// LatenessSummary returns p50, p99, max and min lateness (ms) of path.
func (r *Report) LatenessSummary(path string) (p50, p99, hi, lo float64, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latenessSummary(path)
}

func (r *Report) latenessSummary(path string) (p50, p99, hi, lo float64, n int) {
	var v []float64
	for _, x := range r.Lateness {
		if x.Path == path {
			v = append(v, x.LatenessMS)
		}
	}
	if len(v) == 0 {
		return 0, 0, 0, 0, 0
	}
	slices.Sort(v)
	q := func(p float64) float64 { return v[min(len(v)-1, int(p*float64(len(v))))] }
	return q(0.5), q(0.99), v[len(v)-1], v[0], len(v)
}

// Write writes the report to path, as JSON when it ends in .json and as
// markdown otherwise.
func (r *Report) Write(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b []byte
	if strings.HasSuffix(path, ".json") {
		var err error
		if b, err = json.MarshalIndent(r, "", "  "); err != nil {
			return err
		}
		b = append(b, '\n')
	} else {
		b = []byte(r.markdown())
	}
	return os.WriteFile(path, b, 0o644)
}

// ColdStartSummary returns min, median and max of a function's cold
// starts.
func (r *Report) ColdStartSummary(fn string) (lo, med, hi float64, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.coldStartSummary(fn)
}

func (r *Report) coldStartSummary(fn string) (lo, med, hi float64, n int) {
	var v []float64
	for _, c := range r.ColdStarts {
		if c.Function == fn {
			v = append(v, c.TotalMS)
		}
	}
	if len(v) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(v)
	return v[0], v[len(v)/2], v[len(v)-1], len(v)
}

func (r *Report) markdown() string {
	var b strings.Builder
	b.WriteString("# Followups on AWS, end to end under moto and the Lambda emulator\n\n")
	b.WriteString("## Bootstrap sizes\n\n| function | target | bytes | MiB |\n|---|---|---:|---:|\n")
	for _, x := range r.Binaries {
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f |\n", x.Function, x.Target, x.Bytes, float64(x.Bytes)/(1<<20))
	}
	b.WriteString("\n## Cold start under the emulator (process start to first response)\n\n")
	b.WriteString("| function | runs | min ms | median ms | max ms |\n|---|---:|---:|---:|---:|\n")
	for _, fn := range Functions {
		lo, med, hi, n := r.coldStartSummary(fn)
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.1f |\n", fn, n, lo, med, hi)
	}
	b.WriteString("\n## Invocation durations under the emulator (warm, after the cold start)\n\n| function | invocations | p50 ms | p90 ms | max ms |\n|---|---:|---:|---:|---:|\n")
	for _, fn := range Functions {
		v := slices.Clone(r.Durations[fn])
		slices.Sort(v)
		if len(v) == 0 {
			continue
		}
		q := func(p float64) float64 { return v[min(len(v)-1, int(p*float64(len(v))))] }
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.1f |\n", fn, len(v), q(0.5), q(0.9), v[len(v)-1])
	}
	b.WriteString("\n## AWS calls per lifecycle step\n\n| step | function | calls | total | budget | test |\n|---|---|---|---:|---|---|\n")
	calls := slices.Clone(r.Calls)
	sort.SliceStable(calls, func(i, j int) bool { return calls[i].Lifecycle < calls[j].Lifecycle })
	for _, c := range calls {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s |\n", c.Lifecycle, c.Function, formatCalls(c.Calls), c.Total, c.Budget, c.Test)
	}
	b.WriteString("\n## Delivery lateness (arrival at the thread minus run_at)\n\n| path | deliveries | p50 ms | p99 ms | max ms | min ms |\n|---|---:|---:|---:|---:|---:|\n")
	for _, path := range []string{"direct", "scheduler"} {
		p50, p99, hi, lo, n := r.latenessSummary(path)
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.0f | %.0f |\n", path, n, p50, p99, hi, lo)
	}
	b.WriteString("\n## Fire batches\n\n| records | hanging | dispatch timeout ms | took ms | test |\n|---:|---:|---:|---:|---|\n")
	for _, x := range r.Batches {
		fmt.Fprintf(&b, "| %d | %d | %.0f | %.0f | %s |\n", x.Records, x.Hanging, x.TimeoutMS, x.TookMS, x.Test)
	}
	return b.String()
}

// formatCalls writes calls as "DynamoDB.UpdateItem×2, Scheduler.CreateSchedule×1".
func formatCalls(calls map[string]int) string {
	keys := slices.Sorted(maps.Keys(calls))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, calls[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// FormatCalls is formatCalls for tests' messages.
func FormatCalls(calls map[string]int) string { return formatCalls(calls) }
