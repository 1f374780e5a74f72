package inmem

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Store is a followup.Store in maps, guarded by one mutex.
type Store struct {
	mu          sync.Mutex
	followups   map[string]*followup.Followup
	keys        map[string]idemKey
	slots       map[[2]string]string
	DeadLetters []followup.DeadLetterRecord
}

type idemKey struct {
	id, hash string
	expires  time.Time
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{followups: map[string]*followup.Followup{}, keys: map[string]idemKey{}, slots: map[[2]string]string{}}
}

// Create implements followup.Store.
func (s *Store) Create(_ context.Context, c followup.Creation) (followup.Created, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := c.Followup
	if c.IdempotencyKey != "" {
		orig, err := s.replay(c.IdempotencyKey, c.RequestHash, f.CreatedAt)
		if err != nil || orig != nil {
			return followup.Created{Followup: orig, Replayed: orig != nil}, err
		}
	}
	if _, ok := s.followups[f.ID]; ok {
		return followup.Created{}, followup.ErrExists
	}
	var replaced *followup.Followup
	if f.OriginatingRunID != "" {
		slot := [2]string{f.ThreadID, f.OriginatingRunID}
		if old, ok := s.followups[s.slots[slot]]; ok && !old.Status.Terminal() {
			if c.Replace != nil && c.Replace.Check(old) == nil {
				c.Replace.Apply(old)
			}
			replaced = old.Clone()
		}
		s.slots[slot] = f.ID
	}
	s.followups[f.ID] = f.Clone()
	if c.IdempotencyKey != "" {
		s.keys[c.IdempotencyKey] = idemKey{id: f.ID, hash: c.RequestHash, expires: c.KeyExpiresAt}
	}
	return followup.Created{Followup: f.Clone(), Replaced: replaced}, nil
}

// Replay implements followup.Store.
func (s *Store) Replay(_ context.Context, key, hash string, now time.Time) (*followup.Followup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replay(key, hash, now)
}

func (s *Store) replay(key, hash string, now time.Time) (*followup.Followup, error) {
	k, ok := s.keys[key]
	if !ok || !now.Before(k.expires) {
		return nil, nil
	}
	if k.hash != hash {
		return nil, followup.Errorf(followup.CodeIdempotencyConflict, "Idempotency-Key %q was used with a different request", key)
	}
	return s.followups[k.id].Clone(), nil
}

// Get implements followup.Store.
func (s *Store) Get(_ context.Context, id string) (*followup.Followup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.followups[id]
	if !ok {
		return nil, followup.ErrNotFound
	}
	return f.Clone(), nil
}

// List implements followup.Store.
func (s *Store) List(_ context.Context, q followup.ListQuery) ([]*followup.Followup, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*followup.Followup
	for _, f := range s.followups {
		if f.ThreadID != q.ThreadID || (q.Status != "" && f.Status != q.Status) {
			continue
		}
		if q.After != nil && !q.After.Less(followup.PositionOf(f)) {
			continue
		}
		all = append(all, f)
	}
	slices.SortFunc(all, func(a, b *followup.Followup) int {
		if followup.PositionOf(a).Less(followup.PositionOf(b)) {
			return -1
		}
		return 1
	})
	more := len(all) > q.Limit
	if more {
		all = all[:q.Limit]
	}
	page := make([]*followup.Followup, len(all))
	for i, f := range all {
		page[i] = f.Clone()
	}
	return page, more, nil
}

// Apply implements followup.Store.
func (s *Store) Apply(_ context.Context, id string, t followup.Transition) (*followup.Followup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.followups[id]
	if !ok {
		return nil, followup.ErrNotFound
	}
	if err := t.Check(f); err != nil {
		return nil, err
	}
	t.Apply(f)
	return f.Clone(), nil
}

// Overdue implements followup.Store.
func (s *Store) Overdue(_ context.Context, now time.Time, limit int) ([]followup.OverdueFollowup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []followup.OverdueFollowup
	for _, f := range s.followups {
		if !f.SweepAt.IsZero() && !f.SweepAt.After(now) {
			out = append(out, followup.OverdueFollowup{ID: f.ID, ThreadID: f.ThreadID, Status: f.Status, SweepAt: f.SweepAt})
		}
	}
	slices.SortFunc(out, func(a, b followup.OverdueFollowup) int {
		if c := a.SweepAt.Compare(b.SweepAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out[:min(len(out), limit)], nil
}

// KeepDeadLetter implements followup.Store.
func (s *Store) KeepDeadLetter(_ context.Context, d followup.DeadLetterRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.DeadLetters = append(s.DeadLetters, d)
	return nil
}

var _ followup.Store = (*Store)(nil)
