package dynamo

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/followups/followups/shared/followup"
)

// ThreadIndex is the global secondary index that lists a thread's
// followups in run_at, id order.
const ThreadIndex = "thread-run_at"

// filteredPage is how many index entries a filtered List asks DynamoDB to
// read per page: a status filter is applied after the read, so reading
// only as many as are wanted would take many round trips.
const filteredPage = 100

// List queries the thread index from q.After on, filtering by status, until
// it has one more followup than q.Limit (so more is exact) or the index
// ends. Index reads are eventually consistent: a write acknowledged a
// moment ago may be missing from a listing, or shown as it was before.
func (s *Store) List(ctx context.Context, q followup.ListQuery) ([]*followup.Followup, bool, error) {
	if q.Limit <= 0 {
		return nil, false, followup.FieldErrorf(followup.CodeInvalidArgument, "limit", "limit must be positive, got %d", q.Limit)
	}
	e := newExpr()
	keyCond := e.name(attrThreadPK) + " = " + e.value(str(q.ThreadID))
	if q.After != nil {
		keyCond = and(keyCond, e.name(attrRunAtSK)+" > "+e.value(str(runAtSK(q.After.RunAt, q.After.ID))))
	}
	in := &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		IndexName:              aws.String(ThreadIndex),
		KeyConditionExpression: aws.String(keyCond),
	}
	if q.Status != "" {
		in.FilterExpression = aws.String(e.name(attrStatus) + " = " + e.value(str(string(q.Status))))
	}
	in.ExpressionAttributeNames = e.Names()
	in.ExpressionAttributeValues = e.Values()

	var page []*followup.Followup
	for {
		want := q.Limit + 1 - len(page)
		in.Limit = aws.Int32(int32(want))
		if q.Status != "" {
			in.Limit = aws.Int32(int32(max(want, filteredPage)))
		}
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, false, fmt.Errorf("list thread %q: %w", q.ThreadID, err)
		}
		for _, it := range out.Items {
			f, err := decodeFollowup(it)
			if err != nil {
				return nil, false, fmt.Errorf("list thread %q: %w", q.ThreadID, err)
			}
			page = append(page, f)
			if len(page) > q.Limit {
				return page[:q.Limit], true, nil
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return page, false, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// SweepIndex is the sparse global secondary index of pending followups,
// by sweep time: only items with a sweep_pk (pending followups) are in it.
const SweepIndex = "sweep"

// Overdue reads the sweep index with one Query: the pending followups
// whose sweep time is at or before now, earliest first, up to limit (and
// DynamoDB's 1 MB page). The index projects what the sweep needs (the
// thread id and the status), so no item is read beyond it; like every
// index read it is eventually consistent, which the sweep tolerates: a
// followup seen a moment late is sent again a run later.
func (s *Store) Overdue(ctx context.Context, now time.Time, limit int) ([]followup.OverdueFollowup, error) {
	e := newExpr()
	keyCond := and(e.name(attrSweepPK)+" = "+e.value(str(sweepPartition)),
		e.name(attrSweepSK)+" < "+e.value(str(formatTime(now.Add(time.Nanosecond)))))
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(SweepIndex),
		KeyConditionExpression:    aws.String(keyCond),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
		Limit:                     aws.Int32(int32(min(limit, math.MaxInt32))),
	})
	if err != nil {
		return nil, fmt.Errorf("find overdue followups: %w", err)
	}
	found := make([]followup.OverdueFollowup, 0, len(out.Items))
	for _, it := range out.Items {
		d := decoder{it: it}
		at, id, err := parseSweepSK(d.str(attrSweepSK, true))
		o := followup.OverdueFollowup{ID: id, ThreadID: d.str(attrThreadID, true), Status: followup.Status(d.str(attrStatus, true)), SweepAt: at}
		if err == nil {
			err = d.err
		}
		if err != nil {
			return nil, fmt.Errorf("find overdue followups: sweep index item %s: %w", pkOf(it), err)
		}
		found = append(found, o)
	}
	return found, nil
}
