package telemetry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/internal/syncbuf"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/telemetry"
)

// validUnits are CloudWatch's MetricDatum units.
var validUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true,
	"Bytes": true, "Kilobytes": true, "Megabytes": true, "Gigabytes": true, "Terabytes": true,
	"Bits": true, "Kilobits": true, "Megabits": true, "Gigabits": true, "Terabits": true,
	"Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true, "Terabytes/Second": true,
	"Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true, "Gigabits/Second": true, "Terabits/Second": true,
	"Count/Second": true, "None": true,
}

// published is one metric an EMF line publishes: a name with one
// dimension set, and the values of those dimensions.
type published struct {
	Name   string
	Unit   string
	Dims   []string
	Values []string
	Value  float64
}

// checkEMF parses one line and checks it against the EMF specification,
// returning the metrics it publishes and the document.
func checkEMF(t *testing.T, line, namespace string, ts time.Time) ([]published, map[string]any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("line is not a JSON object: %v\n%s", err, line)
	}
	if dec.More() {
		t.Fatalf("data after the JSON object: %s", line)
	}
	aws, ok := doc["_aws"].(map[string]any)
	if !ok {
		t.Fatalf("_aws missing or not an object: %s", line)
	}
	tsNum, ok := aws["Timestamp"].(json.Number)
	if !ok {
		t.Fatalf("_aws.Timestamp missing or not a number: %s", line)
	}
	ms, err := tsNum.Int64()
	if err != nil {
		t.Fatalf("_aws.Timestamp %s is not an integer", tsNum)
	}
	if ms != ts.UnixMilli() {
		t.Errorf("_aws.Timestamp = %d, want %d (ms since the epoch)", ms, ts.UnixMilli())
	}
	directives, ok := aws["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		t.Fatalf("_aws.CloudWatchMetrics missing or empty: %s", line)
	}
	var out []published
	for _, d := range directives {
		dir, ok := d.(map[string]any)
		if !ok {
			t.Fatalf("MetricDirective is not an object: %s", line)
		}
		if got, _ := dir["Namespace"].(string); got != namespace {
			t.Errorf("Namespace = %q, want %q", got, namespace)
		}
		sets, ok := dir["Dimensions"].([]any)
		if !ok || len(sets) == 0 {
			t.Fatalf("Dimensions missing, not an array or empty: %s", line)
		}
		var dimSets [][]string
		for _, s := range sets {
			keys, ok := s.([]any)
			if !ok {
				t.Fatalf("DimensionSet is not an array: %s", line)
			}
			if len(keys) > 30 {
				t.Errorf("DimensionSet has %d keys, at most 30 allowed", len(keys))
			}
			set := []string{}
			for _, k := range keys {
				key, ok := k.(string)
				if !ok || key == "" {
					t.Fatalf("dimension key %v is not a non-empty string", k)
				}
				v, ok := doc[key].(string)
				if !ok {
					t.Fatalf("dimension %q is not a top-level string member: %s", key, line)
				}
				if v == "" || len(v) > 1024 {
					t.Errorf("dimension %q value %q: want 1 to 1024 characters", key, v)
				}
				set = append(set, key)
			}
			dimSets = append(dimSets, set)
		}
		metrics, ok := dir["Metrics"].([]any)
		if !ok || len(metrics) == 0 || len(metrics) > 100 {
			t.Fatalf("Metrics missing or not 1 to 100 definitions: %s", line)
		}
		for _, m := range metrics {
			def, ok := m.(map[string]any)
			if !ok {
				t.Fatalf("MetricDefinition is not an object: %s", line)
			}
			name, _ := def["Name"].(string)
			if name == "" {
				t.Fatalf("MetricDefinition without Name: %s", line)
			}
			unit, _ := def["Unit"].(string)
			if !validUnits[unit] {
				t.Errorf("metric %s: Unit %q is not a CloudWatch unit", name, unit)
			}
			num, ok := doc[name].(json.Number)
			if !ok {
				t.Fatalf("metric %s has no numeric top-level value: %s", name, line)
			}
			v, err := num.Float64()
			if err != nil {
				t.Fatalf("metric %s value %s: %v", name, num, err)
			}
			for _, set := range dimSets {
				var vals []string
				for _, k := range set {
					vals = append(vals, doc[k].(string))
				}
				out = append(out, published{Name: name, Unit: unit, Dims: set, Values: vals, Value: v})
			}
		}
	}
	return out, doc
}

