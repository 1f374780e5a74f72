package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Poller plays the SQS event source mapping of one function with
// ReportBatchItemFailures: it receives a batch (up to BatchSize records,
// gathering for up to Window once the first record is in), invokes the
// function with the event Lambda builds, deletes every record the response
// does not name in batchItemFailures, and leaves the others to their
// visibility timeout. When the function fails, or names a record that is
// not in the batch, nothing is deleted. The queue's redrive to its
// dead-letter queue is SQS's (moto's) own, done on receive.
type Poller struct {
	Fn       Invoker
	SQS      *sqs.Client
	QueueURL string
	QueueARN string
	Region   string
	// BatchSize and Window are the mapping's BatchSize and
	// MaximumBatchingWindowInSeconds.
	BatchSize int
	Window    time.Duration
	// Throttle, when set, is asked about each batch received: true leaves
	// it uninvoked, as Lambda does when it throttles the function, so its
	// messages come back after the queue's visibility timeout.
	Throttle func([]SQSRecord) bool

	mu      sync.Mutex
	batches []Batch
	errs    []error
}

// Batch is one invocation of the function with records.
type Batch struct {
	Records    []SQSRecord
	Invocation *Invocation
	// Failures are the record ids the function returned in
	// batchItemFailures.
	Failures []string
	// Deleted are the ids of the records deleted after the invocation.
	Deleted []string
	// WholeBatchFailed is true when nothing was deleted because the
	// function failed or its response was not usable.
	WholeBatchFailed bool
	// Throttled is true when the batch was received and never invoked.
	Throttled bool
}

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	for ctx.Err() == nil {
		msgs, err := p.receive(ctx, 1, p.batchSize())
		if err != nil {
			if ctx.Err() == nil {
				p.fail(err)
				time.Sleep(200 * time.Millisecond)
			}
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		deadline := time.Now().Add(p.Window)
		for p.Window > 0 && len(msgs) < p.batchSize() && time.Now().Before(deadline) && ctx.Err() == nil {
			more, err := p.receive(ctx, 0, p.batchSize()-len(msgs))
			if err != nil {
				break
			}
			msgs = append(msgs, more...)
			if len(more) == 0 {
				time.Sleep(min(50*time.Millisecond, time.Until(deadline)))
			}
		}
		if err := p.deliver(ctx, msgs); err != nil && ctx.Err() == nil {
			p.fail(err)
		}
	}
}

func (p *Poller) batchSize() int {
	if p.BatchSize <= 0 {
		return 10
	}
	return p.BatchSize
}

func (p *Poller) receive(ctx context.Context, waitSeconds int32, n int) ([]sqstypes.Message, error) {
	out, err := p.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(p.QueueURL),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             waitSeconds,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		return nil, fmt.Errorf("poller %s: receive: %w", p.Fn.FunctionName(), err)
	}
	return out.Messages, nil
}

// deliver invokes the function with msgs and deletes what succeeded.
func (p *Poller) deliver(ctx context.Context, msgs []sqstypes.Message) error {
	b := Batch{}
	for _, m := range msgs {
		b.Records = append(b.Records, RecordOf(m, p.QueueARN, p.Region))
	}
	if p.Throttle != nil && p.Throttle(b.Records) {
		b.Throttled = true
		p.record(b)
		return nil
	}
	payload, err := json.Marshal(SQSEvent{Records: b.Records})
	if err != nil {
		return err
	}
	inv, err := p.Fn.Invoke(ctx, payload)
	if err != nil {
		return err
	}
	b.Invocation = inv
	failed, ok := p.failures(inv, b.Records)
	b.Failures = sortedKeys(failed)
	if !ok {
		b.WholeBatchFailed = true
		p.record(b)
		return nil
	}
	var entries []sqstypes.DeleteMessageBatchRequestEntry
	for i, r := range b.Records {
		if !failed[r.MessageID] {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r.ReceiptHandle),
			})
		}
	}
	if len(entries) > 0 {
		out, err := p.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: entries})
		if err != nil {
			p.record(b)
			return fmt.Errorf("poller %s: delete: %w", p.Fn.FunctionName(), err)
		}
		for _, e := range out.Successful {
			i, _ := strconv.Atoi(aws.ToString(e.Id))
			b.Deleted = append(b.Deleted, b.Records[i].MessageID)
		}
		for _, e := range out.Failed {
			p.fail(fmt.Errorf("poller %s: delete record %s: %s %s", p.Fn.FunctionName(), aws.ToString(e.Id), aws.ToString(e.Code), aws.ToString(e.Message)))
		}
	}
	p.record(b)
	return nil
}

