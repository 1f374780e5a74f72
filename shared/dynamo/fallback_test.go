package dynamo_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/followups/followups/shared/awscount"
	"github.com/followups/followups/shared/awstest"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/followup"
)

// dropRefusedItems removes the item DynamoDB returns with a refused
// condition, as an endpoint without ReturnValuesOnConditionCheckFailure
// would.
func dropRefusedItems(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("dropRefusedItems",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			var ccf *types.ConditionalCheckFailedException
			if errors.As(err, &ccf) {
				ccf.Item = nil
			}
			var tce *types.TransactionCanceledException
			if errors.As(err, &tce) {
				for i := range tce.CancellationReasons {
					tce.CancellationReasons[i].Item = nil
				}
			}
			return out, md, err
		}), middleware.Before)
}

// TestRefusalsWithoutItems checks that the store stays right on an
// endpoint that returns no item with a refused condition: it reads what
// it needs instead.
func TestRefusalsWithoutItems(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t, dynamo.Options{})
	calls := &awscount.Counter{}
	s := dynamo.New(dynamodb.NewFromConfig(awstest.Config(t), dynamodb.WithAPIOptions(dropRefusedItems, calls.APIOption)), x.table, dynamo.Options{})
	ctx := t.Context()
	now := base()

	f := newFollowup("fu_noitem", "t-1", now)
	keyed := followup.Creation{Followup: f, IdempotencyKey: "k", RequestHash: "h", KeyExpiresAt: now.Add(24 * time.Hour)}
	if _, err := s.Create(ctx, keyed); err != nil {
		t.Fatalf("Create: %v", err)
	}
	cancelled, err := s.Apply(ctx, f.ID, followup.Cancel(now))
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}

	before := calls.Snapshot()
	_, err = s.Apply(ctx, f.ID, followup.Claim(f.RunAt, time.Minute, 4))
	var ce *followup.ConflictError
	if !errors.As(err, &ce) || ce.Current.Status != followup.StatusCancelled || ce.Current.Version != cancelled.Version {
		t.Fatalf("claim of a cancelled followup: err = %v, want a conflict showing it cancelled", err)
	}
	if got := calls.Delta(before); !maps.Equal(got, map[string]int{"DynamoDB.UpdateItem": 1, "DynamoDB.GetItem": 1}) {
		t.Fatalf("refused Apply made calls %v, want the write and one read", got)
	}

	if _, err := s.Apply(ctx, "fu_missing", followup.Cancel(now)); !errors.Is(err, followup.ErrNotFound) {
		t.Fatalf("Apply to a missing followup: err = %v, want ErrNotFound", err)
	}

	again := keyed
	again.Followup = newFollowup("fu_noitem2", "t-1", now)
	got, err := s.Create(ctx, again)
	if err != nil || !got.Replayed || got.Followup.ID != f.ID {
		t.Fatalf("Create replaying = %+v, %v; want a replay of %s", got, err, f.ID)
	}
	again.RequestHash = "other"
	if _, err := s.Create(ctx, again); followup.ErrorCode(err) != followup.CodeIdempotencyConflict {
		t.Fatalf("Create with another request: err = %v, want idempotency_conflict", err)
	}
}
