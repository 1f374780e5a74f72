package dynamo_test

import (
	"context"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/followups/followups/shared/awscount"
	"github.com/followups/followups/shared/awstest"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/followup/storetest"
)

// fixture is a fresh table on the test endpoint, a store on it, and a
// counter of the store's calls.
type fixture struct {
	store  *dynamo.Store
	client *dynamodb.Client // uncounted, for looking at items
	table  string
	calls  *awscount.Counter
}

func newFixture(t *testing.T, opts dynamo.Options) *fixture {
	t.Helper()
	cfg := awstest.Config(t)
	admin := dynamodb.NewFromConfig(cfg)
	table := awstest.Name("followups-test")
	if err := dynamo.CreateTable(t.Context(), admin, table); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	calls := &awscount.Counter{}
	counted := dynamodb.NewFromConfig(cfg, dynamodb.WithAPIOptions(calls.APIOption))
	return &fixture{store: dynamo.New(counted, table, opts), client: admin, table: table, calls: calls}
}

func TestStoreContract(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	storetest.Run(t, func(t *testing.T) followup.Store { return newFixture(t, dynamo.Options{}).store })
}

func base() time.Time { return time.Now().UTC().Truncate(time.Second).Add(123456789) }

func newFollowup(id, thread string, now time.Time) *followup.Followup {
	runAt := now.Add(time.Hour)
	return &followup.Followup{
		ID: id, ThreadID: thread, Prompt: "Report back.", RunAt: runAt,
		Status: followup.StatusScheduled, Runs: []followup.Run{},
		CreatedAt: now, UpdatedAt: now, Version: 1, NextAttemptAt: runAt,
	}
}

// requireCalls fails unless the calls made since before are want.
func requireCalls(t *testing.T, what string, c *awscount.Counter, before map[string]int, want map[string]int) {
	t.Helper()
	if got := c.Delta(before); !maps.Equal(got, want) {
		t.Fatalf("%s made calls %v, want %v", what, got, want)
	}
}

