package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/followups/followups/shared/followup"
)

// slotLifetime is how long after its followup's run_at a run slot is kept:
// longer than any followup can stay pending (its fire message and then its
// dead letter are each kept at most 14 days by SQS).
const slotLifetime = 35 * 24 * time.Hour

// maxCreateTries bounds how often Create starts over when a concurrent
// create or transition moved what it read.
const maxCreateTries = 8

// Create writes a new followup, its idempotency key and its run slot in
// one atomic write:
//
//   - no key and no originating run: one conditional PutItem;
//   - a key and no originating run: one TransactWriteItems (followup and
//     key);
//   - an originating run: a read of the run slot and of the followup it
//     names, then one TransactWriteItems that also moves the slot
//     (conditioned on what was read) and applies c.Replace to the previous
//     followup, or checks that it is still as read.
//
// A refused key or id is told apart by the transaction's cancellation
// reasons, which carry the key item, so a replay costs one more read (the
// original followup).
func (s *Store) Create(ctx context.Context, c followup.Creation) (followup.Created, error) {
	if c.Followup == nil {
		return followup.Created{}, errors.New("create followup: no followup")
	}
	f := c.Followup.Clone()
	f.ReplacedPrevious = nil
	if err := checkNew(c); err != nil {
		return followup.Created{}, fmt.Errorf("create followup %s: %w", f.ID, err)
	}
	if c.IdempotencyKey == "" && f.OriginatingRunID == "" {
		if err := s.put(ctx, f); err != nil {
			return followup.Created{}, fmt.Errorf("create followup %s: %w", f.ID, err)
		}
		return followup.Created{Followup: f.Clone()}, nil
	}
	for try := 1; ; try++ {
		out, retry, err := s.transact(ctx, c, f, try)
		if err == nil && !retry {
			return out, nil
		}
		if err == nil {
			err = errors.New("what it read kept changing under concurrent writes")
		}
		if !retry || try == maxCreateTries {
			return followup.Created{}, fmt.Errorf("create followup %s: %w", f.ID, err)
		}
		if err := pause(ctx, try); err != nil {
			return followup.Created{}, fmt.Errorf("create followup %s: %w", f.ID, err)
		}
	}
}

func checkNew(c followup.Creation) error {
	f := c.Followup
	switch {
	case f.ID == "":
		return errors.New("empty id")
	case f.ThreadID == "":
		return errors.New("empty thread id")
	case !f.Status.Valid():
		return fmt.Errorf("status %q", f.Status)
	case c.IdempotencyKey != "" && c.KeyExpiresAt.IsZero():
		return errors.New("idempotency key without an expiry")
	}
	return nil
}

// put writes f alone with one conditional PutItem.
func (s *Store) put(ctx context.Context, f *followup.Followup) error {
	it := encodeFollowup(f, s.expiry(f))
	e := newExpr()
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.table),
		Item:                                it,
		ConditionExpression:                 aws.String("attribute_not_exists(" + e.name(attrPK) + ")"),
		ExpressionAttributeNames:            e.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if reflect.DeepEqual(ccf.Item, it) {
			// The item is exactly ours: an earlier attempt of this call
			// (an SDK retry after a lost answer) wrote it.
			return nil
		}
		return followup.ErrExists
	}
	return err
}

// The parts of a create transaction, by position.
type txParts struct {
	items []types.TransactWriteItem
	key   int // -1 when absent
	slot  int
	prev  int
}

