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
		out, err := s.transact(ctx, c, f, try)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, errMoved) || try == maxCreateTries {
			return followup.Created{}, fmt.Errorf("create followup %s: %w", f.ID, err)
		}
		if err := pause(ctx, try); err != nil {
			return followup.Created{}, fmt.Errorf("create followup %s: %w", f.ID, err)
		}
	}
}

// errMoved says that what a create read (the run slot, the followup it
// names, an expired key) changed before the create wrote: nothing was
// written, and starting over may succeed.
var errMoved = errors.New("what the create read changed under a concurrent write")

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

// role names what one item of a create transaction is for, so a
// cancellation reason can be read by what it refused.
type role uint8

const (
	roleFollowup role = iota // the new followup
	roleKey                  // its idempotency key
	roleSlot                 // the run slot, moved to it
	rolePrev                 // the run's previous followup: replaced, or checked
)

// createTx is a create transaction being built: its items and what each
// is for.
type createTx struct {
	items []types.TransactWriteItem
	roles []role
}

func (t *createTx) add(r role, it types.TransactWriteItem) {
	t.items = append(t.items, it)
	t.roles = append(t.roles, r)
}

// refused returns the role of the first item whose condition failed.
func (t *createTx) refused(reasons []types.CancellationReason) (role, types.CancellationReason, bool) {
	for i, r := range reasons {
		if i < len(t.roles) && aws.ToString(r.Code) == "ConditionalCheckFailed" {
			return t.roles[i], r, true
		}
	}
	return 0, types.CancellationReason{}, false
}

// transact makes one attempt at a transactional create. It returns
// errMoved when what it read changed before it wrote.
func (s *Store) transact(ctx context.Context, c followup.Creation, f *followup.Followup, try int) (followup.Created, error) {
	var tx createTx
	tx.add(roleFollowup, s.putFollowup(f))
	if c.IdempotencyKey != "" {
		tx.add(roleKey, s.putKey(c, f))
	}
	var replaced *followup.Followup
	if f.OriginatingRunID != "" {
		var err error
		if replaced, err = s.moveSlot(ctx, c, f, &tx); err != nil {
			return followup.Created{}, err
		}
	}

	_, err := s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems:      tx.items,
		ClientRequestToken: aws.String(requestToken(f.ID, try, tx.items)),
	})
	if err == nil {
		return followup.Created{Followup: f.Clone(), Replaced: replaced}, nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return followup.Created{}, err
	}
	switch r, reason, ok := tx.refused(tce.CancellationReasons); {
	case ok && r == roleKey:
		return s.keyTaken(ctx, c, reason.Item)
	case ok && r == roleFollowup && reflect.DeepEqual(reason.Item, tx.items[0].Put.Item):
		// The followup is exactly ours: an SDK retry of this very
		// transaction, whose first try was written but not answered, and
		// an endpoint that did not honour its ClientRequestToken.
		return followup.Created{Followup: f.Clone(), Replaced: replaced}, nil
	case ok && r == roleFollowup:
		return followup.Created{}, followup.ErrExists
	case ok:
		return followup.Created{}, errMoved
	}
	for _, r := range tce.CancellationReasons {
		if aws.ToString(r.Code) == "TransactionConflict" {
			// Another transaction held one of the items; nothing was written.
			return followup.Created{}, fmt.Errorf("%w: %w", errMoved, err)
		}
	}
	return followup.Created{}, err
}

// putFollowup is the transaction item that writes the new followup, if its
// id is free.
func (s *Store) putFollowup(f *followup.Followup) types.TransactWriteItem {
	e := newExpr()
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                           aws.String(s.table),
		Item:                                encodeFollowup(f, s.expiry(f)),
		ConditionExpression:                 aws.String("attribute_not_exists(" + e.name(attrPK) + ")"),
		ExpressionAttributeNames:            e.Names(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}
}

