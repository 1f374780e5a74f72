package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// abuseKinds are the kinds of bad request the abuse scenario sends, each
// to a fresh followupd, in this order.
var abuseKinds = []string{"deep", "huge", "garbage", "trickle", "idle"}

// abuseKind is one kind of bad request: what it is, and one client's loop
// sending it until ctx ends, counting answers by status.
type abuseKind struct {
	what string
	run  func(ctx context.Context, addr string, count func(status string))
}

func (r *runner) kinds() map[string]abuseKind {
	deep := nestedBody(6000)
	garbage := make([]byte, 32<<10)
	_, _ = rand.Read(garbage)
	every := r.o.abusePause
	return map[string]abuseKind{
		"deep": {fmt.Sprintf("a %d-byte create whose metadata nests 6,000 levels deep, one at a time, %s apart", len(deep), every),
			func(ctx context.Context, addr string, count func(string)) {
				postLoop(ctx, addr, r.o.apiToken, deep, every, count)
			}},
		"huge": {fmt.Sprintf("a create that declares a 10 MB body and starts sending it, one at a time, %s apart", every),
			func(ctx context.Context, addr string, count func(string)) {
				rawLoop(ctx, addr, r.o.apiToken, 10<<20, 0, every, count)
			}},
		"garbage": {fmt.Sprintf("32 KiB of random bytes as a JSON create, one at a time, %s apart", every),
			func(ctx context.Context, addr string, count func(string)) {
				postLoop(ctx, addr, r.o.apiToken, garbage, every, count)
			}},
		"trickle": {"a create that declares 60,000 bytes and sends one every 100 ms",
			func(ctx context.Context, addr string, count func(string)) {
				rawLoop(ctx, addr, r.o.apiToken, 60_000, 100*time.Millisecond, 0, count)
			}},
		"idle": {"a connection that sends nothing",
			func(ctx context.Context, addr string, count func(string)) {
				idleLoop(ctx, addr, count)
			}},
	}
}

// abuse sends -abuse-clients concurrent bad requests of each kind to a
// fresh followupd for -abuse-for while 8 clients keep making valid
// creates, and reports followupd's memory and the valid creates' latency.
// Nothing bad may be created.
func (r *runner) abuse(ctx context.Context, res *result) error {
	kinds := r.kinds()
	for _, name := range abuseKinds {
		if err := r.abuseOne(ctx, res, name, kinds[name]); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) abuseOne(ctx context.Context, res *result, name string, kind abuseKind) error {
	d, err := r.daemonFor(ctx, "abuse-"+name)
	if err != nil {
		return err
	}
	defer d.kill()
	u, err := url.Parse(d.base)
	if err != nil {
		return err
	}
	const validClients = 8
	c := newAPIClient(d.base, r.o.apiToken, validClients)
	defer c.close()
	base, _ := readMemory(d.pid())

	window, cancel := context.WithTimeout(ctx, r.o.abuseFor)
	defer cancel()
	var (
		mu       sync.Mutex
		statuses = map[string]int{}
		wg       sync.WaitGroup
	)
	count := func(status string) {
		mu.Lock()
		statuses[status]++
		mu.Unlock()
	}
	for range r.o.abuseClients {
		wg.Go(func() { kind.run(window, u.Host, count) })
	}
	// Valid creates beside them, after the flood has built up.
	select {
	case <-window.Done():
	case <-time.After(r.o.abuseFor / 5):
	}
	token := runToken("abuse", res.run)
	build := r.requests(token+name, farFuture)
	var valid *batch
	var validWG sync.WaitGroup
	validWG.Go(func() { valid = c.createUntil(ctx, window, validClients, build) })
	var peak int64
	for window.Err() == nil {
		if m, err := readMemory(d.pid()); err == nil {
			peak = max(peak, m.rss)
		}
		select {
		case <-window.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	validWG.Wait()
	wg.Wait()
	m, _ := readMemory(d.pid())

	res.row(name, "%s clients at once, each sending %s, for %s", num(float64(r.o.abuseClients)), kind.what, r.o.abuseFor)
	res.row(name+" answers", "%s", formatCounts(statuses))
	res.row(name+" memory", "followupd RSS %s before, peak %s during (VmHWM %s)", mib(base.rss), mib(peak), mib(m.peak))
	res.figure(name+" peak RSS", "MiB", float64(m.peak)/(1<<20))
	res.atMost(name+": followupd peak RSS", float64(m.peak)/(1<<20), 256, "MiB")
	lat := slices.Clone(valid.latency)
	slices.Sort(lat)
	res.row(name+" valid creates", "%s accepted, %d failed, beside the flood", num(float64(valid.accepted)), valid.failed())
	for kind, n := range valid.failures {
		res.row(name+" valid failures", "%d: %s (e.g. %s)", n, kind, truncate(valid.examples[kind], 120))
	}
	if len(lat) > 0 {
		p99 := percentile(lat, 0.99)
		res.row(name+" valid latency", "p50 %s  p99 %s  max %s", ms(percentile(lat, 0.5)), ms(p99), ms(lat[len(lat)-1]))
		res.figure(name+" valid p99", "ms", msf(p99))
		res.atMost(name+": valid create p99", msf(p99), 100, "ms")
	}
	if valid.accepted == 0 {
		res.fail("%s: no valid create succeeded beside the flood", name)
	}
	// Nothing bad was created: the store holds the valid creates only.
	if n, err := c.metric(ctx, "followups_store_followups"); err != nil {
		res.fail("%s: read store count: %v", name, err)
	} else if n != float64(valid.accepted) {
		res.fail("%s: store holds %s followups, %s valid creates were accepted", name, num(n), num(float64(valid.accepted)))
	}
	stopChild(res, d, name+": stop")
	return nil
}

// createUntil makes creates from conc clients until window ends, and lets
// the last ones finish under ctx.
func (c *apiClient) createUntil(ctx, window context.Context, conc int, build func(i int) createRequest) *batch {
	b := c.createWhile(ctx, window, math.MaxInt32, conc, build, false)
	b.requested = b.accepted + sum(b.failures)
	return b
}

// postLoop posts body as a JSON create over and over on one connection,
// pausing between a request's answer and the next.
func postLoop(ctx context.Context, addr, token string, body []byte, between time.Duration, count func(string)) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/followups", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				count("network error")
				_ = pause(ctx, 50*time.Millisecond)
			}
			continue
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		count(strconv.Itoa(res.StatusCode))
		_ = pause(ctx, between)
	}
}

