package telemetry

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/followups/followups/shared/followup"
)

// EMF is a followup.Observer that writes each event as one CloudWatch
// Embedded Metric Format line. In Lambda, w is stdout: CloudWatch Logs
// extracts the metrics from the function's log group, with no API call
// and nothing to flush before the invocation ends.
//
// Lines are written synchronously, one Write per line under a mutex, so
// concurrent events never interleave and nothing is lost when Lambda
// freezes the process after an invocation. A failed write is dropped: a
// metric must never fail or slow a dispatch.
type EMF struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	clock     followup.Clock
}

var _ followup.Observer = (*EMF)(nil)

// NewEMF returns an EMF observer writing to w in namespace (DefaultNamespace
// when empty; check a configured one with CheckNamespace first), stamping
// lines with clock (the system clock when nil).
func NewEMF(w io.Writer, namespace string, clock followup.Clock) *EMF {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	if clock == nil {
		clock = followup.SystemClock{}
	}
	return &EMF{w: w, namespace: namespace, clock: clock}
}

// Namespace returns the CloudWatch namespace the lines name.
func (e *EMF) Namespace() string { return e.namespace }

// CheckNamespace reports whether ns is a usable CloudWatch namespace: 1 to
// 255 characters among letters, digits, space and . - _ / # :, not in the
// AWS/ namespaces that CloudWatch reserves for its services.
func CheckNamespace(ns string) error {
	if ns == "" || len(ns) > 255 {
		return fmt.Errorf("metrics namespace %q: want 1 to 255 characters", ns)
	}
	for _, r := range ns {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune(" ._-/#:", r)
		if !ok {
			return fmt.Errorf("metrics namespace %q: character %q not allowed (letters, digits, space and . - _ / # : are)", ns, r)
		}
	}
	if strings.HasPrefix(ns, "AWS/") {
		return fmt.Errorf("metrics namespace %q: AWS/ is reserved for AWS services", ns)
	}
	return nil
}

// Dimension sets. An empty set is valid EMF ("A DimensionSet MAY be
// empty") and publishes the metric without dimensions.
var (
	dimsTotal      = [][]string{{}}
	dimsDropReason = [][]string{{}, {DimensionDropReason}}
	dimsOutcome    = [][]string{{}, {DimensionOutcome}}
)

// unknown stands in for an empty dimension value, which CloudWatch
// rejects.
const unknown = "unknown"

// Scheduled writes FollowupScheduled.
func (e *EMF) Scheduled(f *followup.Followup) {
	l := e.line(dimsTotal, metricDef{MetricFollowupScheduled, UnitCount})
	l.value(MetricFollowupScheduled, 1)
	l.ids(f)
	e.write(l)
}

// Attempted writes DispatchAttempts and DispatchLatency, in total and per
// Outcome.
func (e *EMF) Attempted(f *followup.Followup, a followup.Attempt, latency time.Duration) {
	l := e.line(dimsOutcome,
		metricDef{MetricDispatchAttempts, UnitCount},
		metricDef{MetricDispatchLatency, UnitMilliseconds})
	l.value(MetricDispatchAttempts, 1)
	l.value(MetricDispatchLatency, millis(latency))
	l.value(DimensionOutcome, orUnknown(string(a.Outcome)))
	l.ids(f)
	if f != nil {
		l.value(KeyAttempt, f.Attempts)
	}
	if a.HTTPStatus != 0 {
		l.value(KeyHTTPStatus, a.HTTPStatus)
	}
	if a.DropReason != "" {
		l.value(KeyDropReason, string(a.DropReason))
	}
	e.write(l)
}

// Redriven writes FollowupRedriven: the sweep sent an overdue followup's
// message again, so something lost it.
func (e *EMF) Redriven(o followup.OverdueFollowup) {
	l := e.line(dimsTotal, metricDef{MetricFollowupRedriven, UnitCount})
	l.value(MetricFollowupRedriven, 1)
	l.value(KeyFollowupID, o.ID)
	l.value(KeyThreadID, o.ThreadID)
	l.value(KeyStatus, string(o.Status))
	e.write(l)
}

