package harness

import (
	"bufio"
	"encoding/json"
	"io"
	"maps"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Output is what a function wrote during one invocation. The emulator
// gives the function its own standard output for both stdout and stderr
// and frames each invocation with START, END and REPORT lines carrying the
// request id, so the lines between belong to that invocation alone (the
// emulator runs one invocation at a time).
type Output struct {
	// Lines are the raw lines, in order.
	Lines []string
	// Logs are the JSON log lines (slog's JSON handler), decoded.
	Logs []map[string]any
	// Metrics are the CloudWatch Embedded Metric Format documents.
	Metrics []EMF
	// AWSCalls sums the "aws calls" log lines: calls per "Service.Operation".
	AWSCalls map[string]int
}

// LogsWith returns the log lines whose msg is msg.
func (o *Output) LogsWith(msg string) []map[string]any {
	var out []map[string]any
	for _, l := range o.Logs {
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

func (o *Output) add(line string) {
	o.Lines = append(o.Lines, line)
	if !strings.HasPrefix(line, "{") {
		return
	}
	var doc map[string]any
	if json.Unmarshal([]byte(line), &doc) != nil {
		return
	}
	if _, ok := doc["_aws"]; ok {
		o.Metrics = append(o.Metrics, EMF(doc))
		return
	}
	o.Logs = append(o.Logs, doc)
	if doc["msg"] == "aws calls" {
		calls, _ := doc["aws_calls"].(map[string]any)
		if o.AWSCalls == nil {
			o.AWSCalls = map[string]int{}
		}
		for k, v := range calls {
			n, _ := v.(float64)
			o.AWSCalls[k] += int(n)
		}
	}
}

func (o *Output) clone() Output {
	c := *o
	c.Lines = append([]string(nil), o.Lines...)
	c.Logs = append([]map[string]any(nil), o.Logs...)
	c.Metrics = append([]EMF(nil), o.Metrics...)
	c.AWSCalls = maps.Clone(o.AWSCalls)
	return c
}

// The emulator's framing lines.
var (
	startLine  = regexp.MustCompile(`^START RequestId: (\S+)`)
	endLine    = regexp.MustCompile(`^END RequestId: (\S+)`)
	reportLine = regexp.MustCompile(`^REPORT RequestId: (\S+)`)
)

// outputLog splits the emulator's standard output into invocations.
type outputLog struct {
	mu       sync.Mutex
	cond     *sync.Cond
	current  string
	byID     map[string]*Output
	reported map[string]bool
	outside  []string // lines outside any invocation (bootstrap start-up)
	all      []string
	closed   bool
}

func newOutputLog() *outputLog {
	l := &outputLog{byID: map[string]*Output{}, reported: map[string]bool{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// read consumes r until EOF.
func (l *outputLog) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		l.line(sc.Text())
	}
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
}

func (l *outputLog) line(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, s)
	switch {
	case startLine.MatchString(s):
		l.current = startLine.FindStringSubmatch(s)[1]
		if l.byID[l.current] == nil {
			l.byID[l.current] = &Output{}
		}
	case endLine.MatchString(s):
		l.current = ""
	case reportLine.MatchString(s):
		l.reported[reportLine.FindStringSubmatch(s)[1]] = true
		l.cond.Broadcast()
	case l.current != "":
		l.byID[l.current].add(s)
	default:
		l.outside = append(l.outside, s)
	}
}

// wait returns the output of invocation id once its REPORT line was read,
// or what there is after timeout (the emulator prints no REPORT when the
// runtime crashed).
func (l *outputLog) wait(id string, timeout time.Duration) Output {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer timer.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.reported[id] && !l.closed && time.Now().Before(deadline) {
		l.cond.Wait()
	}
	if o := l.byID[id]; o != nil {
		return o.clone()
	}
	return Output{}
}

// tail returns the last n lines of the whole output.
func (l *outputLog) tail(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all[max(0, len(l.all)-n):]...)
}

// EMF is one CloudWatch Embedded Metric Format document.
type EMF map[string]any

// Metrics returns the metric names the document declares.
func (e EMF) Metrics() []string {
	aws, _ := e["_aws"].(map[string]any)
	dirs, _ := aws["CloudWatchMetrics"].([]any)
	var names []string
	for _, d := range dirs {
		dm, _ := d.(map[string]any)
		defs, _ := dm["Metrics"].([]any)
		for _, def := range defs {
			m, _ := def.(map[string]any)
			if n, ok := m["Name"].(string); ok {
				names = append(names, n)
			}
		}
	}
	return names
}

// Namespace returns the document's first namespace.
func (e EMF) Namespace() string {
	aws, _ := e["_aws"].(map[string]any)
	dirs, _ := aws["CloudWatchMetrics"].([]any)
	for _, d := range dirs {
		dm, _ := d.(map[string]any)
		if ns, ok := dm["Namespace"].(string); ok {
			return ns
		}
	}
	return ""
}

// Value returns the value of metric or property name, as a number when it
// is one.
func (e EMF) Value(name string) (float64, bool) {
	v, ok := e[name].(float64)
	return v, ok
}

// String returns property name as a string.
func (e EMF) String(name string) string {
	s, _ := e[name].(string)
	return s
}