// TestCallBudgets holds each operation to the DynamoDB calls it is allowed:
// they decide the latency of a create and a fire, and what they cost.
func TestCallBudgets(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t, dynamo.Options{})
	ctx := t.Context()
	now := base()

	before := x.calls.Snapshot()
	f := newFollowup("fu_budget1", "t-1", now)
	if _, err := x.store.Create(ctx, followup.Creation{Followup: f}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	requireCalls(t, "Create without key or run", x.calls, before, map[string]int{"DynamoDB.PutItem": 1})

	before = x.calls.Snapshot()
	g := newFollowup("fu_budget2", "t-1", now)
	keyed := followup.Creation{Followup: g, IdempotencyKey: "k-1", RequestHash: "h", KeyExpiresAt: now.Add(24 * time.Hour)}
	if _, err := x.store.Create(ctx, keyed); err != nil {
		t.Fatalf("Create with key: %v", err)
	}
	requireCalls(t, "Create with key", x.calls, before, map[string]int{"DynamoDB.TransactWriteItems": 1})

	before = x.calls.Snapshot()
	replay := keyed
	replay.Followup = newFollowup("fu_budget3", "t-1", now.Add(time.Second))
	if got, err := x.store.Create(ctx, replay); err != nil || !got.Replayed {
		t.Fatalf("Create replaying a key = %+v, %v; want a replay", got, err)
	}
	// The cancellation reason carries the key item; only the original is read.
	requireCalls(t, "Create replaying a key", x.calls, before, map[string]int{"DynamoDB.TransactWriteItems": 1, "DynamoDB.GetItem": 1})

	before = x.calls.Snapshot()
	claimed, err := x.store.Apply(ctx, f.ID, followup.Claim(f.RunAt, 30*time.Second, 4))
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	requireCalls(t, "Apply claim", x.calls, before, map[string]int{"DynamoDB.UpdateItem": 1})

	before = x.calls.Snapshot()
	run := followup.Run{Attempt: 1, StartedAt: f.RunAt, FinishedAt: f.RunAt.Add(time.Second), DurationMS: 1000, Outcome: followup.OutcomeSuccess, HTTPStatus: 200}
	if _, err := x.store.Apply(ctx, f.ID, followup.Settle(claimed, followup.Result{Status: followup.StatusDelivered, Run: &run}, run.FinishedAt)); err != nil {
		t.Fatalf("settle: %v", err)
	}
	requireCalls(t, "Apply settle", x.calls, before, map[string]int{"DynamoDB.UpdateItem": 1})

	before = x.calls.Snapshot()
	if _, err := x.store.Apply(ctx, f.ID, followup.Cancel(now)); err == nil {
		t.Fatalf("cancel of a delivered followup: no error")
	}
	// The refusal carries the current followup: no read.
	requireCalls(t, "Apply refused", x.calls, before, map[string]int{"DynamoDB.UpdateItem": 1})

	before = x.calls.Snapshot()
	if _, err := x.store.Get(ctx, f.ID); err != nil {
		t.Fatalf("Get: %v", err)
	}
	requireCalls(t, "Get", x.calls, before, map[string]int{"DynamoDB.GetItem": 1})

	before = x.calls.Snapshot()
	if _, _, err := x.store.List(ctx, followup.ListQuery{ThreadID: "t-1", Limit: 50}); err != nil {
		t.Fatalf("List: %v", err)
	}
	requireCalls(t, "List of a short thread", x.calls, before, map[string]int{"DynamoDB.Query": 1})

	before = x.calls.Snapshot()
	cancel := followup.Cancel(now)
	first := newFollowup("fu_budget4", "t-1", now)
	first.OriginatingRunID = "run-1"
	if _, err := x.store.Create(ctx, followup.Creation{Followup: first, Replace: &cancel}); err != nil {
		t.Fatalf("Create with run: %v", err)
	}
	requireCalls(t, "Create, first of its run", x.calls, before, map[string]int{"DynamoDB.GetItem": 1, "DynamoDB.TransactWriteItems": 1})

	before = x.calls.Snapshot()
	second := newFollowup("fu_budget5", "t-1", now)
	second.OriginatingRunID = "run-1"
	got, err := x.store.Create(ctx, followup.Creation{Followup: second, Replace: &cancel})
	if err != nil || got.Replaced == nil || got.Replaced.Status != followup.StatusCancelled {
		t.Fatalf("Create replacing = %+v, %v; want the first cancelled", got, err)
	}
	requireCalls(t, "Create replacing", x.calls, before, map[string]int{"DynamoDB.GetItem": 2, "DynamoDB.TransactWriteItems": 1})
}

// getItem returns the raw item with partition key pk.
func (x *fixture) getItem(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := x.client.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName:      aws.String(x.table),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem %s: %v", pk, err)
	}
	if out.Item == nil {
		t.Fatalf("no item %s/%s", pk, sk)
	}
	return out.Item
}

// expiresAt returns an item's TTL attribute, 0 when absent.
func expiresAt(t *testing.T, it map[string]types.AttributeValue) int64 {
	t.Helper()
	v, ok := it["expires_at"]
	if !ok {
		return 0
	}
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("expires_at is %T, want a number", v)
	}
	s, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		t.Fatalf("expires_at %q: %v", n.Value, err)
	}
	return s
}