// putKey is the item that remembers the idempotency key, if it is free or
// expired at the followup's creation (TTL removes expired keys only some
// time later). A refusal returns the key as it stands.
func (s *Store) putKey(c followup.Creation, f *followup.Followup) types.TransactWriteItem {
	e := newExpr()
	cond := "attribute_not_exists(" + e.name(attrPK) + ") OR " + e.name(attrKeyExpiresAt) + " <= " + e.value(timeAttr(f.CreatedAt))
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                           aws.String(s.table),
		Item:                                encodeKey(c.IdempotencyKey, keyEntry{followupID: f.ID, hash: c.RequestHash, expiresAt: c.KeyExpiresAt}),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            e.Names(),
		ExpressionAttributeValues:           e.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}
}

// moveSlot reads the run slot of f and the followup it names, and adds to
// tx the slot's move to f and what happens to the previous followup. It
// returns the previous followup as the transaction leaves it, or nil when
// there is none pending.
func (s *Store) moveSlot(ctx context.Context, c followup.Creation, f *followup.Followup, tx *createTx) (*followup.Followup, error) {
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
	tx.add(roleSlot, s.putSlot(f, out.Item != nil, prevID))
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
	if c.Replace != nil && c.Replace.Check(prev) == nil {
		// Apply the transition to the followup exactly as read, so the
		// result computed here is the one written.
		t := *c.Replace
		t.Version = prev.Version
		tx.add(rolePrev, s.updatePrev(prevID, t))
		t.Apply(prev)
		return prev, nil
	}
	// Left as it is (dispatching, or no transition): check that it still
	// is, so Replaced shows it as it stands.
	tx.add(rolePrev, s.checkPrev(prev))
	return prev, nil
}

// putSlot is the item that points the run slot at f, if the slot is still
// as read: absent, or naming prevID. Two creates racing for one slot
// cannot both move it.
func (s *Store) putSlot(f *followup.Followup, exists bool, prevID string) types.TransactWriteItem {
	e := newExpr()
	var cond string
	if exists {
		cond = e.name(attrFollowupID) + " = " + e.value(str(prevID))
	} else {
		cond = "attribute_not_exists(" + e.name(attrPK) + ")"
	}
	it := slotKey(f.ThreadID, f.OriginatingRunID)
	it[attrFollowupID] = str(f.ID)
	it[attrExpires] = ttlSeconds(f.RunAt.Add(slotLifetime))
	return types.TransactWriteItem{Put: &types.Put{
		TableName:                 aws.String(s.table),
		Item:                      it,
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
	}}
}

// updatePrev is the item that applies the replace transition t to the
// run's previous followup.
func (s *Store) updatePrev(id string, t followup.Transition) types.TransactWriteItem {
	u := s.translate(id, t)
	return types.TransactWriteItem{Update: &types.Update{
		TableName:                 aws.String(s.table),
		Key:                       followupKey(id),
		ConditionExpression:       aws.String(u.condition),
		UpdateExpression:          aws.String(u.update),
		ExpressionAttributeNames:  u.e.Names(),
		ExpressionAttributeValues: u.e.Values(),
	}}
}

// checkPrev is the item that checks the run's previous followup is still
// at the version read.
func (s *Store) checkPrev(prev *followup.Followup) types.TransactWriteItem {
	e := newExpr()
	return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:                 aws.String(s.table),
		Key:                       followupKey(prev.ID),
		ConditionExpression:       aws.String(e.name(attrVersion) + " = " + e.value(num(prev.Version))),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
	}}
}

// keyTaken decides a create whose idempotency key was live: a replay of
// the original when the request is the same, an idempotency conflict when
// not. it is the key item from the cancellation reason, nil when the
// endpoint did not return it.
func (s *Store) keyTaken(ctx context.Context, c followup.Creation, it item) (followup.Created, error) {
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
		return followup.Created{}, err
	case !found || !e.live(c.Followup.CreatedAt):
		return followup.Created{}, errMoved // it changed since: start over
	case e.hash != c.RequestHash:
		return followup.Created{}, idempotencyConflict()
	}
	orig, err := s.original(ctx, c.IdempotencyKey, e)
	if err != nil {
		return followup.Created{}, err
	}
	return followup.Created{Followup: orig, Replayed: true}, nil
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
