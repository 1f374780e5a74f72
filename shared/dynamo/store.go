package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/followups/followups/shared/followup"
)

// Options tunes a Store. The zero value uses every default.
type Options struct {
	// Retention is how long a settled followup is kept before TTL removes
	// it (FOLLOWUPS_RETENTION); zero means
	// followup.DefaultRetention. Settled followups are kept at least
	// followup.MinIdempotencyMemory, so an idempotency key, which the
	// service remembers that long, never outlives its followup. Dead
	// letters are kept Retention after they arrived.
	Retention time.Duration
}

// Store is the followup.Store of the AWS deployment: one DynamoDB table
// (see the package documentation for its design). It is safe for
// concurrent use.
type Store struct {
	client *dynamodb.Client
	table  string
	// retention is how long dead letters are kept; keep, how long settled
	// followups are.
	retention time.Duration
	keep      time.Duration
}

// New returns a Store on table, which must exist with the design of the
// package documentation (template.yaml creates it; CreateTable does too).
func New(client *dynamodb.Client, table string, opts Options) *Store {
	r := opts.Retention
	if r <= 0 {
		r = followup.DefaultRetention
	}
	return &Store{client: client, table: table, retention: r, keep: max(r, followup.MinIdempotencyMemory)}
}

// expiry is when TTL may remove followup f: never while it is pending.
func (s *Store) expiry(f *followup.Followup) time.Time {
	if !f.Status.Terminal() {
		return time.Time{}
	}
	settled := f.UpdatedAt
	if f.SettledAt != nil {
		settled = *f.SettledAt
	}
	return settled.Add(s.keep)
}

// Get returns the followup, or an error matching followup.ErrNotFound. The
// read is strongly consistent: it sees every write acknowledged before it.
func (s *Store) Get(ctx context.Context, id string) (*followup.Followup, error) {
	f, err := s.get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get followup %s: %w", id, err)
	}
	return f, nil
}

func (s *Store) get(ctx context.Context, id string) (*followup.Followup, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            followupKey(id),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if out.Item == nil {
		return nil, followup.ErrNotFound
	}
	return decodeFollowup(out.Item)
}

// Replay returns the followup created under key, nil when the key is
// unknown or expired at now, or an idempotency_conflict *followup.Error
// when the key was used with another request. It reads the key item, then
// the followup, both strongly consistent.
func (s *Store) Replay(ctx context.Context, key, requestHash string, now time.Time) (*followup.Followup, error) {
	e, found, err := s.readKey(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("replay idempotency key %q: %w", key, err)
	}
	if !found || !e.live(now) {
		return nil, nil
	}
	if e.hash != requestHash {
		return nil, idempotencyConflict()
	}
	f, err := s.original(ctx, key, e)
	if err != nil {
		return nil, fmt.Errorf("replay idempotency key %q: %w", key, err)
	}
	return f, nil
}

func (s *Store) readKey(ctx context.Context, key string) (keyEntry, bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            idempotencyKey(key),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return keyEntry{}, false, err
	}
	if out.Item == nil {
		return keyEntry{}, false, nil
	}
	e, err := decodeKey(out.Item)
	return e, err == nil, err
}

// original returns the followup a live key names. A live key whose
// followup is gone cannot be answered either way: replaying nothing would
// let the same request create a second followup.
func (s *Store) original(ctx context.Context, key string, e keyEntry) (*followup.Followup, error) {
	f, err := s.get(ctx, e.followupID)
	if errors.Is(err, followup.ErrNotFound) {
		return nil, fmt.Errorf("idempotency key %q names followup %s, which no longer exists", key, e.followupID)
	}
	return f, err
}

func idempotencyConflict() error {
	return followup.FieldErrorf(followup.CodeIdempotencyConflict, "Idempotency-Key",
		"Idempotency-Key was already used with a different request")
}

// KeepDeadLetter stores d under its message id; the same message stored
// twice is kept once. TTL removes it Retention after it arrived.
func (s *Store) KeepDeadLetter(ctx context.Context, d followup.DeadLetterRecord) error {
	it := deadLetterKey(d.ID)
	it[attrID] = str(d.ID)
	setString(it, attrBody, d.Body)
	setString(it, attrError, d.Error)
	if len(d.Attributes) > 0 {
		m := make(item, len(d.Attributes))
		for k, v := range d.Attributes {
			m[k] = str(v)
		}
		it[attrAttributes] = &types.AttributeValueMemberM{Value: m}
	}
	if !d.ReceivedAt.IsZero() {
		it[attrReceivedAt] = timeAttr(d.ReceivedAt)
		it[attrExpires] = ttlSeconds(d.ReceivedAt.Add(s.retention))
	}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: it})
	if err != nil {
		return fmt.Errorf("keep dead letter %s: %w", d.ID, err)
	}
	return nil
}

var _ followup.Store = (*Store)(nil)