// ceilUnix is t in Unix seconds rounded up, as TTL values are.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// TestTTL checks that only settled followups, keys and dead letters expire,
// and when.
func TestTTL(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	const retention = 72 * time.Hour
	x := newFixture(t, dynamo.Options{Retention: retention})
	ctx := t.Context()
	now := base()

	f := newFollowup("fu_ttl1", "t-1", now)
	f.OriginatingRunID = "run-1"
	keyExpires := now.Add(72*time.Hour + 500*time.Millisecond)
	if _, err := x.store.Create(ctx, followup.Creation{Followup: f, IdempotencyKey: "k-ttl", RequestHash: "h", KeyExpiresAt: keyExpires}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got := expiresAt(t, x.getItem(t, "F#fu_ttl1", "F")); got != 0 {
		t.Fatalf("scheduled followup expires_at = %d, want none", got)
	}
	if got, want := expiresAt(t, x.getItem(t, "K#k-ttl", "K")), ceilUnix(keyExpires); got != want {
		t.Fatalf("key expires_at = %d, want %d", got, want)
	}
	if got, want := expiresAt(t, x.getItem(t, "R#3:t-1#run-1", "R")), ceilUnix(f.RunAt.Add(35*24*time.Hour)); got != want {
		t.Fatalf("run slot expires_at = %d, want %d", got, want)
	}

	claimed, err := x.store.Apply(ctx, f.ID, followup.Claim(f.RunAt, 30*time.Second, 4))
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if got := expiresAt(t, x.getItem(t, "F#fu_ttl1", "F")); got != 0 {
		t.Fatalf("dispatching followup expires_at = %d, want none", got)
	}
	settledAt := f.RunAt.Add(1500 * time.Millisecond)
	run := followup.Run{Attempt: 1, StartedAt: f.RunAt, FinishedAt: settledAt, DurationMS: 1500, Outcome: followup.OutcomeDrop, HTTPStatus: 404, Error: "HTTP 404"}
	if _, err := x.store.Apply(ctx, f.ID, followup.Settle(claimed, followup.Drop(followup.DropThreadNotFound, run.Error, &run), settledAt)); err != nil {
		t.Fatalf("settle: %v", err)
	}
	if got, want := expiresAt(t, x.getItem(t, "F#fu_ttl1", "F")), ceilUnix(settledAt.Add(retention)); got != want {
		t.Fatalf("settled followup expires_at = %d, want settled_at + retention = %d", got, want)
	}

	// A followup created settled expires from its settled_at too.
	g := newFollowup("fu_ttl2", "t-1", now)
	g.Status, g.SettledAt = followup.StatusCancelled, &now
	if _, err := x.store.Create(ctx, followup.Creation{Followup: g}); err != nil {
		t.Fatalf("Create settled: %v", err)
	}
	if got, want := expiresAt(t, x.getItem(t, "F#fu_ttl2", "F")), ceilUnix(now.Add(retention)); got != want {
		t.Fatalf("followup created settled: expires_at = %d, want %d", got, want)
	}

	if err := x.store.KeepDeadLetter(ctx, followup.DeadLetterRecord{ID: "m-1", Body: "{", ReceivedAt: now}); err != nil {
		t.Fatalf("KeepDeadLetter: %v", err)
	}
	if got, want := expiresAt(t, x.getItem(t, "D#m-1", "D")), ceilUnix(now.Add(retention)); got != want {
		t.Fatalf("dead letter expires_at = %d, want %d", got, want)
	}
}

// TestShortRetentionKeepsKeyedFollowups checks that a retention shorter
// than the idempotency keys' memory does not remove a followup whose key
// can still replay it.
func TestShortRetentionKeepsKeyedFollowups(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t, dynamo.Options{Retention: time.Hour})
	now := base()
	f := newFollowup("fu_short", "t-1", now)
	if _, err := x.store.Create(t.Context(), followup.Creation{Followup: f, IdempotencyKey: "k", RequestHash: "h", KeyExpiresAt: now.Add(followup.MinIdempotencyMemory)}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := x.store.Apply(t.Context(), f.ID, followup.Cancel(now)); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if got, want := expiresAt(t, x.getItem(t, "F#fu_short", "F")), ceilUnix(now.Add(followup.MinIdempotencyMemory)); got != want {
		t.Fatalf("expires_at = %d, want settled_at + %s = %d", got, followup.MinIdempotencyMemory, want)
	}
}