// failures reads the function's partial batch response. ok is false when
// the whole batch counts as failed: a function error, a response that is
// not one, or an item identifier that is empty or not in the batch.
func (p *Poller) failures(inv *Invocation, recs []SQSRecord) (map[string]bool, bool) {
	if inv.Err != nil {
		return nil, false
	}
	failed := map[string]bool{}
	if len(inv.Payload) == 0 || string(inv.Payload) == "null" {
		return failed, true
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(inv.Payload, &resp); err != nil {
		return nil, false
	}
	in := map[string]bool{}
	for _, r := range recs {
		in[r.MessageID] = true
	}
	for _, f := range resp.BatchItemFailures {
		if !in[f.ItemIdentifier] {
			return nil, false
		}
		failed[f.ItemIdentifier] = true
	}
	return failed, true
}

func (p *Poller) record(b Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, b)
}

func (p *Poller) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, err)
}

// Batches returns the invocations so far.
func (p *Poller) Batches() []Batch {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Batch(nil), p.batches...)
}

// Errors returns what went wrong in the harness itself.
func (p *Poller) Errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.errs...)
}

// SQSEvent is the event Lambda sends a function for an SQS batch.
type SQSEvent struct {
	Records []SQSRecord `json:"Records"`
}

// SQSRecord is one record of an SQSEvent, with the field names of
// aws-lambda-go's events.SQSMessage. It differs from that type only where
// Lambda writes null (md5OfMessageAttributes of a message without
// attributes), which events.SQSMessage cannot express.
type SQSRecord struct {
	MessageID              string                  `json:"messageId"`
	ReceiptHandle          string                  `json:"receiptHandle"`
	Body                   string                  `json:"body"`
	Attributes             map[string]string       `json:"attributes"`
	MessageAttributes      map[string]SQSAttribute `json:"messageAttributes"`
	Md5OfMessageAttributes *string                 `json:"md5OfMessageAttributes"`
	Md5OfBody              string                  `json:"md5OfBody"`
	EventSource            string                  `json:"eventSource"`
	EventSourceARN         string                  `json:"eventSourceARN"`
	AWSRegion              string                  `json:"awsRegion"`
}

// SQSAttribute is a message attribute as Lambda writes it.
type SQSAttribute struct {
	StringValue      *string  `json:"stringValue,omitempty"`
	BinaryValue      []byte   `json:"binaryValue,omitempty"`
	StringListValues []string `json:"stringListValues"`
	BinaryListValues [][]byte `json:"binaryListValues"`
	DataType         string   `json:"dataType"`
}

// RecordOf turns a received message into the record Lambda builds for it.
func RecordOf(m sqstypes.Message, queueARN, region string) SQSRecord {
	r := SQSRecord{
		MessageID:              aws.ToString(m.MessageId),
		ReceiptHandle:          aws.ToString(m.ReceiptHandle),
		Body:                   aws.ToString(m.Body),
		Attributes:             map[string]string{},
		MessageAttributes:      map[string]SQSAttribute{},
		Md5OfMessageAttributes: m.MD5OfMessageAttributes,
		Md5OfBody:              aws.ToString(m.MD5OfBody),
		EventSource:            "aws:sqs",
		EventSourceARN:         queueARN,
		AWSRegion:              region,
	}
	for k, v := range m.Attributes {
		r.Attributes[k] = v
	}
	for k, v := range m.MessageAttributes {
		a := SQSAttribute{
			StringValue: v.StringValue, BinaryValue: v.BinaryValue,
			StringListValues: v.StringListValues, BinaryListValues: v.BinaryListValues,
			DataType: aws.ToString(v.DataType),
		}
		if a.StringListValues == nil {
			a.StringListValues = []string{}
		}
		if a.BinaryListValues == nil {
			a.BinaryListValues = [][]byte{}
		}
		r.MessageAttributes[k] = a
	}
	return r
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
