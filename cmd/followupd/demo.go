package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/followups/followups/shared/dispatch"
	"github.com/followups/followups/shared/followup"
)

// demoThreads is the tiny thread API of --demo. It prints every turn it is
// given, answers 404 for threads named deleted-*, and 503 to the first
// attempt for threads named flaky-*, so a newcomer sees a delivery, a drop
// and a retry within seconds.
type demoThreads struct {
	URL    *url.URL
	Secret string
	srv    *http.Server
	out    io.Writer
	mu     sync.Mutex
}

func startDemoThreads(out io.Writer) (*demoThreads, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo thread API: %w", err)
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	d := &demoThreads{URL: &url.URL{Scheme: "http", Host: ln.Addr().String()}, Secret: hex.EncodeToString(secret), out: out}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /threads/{thread_id}/messages", d.receive)
	d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.srv.Serve(ln) }()
	return d, nil
}

func (d *demoThreads) Close() { _ = d.srv.Close() }

func (d *demoThreads) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format, args...)
}

func (d *demoThreads) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	if err := dispatch.Verify([]byte(d.Secret), r.Header.Get(dispatch.SignatureHeader), body, time.Now(), 0); err != nil {
		d.printf("  thread API: refused a request with a bad signature: %v\n", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m dispatch.Message
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	thread := r.PathValue("thread_id")
	attempt := r.Header.Get(dispatch.AttemptHeader)
	switch {
	case strings.HasPrefix(thread, "deleted-"):
		d.printf("  thread API: %s is deleted: answered 404 to %s (attempt %s)\n", thread, m.Followup.ID, attempt)
		http.Error(w, `{"error":"thread not found"}`, http.StatusNotFound)
	case strings.HasPrefix(thread, "flaky-") && attempt == "1":
		d.printf("  thread API: %s is flaky: answered 503 to %s (attempt %s)\n", thread, m.Followup.ID, attempt)
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":"try again"}`, http.StatusServiceUnavailable)
	default:
		d.printf("  thread API: %s received a synthetic user turn from %s (attempt %s, signature ok): %q\n",
			thread, m.Followup.ID, attempt, m.Content)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}
}

// demoFollowups are what the demo schedules through its own API.
var demoFollowups = []struct {
	body, note string
	cancel     bool
}{
	{`{"thread_id":"demo-thread","prompt":"Check whether the nightly build finished and report back.","delay_seconds":2,"reason":"waiting on CI","metadata":{"channel":"demo"}}`, "delivered in 2s", false},
	{`{"thread_id":"deleted-thread","prompt":"Ask whether the deploy went well.","delay_seconds":3}`, "its thread is deleted: dropped as thread_not_found", false},
	{`{"thread_id":"flaky-thread","prompt":"Summarise the review comments.","delay_seconds":3}`, "its thread fails once: retried, then delivered", false},
	{`{"thread_id":"demo-thread","prompt":"Remind the user about the meeting.","delay_seconds":5}`, "cancelled before it fires", true},
}

// Run schedules the demo followups through the API, waits for each to
// settle, and prints what happened and how to try it by hand.
func (d *demoThreads) Run(ctx context.Context, base, token string, out io.Writer, log *slog.Logger) {
	c := &demoClient{base: base, token: token}
	d.printf("Followups demo: API on %s, thread API on %s\n\n", base, d.URL)
	var ids []string
	for _, f := range demoFollowups {
		got, err := c.do(ctx, "POST", "/followups", f.body)
		if err != nil {
			d.printf("demo: create failed: %v\n", err)
			return
		}
		id := got["id"].(string)
		ids = append(ids, id)
		d.printf("scheduled %s for thread %s (%s)\n", id, got["thread_id"], f.note)
		if f.cancel {
			if _, err := c.do(ctx, "DELETE", "/followups/"+id, ""); err != nil {
				d.printf("demo: cancel failed: %v\n", err)
				return
			}
			d.printf("cancelled %s\n", id)
		}
	}
	d.printf("\n")
	counts := map[string]int{}
	for _, id := range ids {
		f, err := c.waitSettled(ctx, id)
		if err != nil {
			d.printf("demo: %v\n", err)
			return
		}
		line := fmt.Sprintf("%s: %s after %v attempt(s)", id, f["status"], f["attempts"])
		if r, ok := f["drop_reason"]; ok {
			line += fmt.Sprintf(", drop_reason %s, last_error %q", r, f["last_error"])
		}
		d.printf("%s\n", line)
		counts[f["status"].(string)]++
	}
	auth := ""
	if token != "" {
		auth = ` -H "Authorization: Bearer $FOLLOWUPS_API_TOKEN"`
	}
	d.printf("\ndemo finished: %d delivered, %d failed_dropped, %d cancelled\n\n", counts["delivered"], counts["failed_dropped"], counts["cancelled"])
	d.printf("Try it yourself (Ctrl-C stops followupd):\n")
	d.printf("  curl -s%s -X POST %s/followups -H 'Content-Type: application/json' -d '{\"thread_id\":\"demo-thread\",\"prompt\":\"Hello again\",\"delay_seconds\":5}'\n", auth, base)
	d.printf("  curl -s%s %s/threads/demo-thread/followups\n", auth, base)
	d.printf("  curl -s %s/metrics | grep ^followups_\n", base)
	log.Debug("demo finished")
}

type demoClient struct {
	base, token string
}

func (c *demoClient) do(ctx context.Context, method, path, body string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewBufferString(body))
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("%s %s: %s", method, path, res.Status)
	}
	if res.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %s: %v", method, path, res.Status, out["error"])
	}
	return out, nil
}

func (c *demoClient) waitSettled(ctx context.Context, id string) (map[string]any, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		f, err := c.do(ctx, "GET", "/followups/"+id, "")
		if err != nil {
			return nil, err
		}
		if followup.Status(f["status"].(string)).Terminal() {
			return f, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("%s did not settle within a minute", id)
}
