package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// apiClient talks to followupd's API over keep-alive connections, at most
// one per concurrent client.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(base, token string, conns int) *apiClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &apiClient{base: base, token: token, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// call makes one request and returns the status and the body.
func (c *apiClient) call(ctx context.Context, method, path string, body []byte, idempotencyKey string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	resp, err := io.ReadAll(res.Body)
	return res.StatusCode, resp, err
}

func (c *apiClient) close() { c.http.CloseIdleConnections() }

// createRequest is one create to make: its body and Idempotency-Key ("" for
// none).
type createRequest struct {
	body []byte
	key  string
}

// batch is the outcome of many concurrent creates.
type batch struct {
	requested int
	started   time.Time
	finished  time.Time
	accepted  int
	latency   []time.Duration // of the accepted creates
	ids       []string        // by request index, "" unless accepted (and asked for)
	runAt     []time.Time     // by request index, with ids
	failures  map[string]int  // "HTTP 400 out_of_range", "network: ..." → count
	examples  map[string]string
}

// rate is accepted creates per second of wall time.
func (b *batch) rate() float64 {
	d := b.finished.Sub(b.started).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(b.accepted) / d
}

// failed counts the creates that were not accepted.
func (b *batch) failed() int { return b.requested - b.accepted }

// createMany makes n creates from conc concurrent clients, request i built
// by build(i). With keep it decodes every answer for the id and run_at.
func (c *apiClient) createMany(ctx context.Context, n, conc int, build func(i int) createRequest, keep bool) *batch {
	return c.createWhile(ctx, ctx, n, conc, build, keep)
}

// createWhile is createMany that starts no create once while is done, and
// lets the creates started finish under ctx.
func (c *apiClient) createWhile(ctx, while context.Context, n, conc int, build func(i int) createRequest, keep bool) *batch {
	b := &batch{
		requested: n,
		failures:  map[string]int{},
		examples:  map[string]string{},
	}
	var lat []time.Duration // each worker's, appended at its end
	if keep {
		b.ids = make([]string, n)
		b.runAt = make([]time.Time, n)
	}
	var (
		next     atomic.Int64
		accepted atomic.Int64
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	fail := func(kind, example string) {
		mu.Lock()
		defer mu.Unlock()
		b.failures[kind]++
		if _, ok := b.examples[kind]; !ok {
			b.examples[kind] = example
		}
	}
	b.started = time.Now()
	for range min(conc, n) {
		wg.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || while.Err() != nil {
					return
				}
				r := build(i)
				t := time.Now()
				status, resp, err := c.call(ctx, http.MethodPost, "/followups", r.body, r.key)
				d := time.Since(t)
				switch {
				case err != nil:
					fail("network error", err.Error())
					continue
				case status != http.StatusCreated:
					code, msg := errorOf(resp)
					fail(fmt.Sprintf("HTTP %d %s", status, code), msg)
					continue
				}
				if keep {
					var f struct {
						ID    string    `json:"id"`
						RunAt time.Time `json:"run_at"`
					}
					if err := json.Unmarshal(resp, &f); err != nil || f.ID == "" {
						fail("201 without a followup", string(resp))
						continue
					}
					b.ids[i], b.runAt[i] = f.ID, f.RunAt
				}
				mine = append(mine, d)
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	b.finished = time.Now()
	b.accepted = int(accepted.Load())
	b.latency = lat
	if while.Err() != nil && while == ctx && b.accepted+sum(b.failures) < n {
		b.failures["not sent: "+ctx.Err().Error()] += n - b.accepted - sum(b.failures)
	}
	return b
}

// errorOf reads an API error body.
func errorOf(body []byte) (code, message string) {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Code == "" {
		return "", truncate(string(body), 200)
	}
	return e.Error.Code, e.Error.Message
}

// metric reads one unlabelled gauge from /metrics.
func (c *apiClient) metric(ctx context.Context, name string) (float64, error) {
	status, body, err := c.call(ctx, http.MethodGet, "/metrics", nil, "")
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("/metrics answered %d", status)
	}
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(name+" ")); ok {
			return strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
		}
	}
	return 0, fmt.Errorf("/metrics has no %s", name)
}

// createBody is the JSON of create i: a realistic followup with a prompt,
// a reason and metadata, on one of 1,000 threads. when is either
// `"delay_seconds":N` or `"run_at":"..."`.
func createBody(prefix string, i int, when string) []byte {
	b := make([]byte, 0, 320)
	b = append(b, `{"thread_id":"load-`...)
	b = append(b, prefix...)
	b = append(b, "-t"...)
	b = strconv.AppendInt(b, int64(i%1000), 10)
	b = append(b, `","prompt":"Check whether the nightly build finished and report back with the failing tests, if any.","reason":"waiting on CI","metadata":{"channel":"load","seq":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "},"...)
	b = append(b, when...)
	return append(b, '}')
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
