package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// The driver is a child the comparison starts for each system and round:
// it makes the creates from -concurrency goroutines, and for asynq and
// River it also is the process that works the queue, so that its CPU and
// memory are the system's alone (the null thread API stays in the
// comparison's own process). It talks to the comparison over its standard
// input (one goMessage, then end of input when the round is over) and
// file descriptor 3 (driverEvents).
const roleDriver = "driver"

// goMessage starts the measured creates.
type goMessage struct {
	Due time.Time `json:"due"` // the run_at of every measured create
}

// driverEvent is a line the driver writes: "ready" once it is set up and
// warmed up, "created" with the outcome of the measured creates.
type driverEvent struct {
	Event   string        `json:"event"`
	Created *createResult `json:"created,omitempty"`
}

// createResult is the outcome of the measured creates.
type createResult struct {
	Accepted  int               `json:"accepted"`
	Failures  map[string]int    `json:"failures,omitempty"` // kind → count
	Examples  map[string]string `json:"examples,omitempty"` // kind → first error
	Seconds   float64           `json:"seconds"`            // wall time of all of them
	LatencyUS []int64           `json:"latency_us"`         // per accepted create
	IDs       []string          `json:"ids"`                // of the accepted creates
}

// failed counts the creates that were not accepted.
func (r *createResult) failed() int {
	n := 0
	for _, v := range r.Failures {
		n += v
	}
	return n
}

// driverOptions are the driver's settings, which the comparison passes
// as one JSON argument.
type driverOptions struct {
	Via    string        `json:"via"`   // "http", "asynq" or "river"
	URL    string        `json:"url"`   // http: the API's base URL
	Redis  string        `json:"redis"` // asynq: Redis's address
	DSN    string        `json:"dsn"`   // river: the database
	N      int           `json:"n"`
	Warmup int           `json:"warmup"`
	Token  string        `json:"token"` // makes the round's thread ids its own
	Queue  queueSettings `json:"queue"`
}

// createFunc makes one create and returns the followup's id.
type createFunc func(ctx context.Context, f followup) (string, error)

// runDriver is the driver role's main.
func runDriver(ctx context.Context, args []string) int {
	var o driverOptions
	if err := roleSettings(args, &o); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", roleDriver, err)
		return exitUsage
	}
	events := os.NewFile(3, "events")
	if err := drive(ctx, &o, os.Stdin, events); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", roleDriver, err)
		return exitFailed
	}
	return exitOK
}

func drive(ctx context.Context, o *driverOptions, control io.Reader, events io.Writer) error {
	create, closeSystem, err := o.system(ctx)
	if err != nil {
		return err
	}
	defer closeSystem()
	enc := json.NewEncoder(events)

	// Warm-up creates open the connections and warm the processes; they
	// are due in 23 hours, long after the round.
	if o.Warmup > 0 {
		far := time.Now().Add(23 * time.Hour).Truncate(time.Second)
		w := createMany(ctx, o.Warmup, o.Queue.Creators, o.Token+"w", far, create)
		if w.Accepted != o.Warmup {
			return fmt.Errorf("warm-up: %d of %d creates failed: %v", w.failed(), o.Warmup, w.Examples)
		}
	}
	if err := enc.Encode(driverEvent{Event: "ready"}); err != nil {
		return err
	}
	in := bufio.NewReader(control)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read the go message: %w", err)
	}
	var msg goMessage
	if err := json.Unmarshal(line, &msg); err != nil {
		return fmt.Errorf("go message %q: %w", line, err)
	}
	res := createMany(ctx, o.N, o.Queue.Creators, o.Token, msg.Due, create)
	if err := enc.Encode(driverEvent{Event: "created", Created: res}); err != nil {
		return err
	}
	// Keep working the queue until the comparison is done with the round.
	_, _ = io.Copy(io.Discard, in)
	return nil
}

// system sets up the creates of o.Via: HTTP requests, or in-process
// calls to a queue whose server then runs in this process too.
func (o *driverOptions) system(ctx context.Context) (createFunc, func(), error) {
	var (
		q   queue
		err error
	)
	switch o.Via {
	case "http":
		c := newCreateClient(o.URL, o.Queue.Creators)
		return c.create, c.close, nil
	case "asynq":
		q, err = startAsynq(o.Redis, o.Queue)
	case "river":
		q, err = startRiver(ctx, o.DSN, o.Queue)
	default:
		return nil, nil, fmt.Errorf("via %q: want http, asynq or river", o.Via)
	}
	if err != nil {
		return nil, nil, err
	}
	return func(ctx context.Context, f followup) (string, error) {
		f.ID = uuid.NewString()
		return f.ID, q.schedule(ctx, f)
	}, q.close, nil
}

// createMany makes n creates due at runAt from conc goroutines.
func createMany(ctx context.Context, n, conc int, token string, runAt time.Time, create createFunc) *createResult {
	res := &createResult{Failures: map[string]int{}, Examples: map[string]string{}}
	lat := make([]int64, n)
	ids := make([]string, n)
	var (
		next atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range min(conc, n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				f := workloadFollowup(token, i, runAt)
				t := time.Now()
				id, err := create(ctx, f)
				if err != nil {
					kind := failureKind(err)
					mu.Lock()
					res.Failures[kind]++
					if _, ok := res.Examples[kind]; !ok {
						res.Examples[kind] = err.Error()
					}
					mu.Unlock()
					continue
				}
				lat[i] = max(time.Since(t).Microseconds(), 1)
				ids[i] = id
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	for i, id := range ids {
		if id != "" {
			res.IDs = append(res.IDs, id)
			res.LatencyUS = append(res.LatencyUS, lat[i])
		}
	}
	res.Accepted = len(res.IDs)
	if missed := n - res.Accepted - res.failed(); missed > 0 {
		res.Failures["not sent: interrupted"] += missed
	}
	return res
}

// failureKind groups failed creates for the report.
func failureKind(err error) string {
	var status *statusError
	switch {
	case errors.As(err, &status):
		return fmt.Sprintf("HTTP %d", status.code)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "interrupted"
	default:
		return "error"
	}
}

// statusError is an answer other than 201 to a create.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %.200s", e.code, e.body) }

// createClient makes creates over HTTP, on one kept-alive connection per
// creator.
type createClient struct {
	url  string
	http *http.Client
}

func newCreateClient(base string, conns int) *createClient {
	return &createClient{url: base + "/followups", http: keepAliveClient(conns, 30*time.Second)}
}

func (c *createClient) create(ctx context.Context, f followup) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(f.createBody()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusCreated {
		return "", &statusError{code: res.StatusCode, body: string(body)}
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		return "", fmt.Errorf("201 without an id: %.200s", body)
	}
	return created.ID, nil
}

func (c *createClient) close() { c.http.CloseIdleConnections() }