// rawLoop opens a connection, sends a create's headers declaring size
// bytes of body, then the body, a byte per every (as fast as it goes when
// every is zero), and reads the answer; then, after between, again.
func rawLoop(ctx context.Context, addr, token string, size int, every, between time.Duration, count func(string)) {
	chunk := bytes.Repeat([]byte{'{'}, 32<<10)
	for ctx.Err() == nil {
		conn, stop, ok := dial(ctx, addr, count)
		if !ok {
			continue
		}
		auth := ""
		if token != "" {
			auth = "Authorization: Bearer " + token + "\r\n"
		}
		fmt.Fprintf(conn, "POST /followups HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n", addr, auth, size)
		answered := make(chan string, 1)
		go func() {
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				answered <- "closed"
				return
			}
			res.Body.Close()
			answered <- strconv.Itoa(res.StatusCode)
		}()
		sent := 0
	send:
		for sent < size {
			select {
			case status := <-answered:
				count(status)
				break send
			default:
			}
			n := min(len(chunk), size-sent)
			if every > 0 {
				n = 1
				_ = pause(ctx, every)
			}
			if _, err := conn.Write(chunk[:n]); err != nil {
				count(<-answered)
				break
			}
			sent += n
		}
		if sent >= size {
			count(<-answered)
		}
		stop()
		conn.Close()
		_ = pause(ctx, between)
	}
}

// idleLoop holds a connection open that sends nothing, and opens another
// when the server closes it.
func idleLoop(ctx context.Context, addr string, count func(string)) {
	for ctx.Err() == nil {
		conn, stop, ok := dial(ctx, addr, count)
		if !ok {
			continue
		}
		_, _ = conn.Read(make([]byte, 1)) // until the server closes it
		if ctx.Err() == nil {
			count("closed by followupd")
		}
		stop()
		conn.Close()
	}
}

// nestedBody is a create whose metadata nests depth levels deep.
func nestedBody(depth int) []byte {
	var b strings.Builder
	b.WriteString(`{"thread_id":"abuse","prompt":"p","delay_seconds":82800,"metadata":`)
	b.WriteString(strings.Repeat(`{"a":[`, depth/2))
	b.WriteString(`1`)
	b.WriteString(strings.Repeat(`]}`, depth/2))
	b.WriteString(`}`)
	return []byte(b.String())
}

// formatCounts writes counts as "400 ×12, closed ×3", largest first.
func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return m[b] - m[a] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%s", k, num(float64(m[k])))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// dial connects to addr, closing the connection when ctx ends (until
// stop). A failure is counted, and paused after, so that a loop retries
// at a bounded rate.
func dial(ctx context.Context, addr string, count func(string)) (conn net.Conn, stop func() bool, ok bool) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() == nil {
			count("dial error")
			_ = pause(ctx, 50*time.Millisecond)
		}
		return nil, nil, false
	}
	return conn, context.AfterFunc(ctx, func() { conn.Close() }), true
}