// oneLine returns the single line in buf.
func oneLine(t *testing.T, buf *bytes.Buffer) string {
	t.Helper()
	s := buf.String()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Fatalf("want exactly one line, got %q", s)
	}
	return strings.TrimSuffix(s, "\n")
}

// find returns the published metric of name with dimension keys dims.
func find(t *testing.T, ps []published, name string, dims ...string) published {
	t.Helper()
	for _, p := range ps {
		if p.Name == name && slices.Equal(p.Dims, dims) {
			return p
		}
	}
	t.Fatalf("metric %s with dimensions %v not published; got %+v", name, dims, ps)
	return published{}
}

// event is one Observer call and what the EMF line must say about it.
type event struct {
	name  string
	emit  func(followup.Observer)
	check func(t *testing.T, ps []published, doc map[string]any)
}

func events() []event {
	evs := []event{
		{
			name: "scheduled",
			emit: func(o followup.Observer) { o.Scheduled(sample(followup.StatusScheduled)) },
			check: func(t *testing.T, ps []published, doc map[string]any) {
				if p := find(t, ps, telemetry.MetricFollowupScheduled); p.Value != 1 || p.Unit != "Count" {
					t.Errorf("FollowupScheduled = %v %s, want 1 Count", p.Value, p.Unit)
				}
			},
		},
		{
			name: "delivered",
			emit: func(o followup.Observer) {
				o.Settled(sample(followup.StatusDelivered), 1500*time.Millisecond)
			},
			check: func(t *testing.T, ps []published, doc map[string]any) {
				if p := find(t, ps, telemetry.MetricFollowupDelivered); p.Value != 1 || p.Unit != "Count" {
					t.Errorf("FollowupDelivered = %v %s, want 1 Count", p.Value, p.Unit)
				}
				if p := find(t, ps, telemetry.MetricFireLateness); p.Value != 1500 || p.Unit != "Milliseconds" {
					t.Errorf("FireLateness = %v %s, want 1500 Milliseconds", p.Value, p.Unit)
				}
			},
		},
		{
			name: "redriven",
			emit: func(o followup.Observer) {
				o.Redriven(followup.OverdueFollowup{ID: "fu_01", ThreadID: "th_01", Status: followup.StatusScheduled, SweepAt: now})
			},
			check: func(t *testing.T, ps []published, doc map[string]any) {
				if p := find(t, ps, telemetry.MetricFollowupRedriven); p.Value != 1 || p.Unit != "Count" {
					t.Errorf("FollowupRedriven = %v %s, want 1 Count", p.Value, p.Unit)
				}
				if doc["followup_id"] != "fu_01" || doc["status"] != "scheduled" {
					t.Errorf("redriven line properties: %v", doc)
				}
			},
		},
		{
			name: "cancelled",
			emit: func(o followup.Observer) { o.Settled(sample(followup.StatusCancelled), 0) },
			check: func(t *testing.T, ps []published, doc map[string]any) {
				if p := find(t, ps, telemetry.MetricFollowupCancelled); p.Value != 1 || p.Unit != "Count" {
					t.Errorf("FollowupCancelled = %v %s, want 1 Count", p.Value, p.Unit)
				}
			},
		},
	}
	for _, r := range followup.DropReasons {
		evs = append(evs, event{
			name: "dropped " + string(r),
			emit: func(o followup.Observer) { o.Settled(dropped(r), 0) },
			check: func(t *testing.T, ps []published, doc map[string]any) {
				if p := find(t, ps, telemetry.MetricFollowupDropped); p.Value != 1 || p.Unit != "Count" {
					t.Errorf("FollowupDropped total = %v %s, want 1 Count", p.Value, p.Unit)
				}
				p := find(t, ps, telemetry.MetricFollowupDropped, telemetry.DimensionDropReason)
				if p.Value != 1 || !slices.Equal(p.Values, []string{string(r)}) {
					t.Errorf("FollowupDropped by DropReason = %v %v, want 1 [%s]", p.Value, p.Values, r)
				}
			},
		})
	}
	for _, o := range outcomes {
		evs = append(evs, event{
			name: "attempted " + string(o),
			emit: func(obs followup.Observer) {
				obs.Attempted(sample(followup.StatusDispatching), attempt(o), 250*time.Millisecond)
			},
			check: func(t *testing.T, ps []published, doc map[string]any) {
				for _, dims := range [][]string{nil, {telemetry.DimensionOutcome}} {
					a := find(t, ps, telemetry.MetricDispatchAttempts, dims...)
					if a.Value != 1 || a.Unit != "Count" {
						t.Errorf("DispatchAttempts %v = %v %s, want 1 Count", dims, a.Value, a.Unit)
					}
					l := find(t, ps, telemetry.MetricDispatchLatency, dims...)
					if l.Value != 250 || l.Unit != "Milliseconds" {
						t.Errorf("DispatchLatency %v = %v %s, want 250 Milliseconds", dims, l.Value, l.Unit)
					}
					if dims != nil && !slices.Equal(a.Values, []string{string(o)}) {
						t.Errorf("Outcome = %v, want %s", a.Values, o)
					}
				}
			},
		})
	}
	return evs
}

