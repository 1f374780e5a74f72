package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/followups/followups/shared/followup"
)

// update is a Transition translated for DynamoDB: a condition expression
// that holds exactly when Transition.Check passes, and an update
// expression that makes exactly Transition.Apply's changes.
type update struct {
	condition string
	update    string
	e         *expr
}

// translate turns t, for the followup id, into an update of its item.
func (s *Store) translate(id string, t followup.Transition) update {
	e := newExpr()
	pk := e.name(attrPK)
	conds := []string{"attribute_exists(" + pk + ")"}
	if len(t.From) == 0 {
		// Check refuses every status; so does this.
		conds = append(conds, "attribute_not_exists("+pk+")")
	} else {
		from := make([]string, len(t.From))
		for i, st := range t.From {
			from[i] = e.value(str(string(st)))
		}
		conds = append(conds, e.name(attrStatus)+" IN ("+strings.Join(from, ", ")+")")
	}
	if t.Version != 0 {
		conds = append(conds, e.name(attrVersion)+" = "+e.value(num(t.Version)))
	}
	if !t.DueBy.IsZero() {
		// Fixed-width time strings compare as the times they hold.
		conds = append(conds, e.name(attrNextAttemptAt)+" <= "+e.value(timeAttr(t.DueBy)))
	}
	if t.AttemptsBelow != 0 {
		conds = append(conds, e.name(attrAttempts)+" < "+e.value(num(t.AttemptsBelow)))
	}
	if !t.SweepBy.IsZero() {
		// sweep_sk is the sweep time and "#id": below the time just after
		// SweepBy exactly when the sweep time is at or before it.
		conds = append(conds, e.name(attrSweepSK)+" < "+e.value(str(formatTime(t.SweepBy.Add(time.Nanosecond)))))
	}

	var one string // the placeholder of 1, made when needed: DynamoDB refuses unused values
	plusOne := func(a string) string {
		if one == "" {
			one = e.value(num(1))
		}
		return e.name(a) + " = " + e.name(a) + " + " + one
	}
	set := []string{e.name(attrStatus) + " = " + e.value(str(string(t.To)))}
	var remove []string
	assign := func(a string, v types.AttributeValue) { set = append(set, e.name(a)+" = "+e.value(v)) }
	// change sets a from a pointer: nil keeps it, an empty value removes
	// it (the item never holds an empty optional attribute).
	change := func(a string, v types.AttributeValue, empty bool) {
		if empty {
			remove = append(remove, e.name(a))
		} else {
			assign(a, v)
		}
	}
	if t.CountAttempt {
		set = append(set, plusOne(attrAttempts))
	}
	if t.AppendRun != nil {
		run := &types.AttributeValueMemberL{Value: []types.AttributeValue{encodeRun(t.AppendRun)}}
		set = append(set, e.name(attrRuns)+" = list_append("+e.name(attrRuns)+", "+e.value(run)+")")
	}
	if v := t.LeaseUntil; v != nil {
		change(attrLeaseUntil, timeAttr(*v), v.IsZero())
	}
	if v := t.NextAttemptAt; v != nil {
		// Always present, zero time included (see encodeFollowup).
		assign(attrNextAttemptAt, timeAttr(*v))
	}
	if v := t.SweepAt; v != nil {
		if v.IsZero() {
			remove = append(remove, e.name(attrSweepPK), e.name(attrSweepSK))
		} else {
			assign(attrSweepPK, str(sweepPartition))
			assign(attrSweepSK, str(sweepSK(*v, id)))
		}
	}
	if v := t.LastError; v != nil {
		change(attrLastError, str(*v), *v == "")
	}
	if v := t.DropReason; v != nil {
		change(attrDropReason, str(string(*v)), *v == "")
	}
	at := timeAttr(t.At)
	if !t.Bookkeeping {
		assign(attrUpdatedAt, at)
		set = append(set, plusOne(attrVersion))
	}
	if t.To.Terminal() {
		assign(attrSettledAt, at)
		assign(attrExpires, ttlSeconds(t.At.Add(s.keep)))
	}

	u := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		u += " REMOVE " + strings.Join(remove, ", ")
	}
	return update{condition: and(conds...), update: u, e: e}
}

// maxApplyTries bounds how often Apply sends its write again after a
// refusal that was not about the followup's state.
const maxApplyTries = 5

// Apply writes t to the followup in one conditional UpdateItem that
// returns the followup as written. When the condition fails, DynamoDB
// returns the followup as it stands (ReturnValuesOnConditionCheckFailure),
// so a conflict costs no extra read.
func (s *Store) Apply(ctx context.Context, id string, t followup.Transition) (*followup.Followup, error) {
	u := s.translate(id, t)
	in := &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.table),
		Key:                                 followupKey(id),
		ConditionExpression:                 aws.String(u.condition),
		UpdateExpression:                    aws.String(u.update),
		ExpressionAttributeNames:            u.e.Names(),
		ExpressionAttributeValues:           u.e.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	for try := 1; ; try++ {
		out, err := s.client.UpdateItem(ctx, in)
		if err == nil {
			f, err := decodeFollowup(out.Attributes)
			if err != nil {
				return nil, fmt.Errorf("%s followup %s: %w", t.Name, id, err)
			}
			return f, nil
		}
		retry, err := s.refused(ctx, id, t, err)
		if !retry || try == maxApplyTries {
			return nil, fmt.Errorf("%s followup %s: %w", t.Name, id, err)
		}
		if err := pause(ctx, try); err != nil {
			return nil, fmt.Errorf("%s followup %s: %w", t.Name, id, err)
		}
	}
}

// refused explains why an UpdateItem of t failed: ErrNotFound, a
// *followup.ConflictError with the current followup, or another error. It
// reports retry when sending the same write again may succeed.
func (s *Store) refused(ctx context.Context, id string, t followup.Transition, err error) (retry bool, _ error) {
	var tce *types.TransactionConflictException
	if errors.As(err, &tce) {
		// A transaction (a create replacing this followup) holds the item;
		// nothing was written.
		return true, err
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return false, err
	}
	var cur *followup.Followup
	if ccf.Item != nil {
		if cur, err = decodeFollowup(ccf.Item); err != nil {
			return false, err
		}
	} else {
		// DynamoDB returns no item when there is none. Read to be sure,
		// for endpoints that do not implement
		// ReturnValuesOnConditionCheckFailure.
		if cur, err = s.get(ctx, id); err != nil {
			return false, err
		}
	}
	if err := t.Check(cur); err != nil {
		return false, err
	}
	// The followup satisfies t now, so it changed after the write was
	// refused: try again.
	return true, &followup.ConflictError{Current: cur, Reason: t.Name + ": the followup changed during the write"}
}

// pause waits a little before try+1, or until ctx ends: a random part of
// 10 ms × try², so writers that collided spread out.
func pause(ctx context.Context, try int) error {
	d := time.Duration(try*try) * 10 * time.Millisecond
	d = d/2 + rand.N(d/2+1)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
