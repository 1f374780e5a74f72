package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// followup is what asynq and River keep of one followup: the fields of the
// create, and an id the comparison gives it.
type followup struct {
	ID       string          `json:"id"`
	ThreadID string          `json:"thread_id"`
	Prompt   string          `json:"prompt"`
	Reason   string          `json:"reason,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	RunAt    time.Time       `json:"run_at"`
}

// Kind is River's name for the job.
func (followup) Kind() string { return "followup" }

// workloadFollowup is followup i of a round: one of 1,000 threads, the
// prompt, reason and metadata the load command sends too.
func workloadFollowup(token string, i int, runAt time.Time) followup {
	return followup{
		ThreadID: "cmp-" + token + "-t" + strconv.Itoa(i%1000),
		Prompt:   "Check whether the nightly build finished and report back with the failing tests, if any.",
		Reason:   "waiting on CI",
		Metadata: json.RawMessage(`{"channel":"compare","seq":` + strconv.Itoa(i) + `}`),
		RunAt:    runAt,
	}
}

// createBody is the JSON of a create, as POST /followups takes it:
// followupd's API, and the asynq front's.
func (f followup) createBody() []byte {
	b, _ := json.Marshal(struct {
		ThreadID string          `json:"thread_id"`
		Prompt   string          `json:"prompt"`
		Reason   string          `json:"reason,omitempty"`
		Metadata json.RawMessage `json:"metadata,omitempty"`
		RunAt    string          `json:"run_at"`
	}{f.ThreadID, f.Prompt, f.Reason, f.Metadata, f.RunAt.UTC().Format(time.RFC3339Nano)})
	return b
}

// threadAPI is the client asynq's handler and River's worker deliver with:
// one POST per attempt, shaped like followupd's (the same path, headers
// and body fields), over kept-alive connections as followupd's.
type threadAPI struct {
	base string
	http *http.Client
}

func newThreadAPI(base string, conns int) *threadAPI {
	return &threadAPI{base: base, http: keepAliveClient(conns, 10*time.Second)}
}

// keepAliveClient is an HTTP client that keeps up to conns connections
// open for reuse.
func keepAliveClient(conns int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: timeout}
}

// turn is the synthetic user turn, as followupd sends it.
type turn struct {
	Role     string          `json:"role"`
	Synth    bool            `json:"synthetic"`
	Source   string          `json:"source"`
	Content  string          `json:"content"`
	Followup messageInfo     `json:"followup"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

type messageInfo struct {
	ID           string    `json:"id"`
	ScheduledFor time.Time `json:"scheduled_for"`
	Reason       string    `json:"reason,omitempty"`
	Attempt      int       `json:"attempt"`
}

// deliver posts f's turn; any answer but a 2xx is an error, which the
// queue retries.
func (t *threadAPI) deliver(ctx context.Context, f followup, attempt int) error {
	body, err := json.Marshal(turn{
		Role: "user", Synth: true, Source: "followup", Content: f.Prompt,
		Followup: messageInfo{ID: f.ID, ScheduledFor: f.RunAt, Reason: f.Reason, Attempt: attempt},
		Metadata: f.Metadata,
	})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/threads/"+url.PathEscape(f.ThreadID)+"/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", f.ID)
	req.Header.Set(followupIDHeader, f.ID)
	req.Header.Set("X-Followup-Attempt", strconv.Itoa(attempt))
	res, err := t.http.Do(req)
	if err != nil {
		return fmt.Errorf("deliver %s: %w", f.ID, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("deliver %s: thread API answered %s", f.ID, res.Status)
	}
	return nil
}

// followupIDHeader names the followup in a delivery, in followupd's
// requests as in the comparison's.
const followupIDHeader = "X-Followup-Id"
