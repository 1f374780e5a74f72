package inmem

import (
	"bytes"
	"context"
	"maps"
	"sync"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Queues records what the consumers send; tests deliver it by hand.
type Queues struct {
	mu   sync.Mutex
	sent []Sent
	// Fail, when set, makes every send return it.
	Fail error
}

// Sent is one message sent.
type Sent struct {
	Queue      followup.QueueSide
	Body       []byte
	Attributes map[string]string
	Delay      time.Duration
}

// SendFire implements followup.Queues.
func (q *Queues) SendFire(_ context.Context, body []byte, attrs map[string]string, delay time.Duration) error {
	return q.send(Sent{Queue: followup.FireQueue, Body: body, Attributes: attrs, Delay: delay})
}

// SendDeadLetter implements followup.Queues.
func (q *Queues) SendDeadLetter(_ context.Context, body []byte, attrs map[string]string) error {
	return q.send(Sent{Queue: followup.DeadLetterQueue, Body: body, Attributes: attrs})
}

func (q *Queues) send(m Sent) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.Fail != nil {
		return q.Fail
	}
	m.Body, m.Attributes = bytes.Clone(m.Body), maps.Clone(m.Attributes)
	q.sent = append(q.sent, m)
	return nil
}

// Take returns what was sent since the last Take.
func (q *Queues) Take() []Sent {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.sent
	q.sent = nil
	return out
}

var _ followup.Queues = (*Queues)(nil)