func TestEMFEvents(t *testing.T) {
	for _, ev := range events() {
		t.Run(ev.name, func(t *testing.T) {
			var buf bytes.Buffer
			e := telemetry.NewEMF(&buf, "", fixedClock{now})
			ev.emit(e)
			line := oneLine(t, &buf)
			ps, doc := checkEMF(t, line, telemetry.DefaultNamespace, now)
			ev.check(t, ps, doc)
			if doc[telemetry.KeyFollowupID] != "fu_01" || doc[telemetry.KeyThreadID] != "th_01" {
				t.Errorf("followup_id, thread_id = %v, %v; want fu_01, th_01", doc[telemetry.KeyFollowupID], doc[telemetry.KeyThreadID])
			}
			if strings.Contains(line, secret) {
				t.Errorf("user content leaked into the EMF line: %s", line)
			}
		})
	}
}

// TestEMFEmittedMetrics checks that EmittedMetrics is exactly what the
// observer publishes, so an alarm checked against it can fire.
func TestEMFEmittedMetrics(t *testing.T) {
	key := func(name, unit string, dims []string) string {
		return fmt.Sprintf("%s %s %v", name, unit, dims)
	}
	var want []string
	for _, m := range telemetry.EmittedMetrics() {
		want = append(want, key(m.Name, m.Unit, m.Dimensions))
	}
	seen := map[string]bool{}
	for _, ev := range events() {
		var buf bytes.Buffer
		ev.emit(telemetry.NewEMF(&buf, "", fixedClock{now}))
		ps, _ := checkEMF(t, oneLine(t, &buf), telemetry.DefaultNamespace, now)
		for _, p := range ps {
			dims := p.Dims
			if len(dims) == 0 {
				dims = nil
			}
			seen[key(p.Name, p.Unit, dims)] = true
		}
	}
	var got []string
	for k := range seen {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("published metrics differ from EmittedMetrics:\n got %q\nwant %q", got, want)
	}
}

func TestEMFNamespace(t *testing.T) {
	for _, tc := range []struct{ give, want string }{
		{"", "Followups"},
		{"Followups/Staging", "Followups/Staging"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			var buf bytes.Buffer
			e := telemetry.NewEMF(&buf, tc.give, fixedClock{now})
			if e.Namespace() != tc.want {
				t.Errorf("Namespace() = %q, want %q", e.Namespace(), tc.want)
			}
			e.Settled(dropped(followup.DropRejected), 0)
			checkEMF(t, oneLine(t, &buf), tc.want, now)
		})
	}
}

func TestEMFUnknownDimensionValues(t *testing.T) {
	var buf bytes.Buffer
	e := telemetry.NewEMF(&buf, "", fixedClock{now})
	e.Settled(dropped(""), 0)
	ps, _ := checkEMF(t, oneLine(t, &buf), telemetry.DefaultNamespace, now)
	if p := find(t, ps, telemetry.MetricFollowupDropped, telemetry.DimensionDropReason); p.Values[0] != "unknown" {
		t.Errorf("DropReason of a drop without reason = %q, want unknown", p.Values[0])
	}
	buf.Reset()
	e.Attempted(sample(followup.StatusDispatching), followup.Attempt{}, time.Millisecond)
	ps, _ = checkEMF(t, oneLine(t, &buf), telemetry.DefaultNamespace, now)
	if p := find(t, ps, telemetry.MetricDispatchAttempts, telemetry.DimensionOutcome); p.Values[0] != "unknown" {
		t.Errorf("Outcome of an attempt without outcome = %q, want unknown", p.Values[0])
	}
}

