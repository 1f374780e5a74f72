package dynamo_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/followups/followups/shared/awstest"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
)

// TestConcurrentCreatesOfOneRun checks that creates racing for one run's
// slot serialize: each succeeds, and exactly one followup of the run is
// left scheduled.
func TestConcurrentCreatesOfOneRun(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t, dynamo.Options{})
	now := base()
	const n = 4
	results := make([]followup.Created, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			f := newFollowup(fmt.Sprintf("fu_race%d", i), "t-1", now)
			f.OriginatingRunID = "run-1"
			cancel := followup.Cancel(now)
			<-start
			results[i], errs[i] = x.store.Create(t.Context(), followup.Creation{Followup: f, Replace: &cancel})
		})
	}
	close(start)
	wg.Wait()
	replacedBy := map[string]string{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if r := results[i].Replaced; r != nil {
			if other, ok := replacedBy[r.ID]; ok {
				t.Fatalf("%s was replaced by both %s and %s", r.ID, other, results[i].Followup.ID)
			}
			replacedBy[r.ID] = results[i].Followup.ID
		}
	}
	var scheduled []string
	for i := range n {
		f, err := x.store.Get(t.Context(), fmt.Sprintf("fu_race%d", i))
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		switch f.Status {
		case followup.StatusScheduled:
			scheduled = append(scheduled, f.ID)
		case followup.StatusCancelled:
			if _, ok := replacedBy[f.ID]; !ok {
				t.Fatalf("%s is cancelled but no create says it replaced it", f.ID)
			}
		default:
			t.Fatalf("%s is %s", f.ID, f.Status)
		}
	}
	if len(scheduled) != 1 || len(replacedBy) != n-1 {
		t.Fatalf("scheduled %v, replaced %v; want one scheduled and %d replaced", scheduled, replacedBy, n-1)
	}
}

// TestConcurrentCreatesOfOneKey checks that creates racing with one
// idempotency key make one followup, and the others replay it.
func TestConcurrentCreatesOfOneKey(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t, dynamo.Options{})
	now := base()
	const n = 6
	results := make([]followup.Created, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			f := newFollowup(fmt.Sprintf("fu_key%d", i), "t-1", now)
			<-start
			results[i], errs[i] = x.store.Create(t.Context(), followup.Creation{
				Followup: f, IdempotencyKey: "key-1", RequestHash: "hash-1", KeyExpiresAt: now.Add(24 * time.Hour),
			})
		})
	}
	close(start)
	wg.Wait()
	created := ""
	for i, err := range errs {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if !results[i].Replayed {
			if created != "" {
				t.Fatalf("both %s and %s were created under one key", created, results[i].Followup.ID)
			}
			created = results[i].Followup.ID
		}
	}
	for i := range n {
		if got := results[i].Followup.ID; got != created {
			t.Fatalf("create %d returned %s, want %s", i, got, created)
		}
	}
}

// TestDeadLetterKeptVerbatim checks what an operator finds of a dead letter.
func TestDeadLetterKeptVerbatim(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t, dynamo.Options{})
	d := followup.DeadLetterRecord{
		ID:         "msg-1",
		Body:       `{"followup_id": 12`,
		Attributes: map[string]string{"ERROR_CODE": "AWS.Scheduler.X", "ERROR_MESSAGE": "é / ü"},
		Error:      "invalid message",
		ReceivedAt: base(),
	}
	if err := x.store.KeepDeadLetter(t.Context(), d); err != nil {
		t.Fatalf("KeepDeadLetter: %v", err)
	}
	it := x.getItem(t, "D#msg-1", "D")
	if got := it["body"].(*types.AttributeValueMemberS).Value; got != d.Body {
		t.Fatalf("body = %q, want %q", got, d.Body)
	}
	attrs := it["attributes"].(*types.AttributeValueMemberM).Value
	for k, v := range d.Attributes {
		if got := attrs[k].(*types.AttributeValueMemberS).Value; got != v {
			t.Fatalf("attributes[%s] = %q, want %q", k, got, v)
		}
	}
	if got := it["error"].(*types.AttributeValueMemberS).Value; got != d.Error {
		t.Fatalf("error = %q, want %q", got, d.Error)
	}
}

// loseFirstAnswer is a transport that sends the first TransactWriteItems
// request and then drops its answer, as a connection reset after the
// server wrote would: the SDK sends the same request again.
type loseFirstAnswer struct {
	next http.RoundTripper
	lost atomic.Bool
}

func (l *loseFirstAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := l.next.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") && l.lost.CompareAndSwap(false, true) {
		res.Body.Close()
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return res, err
}

// A create whose transaction was written but whose answer was lost is
// created once, not refused as an id that exists: the SDK's retry finds
// its own item (moto, like any endpoint that does not honour the
// transaction's ClientRequestToken, refuses the retry's condition).
func TestCreateWhoseAnswerWasLost(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t, dynamo.Options{})
	lose := &loseFirstAnswer{next: http.DefaultTransport}
	cfg := awstest.Config(t)
	cfg.HTTPClient = &http.Client{Transport: lose}
	store := dynamo.New(dynamodb.NewFromConfig(cfg), x.table, dynamo.Options{})
	now := base()
	f := newFollowup("fu_lost_answer", "t-1", now)
	got, err := store.Create(t.Context(), followup.Creation{Followup: f, IdempotencyKey: "key-lost", RequestHash: "h", KeyExpiresAt: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if !lose.lost.Load() {
		t.Fatal("no answer was lost: the test tested nothing")
	}
	if got.Replayed || got.Followup.ID != f.ID {
		t.Fatalf("create = %+v, want %s created", got, f.ID)
	}
	// The key replays it.
	again, err := store.Create(t.Context(), followup.Creation{Followup: newFollowup("fu_other", "t-1", now), IdempotencyKey: "key-lost", RequestHash: "h", KeyExpiresAt: now.Add(24 * time.Hour)})
	if err != nil || !again.Replayed || again.Followup.ID != f.ID {
		t.Fatalf("replay = %+v, %v", again, err)
	}
}
