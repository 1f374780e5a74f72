package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/followups/followups/internal/jsonw"
	"github.com/followups/followups/shared/followup"
)

// The Followups headers of a thread request, beside Idempotency-Key (the
// followup id, the same on every attempt) and Authorization.
const (
	FollowupIDHeader = "X-Followup-Id"
	AttemptHeader    = "X-Followup-Attempt"
	SignatureHeader  = "X-Followup-Signature"
)

// Message is the body a thread receives: one synthetic user turn.
type Message struct {
	Role      string          `json:"role"`      // always "user"
	Synthetic bool            `json:"synthetic"` // always true
	Source    string          `json:"source"`    // always "followup"
	Content   string          `json:"content"`   // the followup's prompt
	Followup  MessageFollowup `json:"followup"`
	Metadata  json.RawMessage `json:"metadata,omitempty"` // the followup's metadata, passed through
}

// MessageFollowup tells the thread which followup a Message comes from.
type MessageFollowup struct {
	ID                    string    `json:"id"`
	ScheduledAt           time.Time `json:"scheduled_at"`  // when it was created
	ScheduledFor          time.Time `json:"scheduled_for"` // its run_at
	DelaySecondsRequested *int64    `json:"delay_seconds_requested,omitempty"`
	Reason                string    `json:"reason,omitempty"`
	OriginatingRunID      string    `json:"originating_run_id,omitempty"`
	Attempt               int       `json:"attempt"`
}

// messageFor is the Message that attempt n of f sends.
func messageFor(f *followup.Followup, attempt int) Message {
	m := Message{
		Role:      "user",
		Synthetic: true,
		Source:    "followup",
		Content:   f.Prompt,
		Followup: MessageFollowup{
			ID:                    f.ID,
			ScheduledAt:           f.CreatedAt.UTC(),
			ScheduledFor:          f.RunAt.UTC(),
			DelaySecondsRequested: f.DelaySecondsRequested,
			Reason:                f.Reason,
			OriginatingRunID:      f.OriginatingRunID,
			Attempt:               attempt,
		},
	}
	if len(f.Metadata) > 0 && string(f.Metadata) != "null" {
		m.Metadata = f.Metadata
	}
	return m
}

// newRequest builds the request of attempt n of f, signed when a secret is
// configured. It fails only for a followup that cannot be sent at all.
func (c *Client) newRequest(ctx context.Context, f *followup.Followup, attempt int) (*http.Request, error) {
	if err := checkSendable(f); err != nil {
		return nil, err
	}
	m := messageFor(f, attempt)
	if len(m.Metadata) > 0 {
		// Stored metadata is compact JSON; what is not is refused here,
		// not sent, and what is, is written as encoding/json would.
		var buf bytes.Buffer
		if err := json.Compact(&buf, m.Metadata); err != nil {
			return nil, fmt.Errorf("encode message of followup %s: metadata: %w", f.ID, err)
		}
		m.Metadata = buf.Bytes()
	}
	body := encodeMessage(m)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.messagesURL(f.ThreadID).String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request of followup %s: %w", f.ID, err)
	}
	// One attempt is one request. net/http resends a request whose body it
	// can rebuild and that carries an Idempotency-Key when a reused
	// connection drops; that second request would be invisible to the
	// attempt count and the runs. Without GetBody it cannot, and the drop
	// is a retryable error like any other.
	req.GetBody = nil
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	h.Set("Idempotency-Key", f.ID)
	h.Set(FollowupIDHeader, f.ID)
	h.Set(AttemptHeader, strconv.Itoa(attempt))
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	if len(c.secret) > 0 {
		h.Set(SignatureHeader, Sign(c.secret, c.clock.Now(), body))
	}
	return req, nil
}

// messagesURL is {base}/threads/{url.PathEscape(threadID)}/messages. Setting
// RawPath beside Path keeps the escaping to the wire: a "/" in a thread id
// travels as %2F, not as a path separator.
func (c *Client) messagesURL(threadID string) *url.URL {
	u := c.base
	u.Path = c.basePath + "/threads/" + threadID + "/messages"
	u.RawPath = c.baseRawPath + "/threads/" + url.PathEscape(threadID) + "/messages"
	return &u
}

// encodeMessage writes m as compact JSON without HTML escaping, so a prompt
// reads on the wire as it was written: what encoding/json writes for
// Message with SetEscapeHTML(false), without reflection (a test holds it
// to that).
func encodeMessage(m Message) []byte {
	b := make([]byte, 0, 256+len(m.Content)+len(m.Metadata))
	b = append(b, `{"role":`...)
	b = jsonw.String(b, m.Role, false)
	b = append(b, `,"synthetic":`...)
	b = strconv.AppendBool(b, m.Synthetic)
	b = append(b, `,"source":`...)
	b = jsonw.String(b, m.Source, false)
	b = append(b, `,"content":`...)
	b = jsonw.String(b, m.Content, false)
	fu := &m.Followup
	b = append(b, `,"followup":{"id":`...)
	b = jsonw.String(b, fu.ID, false)
	b = append(b, `,"scheduled_at":`...)
	b = jsonw.Time(b, fu.ScheduledAt)
	b = append(b, `,"scheduled_for":`...)
	b = jsonw.Time(b, fu.ScheduledFor)
	if fu.DelaySecondsRequested != nil {
		b = append(b, `,"delay_seconds_requested":`...)
		b = jsonw.Int(b, *fu.DelaySecondsRequested)
	}
	if fu.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonw.String(b, fu.Reason, false)
	}
	if fu.OriginatingRunID != "" {
		b = append(b, `,"originating_run_id":`...)
		b = jsonw.String(b, fu.OriginatingRunID, false)
	}
	b = append(b, `,"attempt":`...)
	b = jsonw.Int(b, int64(fu.Attempt))
	b = append(b, '}')
	if len(m.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = jsonw.Raw(b, m.Metadata, false)
	}
	return append(b, '}')
}

// checkSendable rejects a followup that no thread request can carry.
func checkSendable(f *followup.Followup) error {
	switch {
	case f == nil:
		return errors.New("no followup to send")
	case f.ID == "":
		return errors.New("followup has no id")
	case !validHeaderValue(f.ID):
		return fmt.Errorf("followup id %q cannot be sent in a header", f.ID)
	case f.ThreadID == "":
		return fmt.Errorf("followup %s has no thread id", f.ID)
	}
	return nil
}

// validHeaderValue reports whether v has no control character but tab, so
// net/http will send it.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}