func TestEMFIgnoresNonTerminal(t *testing.T) {
	var buf bytes.Buffer
	e := telemetry.NewEMF(&buf, "", fixedClock{now})
	e.Settled(sample(followup.StatusScheduled), 0)
	e.Settled(sample(followup.StatusDispatching), 0)
	e.Settled(nil, 0)
	if buf.Len() != 0 {
		t.Errorf("non-terminal settles wrote %q", buf.String())
	}
}

func TestEMFNilFollowup(t *testing.T) {
	var buf bytes.Buffer
	e := telemetry.NewEMF(&buf, "", fixedClock{now})
	e.Scheduled(nil)
	checkEMF(t, oneLine(t, &buf), telemetry.DefaultNamespace, now)
}

func TestEMFConcurrentLinesStayWhole(t *testing.T) {
	var out syncbuf.Buffer
	e := telemetry.NewEMF(&out, "", fixedClock{now})
	evs := events()
	const rounds = 20
	var wg sync.WaitGroup
	for range rounds {
		for _, ev := range evs {
			wg.Go(func() { ev.emit(e) })
		}
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != rounds*len(evs) {
		t.Fatalf("got %d lines, want %d", len(lines), rounds*len(evs))
	}
	for _, l := range lines {
		checkEMF(t, l, telemetry.DefaultNamespace, now)
	}
}

func TestCheckNamespace(t *testing.T) {
	for _, tc := range []struct {
		ns string
		ok bool
	}{
		{"Followups", true},
		{"Followups/Prod", true},
		{"my-app_1.2 #a:b", true},
		{"", false},
		{strings.Repeat("a", 256), false},
		{"AWS/Lambda", false},
		{"bad\nname", false},
		{"naïve", false},
	} {
		t.Run(fmt.Sprintf("%.20q", tc.ns), func(t *testing.T) {
			if err := telemetry.CheckNamespace(tc.ns); (err == nil) != tc.ok {
				t.Errorf("CheckNamespace(%q) = %v, want ok=%v", tc.ns, err, tc.ok)
			}
		})
	}
}

// lambdaKeeps says whether Lambda's log-level filtering (JSON log format,
// LoggingConfig.ApplicationLogLevel) sends a JSON line to CloudWatch Logs:
// a line's "level" that is missing or not one of Lambda's levels counts as
// INFO, and a line passes when its level is at least the configured one.
func lambdaKeeps(doc map[string]any, configured string) bool {
	levels := []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	lvl, _ := doc["level"].(string)
	if !slices.Contains(levels, strings.ToUpper(lvl)) {
		lvl = "INFO"
	}
	return slices.Index(levels, strings.ToUpper(lvl)) >= slices.Index(levels, configured)
}

// TestEMFPassesEveryLambdaLogLevel: metrics must not depend on the log
// level, or a function whose application log level was raised to WARN
// would publish no metric and its alarms would never fire.
func TestEMFPassesEveryLambdaLogLevel(t *testing.T) {
	for _, configured := range []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"} {
		for _, ev := range events() {
			var buf bytes.Buffer
			ev.emit(telemetry.NewEMF(&buf, "", fixedClock{now}))
			var doc map[string]any
			if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &doc); err != nil {
				t.Fatalf("%s: %v", ev.name, err)
			}
			if !lambdaKeeps(doc, configured) {
				t.Errorf("%s: an application log level of %s drops the EMF line %s", ev.name, configured, buf.String())
			}
		}
	}
	// The rule itself: an ordinary INFO line is dropped at WARN.
	if lambdaKeeps(map[string]any{"level": "INFO"}, "WARN") || !lambdaKeeps(map[string]any{}, "INFO") {
		t.Fatal("lambdaKeeps does not follow Lambda's rule")
	}
}