// transact makes one attempt at a transactional create. retry reports that
// what it read changed before it wrote, and a new attempt may succeed.
func (s *Store) transact(ctx context.Context, c followup.Creation, f *followup.Followup, try int) (_ followup.Created, retry bool, _ error) {
	p := txParts{key: -1, slot: -1, prev: -1}
	e := newExpr()
	p.items = append(p.items, types.TransactWriteItem{Put: &types.Put{
		TableName:                           aws.String(s.table),
		Item:                                encodeFollowup(f, s.expiry(f)),
		ConditionExpression:                 aws.String("attribute_not_exists(" + e.name(attrPK) + ")"),
		ExpressionAttributeNames:            e.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureNone,
	}})
	if c.IdempotencyKey != "" {
		e := newExpr()
		// A key that expired at CreatedAt may be taken over; TTL removes
		// expired keys only some time later.
		cond := "attribute_not_exists(" + e.name(attrPK) + ") OR " + e.name(attrKeyExpiresAt) + " <= " + e.value(timeAttr(f.CreatedAt))
		p.key = len(p.items)
		p.items = append(p.items, types.TransactWriteItem{Put: &types.Put{
			TableName:                           aws.String(s.table),
			Item:                                encodeKey(c.IdempotencyKey, keyEntry{followupID: f.ID, hash: c.RequestHash, expiresAt: c.KeyExpiresAt}),
			ConditionExpression:                 aws.String(cond),
			ExpressionAttributeNames:            e.Names(),
			ExpressionAttributeValues:           e.Values(),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
	}
	var replaced *followup.Followup
	if f.OriginatingRunID != "" {
		var err error
		if replaced, err = s.moveSlot(ctx, c, f, &p); err != nil {
			return followup.Created{}, false, err
		}
	}

	_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems:      p.items,
		ClientRequestToken: aws.String(requestToken(f.ID, try, p.items)),
	})
	if err == nil {
		return followup.Created{Followup: f.Clone(), Replaced: replaced}, false, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return followup.Created{}, false, err
	}
	reasons := tce.CancellationReasons
	failed := func(i int) bool {
		return i >= 0 && i < len(reasons) && aws.ToString(reasons[i].Code) == "ConditionalCheckFailed"
	}
	switch {
	case failed(p.key):
		return s.keyTaken(ctx, c, reasons[p.key].Item)
	case failed(0):
		return followup.Created{}, false, followup.ErrExists
	case failed(p.slot), failed(p.prev):
		return followup.Created{}, true, nil
	}
	for _, r := range reasons {
		if aws.ToString(r.Code) == "TransactionConflict" {
			// Another transaction held one of the items; nothing was written.
			return followup.Created{}, true, err
		}
	}
	return followup.Created{}, false, err
}

// moveSlot reads the run slot of f and the followup it names, and adds to
// p the slot's move to f and what happens to the previous followup. It
// returns the previous followup as the transaction leaves it, or nil when
// there is none pending.
func (s *Store) moveSlot(ctx context.Context, c followup.Creation, f *followup.Followup, p *txParts) (*followup.Followup, error) {
	slot := slotKey(f.ThreadID, f.OriginatingRunID)
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            slot,
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read run slot: %w", err)
	}
	d := decoder{it: out.Item}
	prevID := d.str(attrFollowupID, out.Item != nil)
	if d.err != nil {
		return nil, fmt.Errorf("read run slot %s: %w", pkOf(slot), d.err)
	}

	e := newExpr()
	var cond string
	if out.Item == nil {
		cond = "attribute_not_exists(" + e.name(attrPK) + ")"
	} else {
		// Conditioned on the id read: two creates racing for one slot
		// cannot both move it.
		cond = e.name(attrFollowupID) + " = " + e.value(str(prevID))
	}
	it := slotKey(f.ThreadID, f.OriginatingRunID)
	it[attrFollowupID] = str(f.ID)
	it[attrExpires] = ttlSeconds(f.RunAt.Add(slotLifetime))
	p.slot = len(p.items)
	p.items = append(p.items, types.TransactWriteItem{Put: &types.Put{
		TableName:                 aws.String(s.table),
		Item:                      it,
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
	}})

	if prevID == "" || prevID == f.ID {
		// No previous followup; or the slot names this very id, which the
		// followup's own condition refuses as taken.
		return nil, nil
	}
	prev, err := s.get(ctx, prevID)
	switch {
	case errors.Is(err, followup.ErrNotFound):
		return nil, nil // settled long ago and removed by TTL
	case err != nil:
		return nil, fmt.Errorf("read previous followup %s: %w", prevID, err)
	case prev.Status.Terminal():
		return nil, nil // not pending, and terminal followups never change
	}
	p.prev = len(p.items)
	if c.Replace != nil && c.Replace.Check(prev) == nil {
		// Apply the transition to the followup exactly as read, so the
		// result computed here is the one written.
		t := *c.Replace
		t.Version = prev.Version
		u := s.translate(t)
		p.items = append(p.items, types.TransactWriteItem{Update: &types.Update{
			TableName:                 aws.String(s.table),
			Key:                       followupKey(prevID),
			ConditionExpression:       aws.String(u.condition),
			UpdateExpression:          aws.String(u.update),
			ExpressionAttributeNames:  u.e.Names(),
			ExpressionAttributeValues: u.e.Values(),
		}})
		t.Apply(prev)
		return prev, nil
	}
	// Left as it is (dispatching, or no transition): check that it still
	// is, so Replaced shows it as it stands.
	e = newExpr()
	p.items = append(p.items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:                 aws.String(s.table),
		Key:                       followupKey(prevID),
		ConditionExpression:       aws.String(e.name(attrVersion) + " = " + e.value(num(prev.Version))),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
	}})
	return prev, nil
}

// keyTaken decides a create whose idempotency key was live: a replay of
// the original when the request is the same, an idempotency conflict when
// not. it is the key item from the cancellation reason, nil when the
// endpoint did not return it.
func (s *Store) keyTaken(ctx context.Context, c followup.Creation, it item) (_ followup.Created, retry bool, _ error) {
	var e keyEntry
	found := it != nil
	var err error
	if found {
		e, err = decodeKey(it)
	} else {
		e, found, err = s.readKey(ctx, c.IdempotencyKey)
	}
	switch {
	case err != nil:
		return followup.Created{}, false, err
	case !found || !e.live(c.Followup.CreatedAt):
		return followup.Created{}, true, nil // it changed since: start over
	case e.hash != c.RequestHash:
		return followup.Created{}, false, idempotencyConflict()
	}
	orig, err := s.original(ctx, c.IdempotencyKey, e)
	if err != nil {
		return followup.Created{}, false, err
	}
	return followup.Created{Followup: orig, Replayed: true}, false, nil
}

// requestToken is the ClientRequestToken of one create transaction: the
// same for the SDK's retries of it, which makes them idempotent, and
// different for any other transaction.
func requestToken(id string, try int, items []types.TransactWriteItem) string {
	h := sha256.New()
	h.Write([]byte(id + "\x00" + strconv.Itoa(try) + "\x00"))
	// The SDK's attribute value types encode to JSON deterministically
	// (map keys sorted).
	_ = json.NewEncoder(h).Encode(items)
	return hex.EncodeToString(h.Sum(nil))[:36]
}