// Settled writes FollowupDelivered with FireLateness, FollowupDropped in
// total and per DropReason, or FollowupCancelled. A status that is not
// terminal writes nothing.
func (e *EMF) Settled(f *followup.Followup, lateness time.Duration) {
	if f == nil {
		return
	}
	var l *emfLine
	switch f.Status {
	case followup.StatusDelivered:
		l = e.line(dimsTotal,
			metricDef{MetricFollowupDelivered, UnitCount},
			metricDef{MetricFireLateness, UnitMilliseconds})
		l.value(MetricFollowupDelivered, 1)
		l.value(MetricFireLateness, millis(lateness))
	case followup.StatusFailedDropped:
		l = e.line(dimsDropReason, metricDef{MetricFollowupDropped, UnitCount})
		l.value(MetricFollowupDropped, 1)
		l.value(DimensionDropReason, orUnknown(string(f.DropReason)))
	case followup.StatusCancelled:
		l = e.line(dimsTotal, metricDef{MetricFollowupCancelled, UnitCount})
		l.value(MetricFollowupCancelled, 1)
	default:
		return
	}
	l.ids(f)
	l.value(KeyAttempts, f.Attempts)
	e.write(l)
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// metricDef is an EMF MetricDefinition.
type metricDef struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// directive is an EMF MetricDirective.
type directive struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []metricDef `json:"Metrics"`
}

// metadata is the EMF _aws member.
type metadata struct {
	Timestamp         int64       `json:"Timestamp"`
	CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
}

// emfLine is one EMF document: its metadata and its top-level members in
// the order they were added.
type emfLine struct {
	meta   metadata
	keys   []string
	values []any
}

func (e *EMF) line(dims [][]string, metrics ...metricDef) *emfLine {
	return &emfLine{meta: metadata{
		Timestamp: e.clock.Now().UnixMilli(),
		CloudWatchMetrics: []directive{{
			Namespace:  e.namespace,
			Dimensions: dims,
			Metrics:    metrics,
		}},
	}}
}

func (l *emfLine) value(key string, v any) {
	l.keys = append(l.keys, key)
	l.values = append(l.values, v)
}

// ids adds the properties that find the followup in Logs Insights. They
// are not dimensions, so they create no metrics.
func (l *emfLine) ids(f *followup.Followup) {
	if f == nil {
		return
	}
	l.value(KeyFollowupID, f.ID)
	l.value(KeyThreadID, f.ThreadID)
}

// LevelEMF is the level every EMF line carries. Lambda's log-level
// filtering (LoggingConfig.ApplicationLogLevel) reads a JSON line's
// "level" and takes a line without one for INFO, so a level set above INFO
// would drop every metric, and the alarms would never fire. FATAL is the
// least verbose level there is: no setting filters it out.
const LevelEMF = "FATAL"

// marshal writes the document as one JSON line, _aws first so a reader
// sees at once what the line is, then the level Lambda filters on.
func (l *emfLine) marshal() ([]byte, error) {
	meta, err := json.Marshal(l.meta)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 256+len(meta))
	buf = append(buf, `{"_aws":`...)
	buf = append(buf, meta...)
	buf = append(buf, `,"level":"`+LevelEMF+`"`...)
	for i, k := range l.keys {
		key, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		val, err := json.Marshal(l.values[i])
		if err != nil {
			return nil, err
		}
		buf = append(buf, ',')
		buf = append(buf, key...)
		buf = append(buf, ':')
		buf = append(buf, val...)
	}
	return append(buf, '}', '\n'), nil
}

func (e *EMF) write(l *emfLine) {
	b, err := l.marshal()
	if err != nil {
		return // only values of the types above are marshalled; cannot happen
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(b)
}

// millis is d in milliseconds, keeping sub-millisecond precision.
func millis(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// The non-metric properties of an EMF line, named as the log fields are, so
// one Logs Insights query reads both.
const (
	KeyFollowupID = "followup_id"
	KeyThreadID   = "thread_id"
	KeyAttempt    = "attempt"  // the number of one dispatch attempt
	KeyAttempts   = "attempts" // attempts made so far
	KeyOutcome    = "outcome"
	KeyDropReason = "drop_reason"
	KeyHTTPStatus = "http_status"
	KeyRunAt      = "run_at"
	KeyStatus     = "status"
)
