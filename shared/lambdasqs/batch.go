package lambdasqs

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/followups/followups/shared/followup"
)

// Handle handles one message and returns what the queue should do with it.
type Handle func(ctx context.Context, d followup.Delivery) followup.Verdict

// Visibility makes a received message visible again d from now (SQS
// ChangeMessageVisibility); d is whole seconds, zero meaning at once.
type Visibility func(ctx context.Context, receiptHandle string, d time.Duration) error

// Batch handles the records of one batch concurrently, one goroutine each,
// so that one slow thread API holds up only its own followup, and returns
// when all are done. A record whose verdict is Ack is deleted by Lambda; a
// record to retry is reported in BatchItemFailures, after its visibility is
// set to the verdict's wait, rounded up to whole seconds. When visibility
// is nil or fails, the record is still reported, and comes back after the
// queue's own visibility timeout. A handler that panics fails its record
// only. log may be nil.
func Batch(ctx context.Context, records []events.SQSMessage, handle Handle, visibility Visibility, log *slog.Logger) events.SQSEventResponse {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	failed := make([]bool, len(records))
	var wg sync.WaitGroup
	for i := range records {
		wg.Go(func() {
			failed[i] = !consume(ctx, &records[i], handle, visibility, log)
		})
	}
	wg.Wait()
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: records[i].MessageId})
		}
	}
	return resp
}

// consume handles one record and reports whether it may be deleted.
func consume(ctx context.Context, m *events.SQSMessage, handle Handle, visibility Visibility, log *slog.Logger) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			// The value may quote the message, a prompt or metadata: only
			// its type and where it happened are logged.
			log.ErrorContext(ctx, "queue message handler panicked; the message comes back after the queue's visibility timeout",
				"message_id", m.MessageId, "panic_type", fmt.Sprintf("%T", p), "panic_at", panicSite())
			ok = false
		}
	}()
	v := handle(ctx, Delivery(m))
	if !v.Retry {
		return true
	}
	wait := RoundUp(v.After)
	if visibility == nil {
		return false
	}
	if err := visibility(ctx, m.ReceiptHandle, wait); err != nil {
		log.WarnContext(ctx, "could not set the retry wait of a queue message; it comes back after the queue's visibility timeout",
			"message_id", m.MessageId, "retry_in", wait, "error", err)
	}
	return false
}

// RoundUp returns d rounded up to whole seconds, the unit of SQS
// visibility timeouts, so a message never comes back before its wait; a
// negative d is zero.
func RoundUp(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

// Delivery is the delivery of one record: its body, String attributes and
// receive count (the ApproximateReceiveCount Lambda passes on).
func Delivery(m *events.SQSMessage) followup.Delivery {
	n, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
	return followup.Delivery{Body: []byte(m.Body), Attributes: Attributes(m), ReceiveCount: max(n, 1)}
}

// panicSite returns the function and line where a recovered panic began:
// the first frame of the stack below the runtime's own panic machinery
// and this recovery.
func panicSite() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf("%s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
		}
		if !more {
			return "unknown"
		}
	}
}

// Attributes returns a message's String attributes (data type String or
// String.<custom>) by name: EventBridge Scheduler's dead letters carry
// ERROR_CODE, ERROR_MESSAGE and the like this way.
func Attributes(m *events.SQSMessage) map[string]string {
	var attrs map[string]string
	for k, a := range m.MessageAttributes {
		if a.StringValue == nil || (a.DataType != "String" && !strings.HasPrefix(a.DataType, "String.")) {
			continue
		}
		if attrs == nil {
			attrs = make(map[string]string, len(m.MessageAttributes))
		}
		attrs[k] = *a.StringValue
	}
	return attrs
}
