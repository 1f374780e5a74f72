package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/followups/followups/shared/followup"
)

// Defaults of Options.
const (
	// DefaultRetention is FOLLOWUPS_RETENTION's default.
	DefaultRetention = 168 * time.Hour
	// DefaultLockTimeout is short: a second process should fail at once,
	// not hang.
	DefaultLockTimeout = time.Second
	// DefaultBatchDelay adds little latency to one write and lets writes
	// arriving together share an fsync.
	DefaultBatchDelay = 2 * time.Millisecond
	// DefaultBatchSize is bbolt's own default.
	DefaultBatchSize = 1000
)

// Options tunes a Store. The zero value uses every default.
type Options struct {
	// Retention is how long a settled followup is kept before Purge removes
	// it (FOLLOWUPS_RETENTION); zero means DefaultRetention. A
	// followup whose idempotency key is still live is kept until the key
	// expires, so a replay always finds it.
	Retention time.Duration
	// LockTimeout is how long Open waits for another process to release
	// the file; zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// BatchDelay is how long a write waits for others to share its fsync;
	// zero means DefaultBatchDelay.
	BatchDelay time.Duration
	// BatchSize is the most writes one fsync covers; zero means
	// DefaultBatchSize.
	BatchSize int
}

// ErrLocked is returned (wrapped) by Open when another process holds the
// store's file.
var ErrLocked = errors.New("store is in use by another process")

// storeFormat is the layout version kept in the meta bucket. Format 2
// added the sweep index (and the records' SweepAt and RearmedFrom); Open
// migrates a format 1 file.
const storeFormat = "2"

var metaFormat = []byte("format")

// Store is the durable followup.Store of followupd: one bbolt file on one
// machine. Every acknowledged write is fsynced before it returns;
// concurrent writes share fsyncs (group commit).
type Store struct {
	db        *bbolt.DB
	path      string
	retention time.Duration
}

// Open opens the store at path, creating the file and its directory when
// missing. It fails with ErrLocked when another process has the file open.
func Open(path string, opts Options) (*Store, error) {
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.BatchDelay == 0 {
		opts.BatchDelay = DefaultBatchDelay
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Retention < 0 || opts.LockTimeout < 0 || opts.BatchDelay < 0 || opts.BatchSize < 0 {
		return nil, fmt.Errorf("open store %s: negative option in %+v", path, opts)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opts.LockTimeout,
		// The hashmap freelist stays fast as the file fragments under
		// create, settle and purge.
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: waited %s for its lock: %w", path, opts.LockTimeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.MaxBatchDelay = opts.BatchDelay
	db.MaxBatchSize = opts.BatchSize
	var migrate bool
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(metaFormat); {
		case v == nil:
			return meta.Put(metaFormat, []byte(storeFormat))
		case string(v) == "1":
			migrate = true
		case string(v) != storeFormat:
			return fmt.Errorf("file has format %q, this program reads %q", v, storeFormat)
		}
		return nil
	})
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	s := &Store{db: db, path: path, retention: opts.Retention}
	if err == nil && migrate {
		err = s.migrateSweepIndex()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// migrateSweepIndex brings a format 1 file to format 2: every pending
// followup gets the SweepAt a transition would have given it (SweepGrace
// past its next attempt or lease end) and its sweep index entry, a chunk
// per transaction. It can stop anywhere and run again: a record that has
// its SweepAt is left alone.
func (s *Store) migrateSweepIndex() error {
	_, err := s.visitChunks(context.Background(), bucketDue, func(t tx, k, _ []byte) (verdict, int, error) {
		due, id, err := splitTimeIDKey(k)
		if err != nil {
			return stop, 0, fmt.Errorf("due index: %w", err)
		}
		r, err := t.getIndexed(id, "due index")
		if err != nil || !r.f.SweepAt.IsZero() {
			return skip, 0, err
		}
		r.f.SweepAt = due.Add(followup.SweepGrace)
		if err := t.followups.Put([]byte(id), encodeRecord(r)); err != nil {
			return stop, 0, err
		}
		return skip, 1, t.sweep.Put(timeIDKey(r.f.SweepAt, id), sweepEntry(r.f))
	})
	if err != nil {
		return fmt.Errorf("migrate to format %s: %w", storeFormat, err)
	}
	return s.db.Update(func(btx *bbolt.Tx) error {
		return btx.Bucket(bucketMeta).Put(metaFormat, []byte(storeFormat))
	})
}

// syncDir makes a newly created file's directory entry durable: without
// it, a power loss could lose the whole file and every write it had
// acknowledged.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Close releases the file. Writes in flight finish first.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// Create writes a new followup with its idempotency key and the replace per
// run rule, in one transaction. Key expiry is judged at the followup's
// CreatedAt, the service's "now" when it made the followup.
func (s *Store) Create(ctx context.Context, c followup.Creation) (followup.Created, error) {
	if err := ctx.Err(); err != nil {
		return followup.Created{}, err
	}
	f := c.Followup
	if f == nil {
		return followup.Created{}, errors.New("create followup: no followup")
	}
	if err := checkNew(c); err != nil {
		return followup.Created{}, fmt.Errorf("create followup %s: %w", f.ID, err)
	}
	w := newCreation(c)
	// Batch may run the function more than once (when another write in the
	// batch fails); each run starts from scratch and only the last one's
	// result is returned. Refusals (ErrExists, conflicts) are results, not
	// errors, so they do not roll back the writes sharing the batch.
	if err := s.db.Batch(func(btx *bbolt.Tx) error { return w.run(txn(btx)) }); err != nil {
		return followup.Created{}, fmt.Errorf("create followup %s: %w", f.ID, err)
	}
	if w.refused != nil {
		return followup.Created{}, fmt.Errorf("create followup %s: %w", f.ID, w.refused)
	}
	return w.created, nil
}

func checkNew(c followup.Creation) error {
	f := c.Followup
	switch {
	case f.ID == "":
		return errors.New("empty id")
	case f.ThreadID == "" || len(f.ThreadID) > maxThreadIDBytes:
		return fmt.Errorf("thread id of %d bytes", len(f.ThreadID))
	case !f.Status.Valid():
		return fmt.Errorf("status %q", f.Status)
	case c.IdempotencyKey != "" && c.KeyExpiresAt.IsZero():
		return errors.New("idempotency key without an expiry")
	}
	return nil
}

// creation is a Create prepared outside the write lock (the record is
// encoded once, however often the batch runs it) and, after run, its
// outcome.
type creation struct {
	c            followup.Creation
	f            *followup.Followup
	keyExpiresAt time.Time // zero without a key
	encoded      []byte

	created followup.Created
	refused error // ErrExists or an idempotency conflict: nothing written
}

func newCreation(c followup.Creation) *creation {
	f := c.Followup.Clone()
	f.ReplacedPrevious = nil
	r := record{f: f}
	if c.IdempotencyKey != "" {
		r.keyExpiresAt = c.KeyExpiresAt
	}
	return &creation{c: c, f: f, keyExpiresAt: r.keyExpiresAt, encoded: encodeRecord(r)}
}

// run does the create in tx and records its outcome in w. It returns only
// the errors that must abort the transaction.
func (w *creation) run(t tx) error {
	w.created, w.refused = followup.Created{}, nil
	c, f := w.c, w.f
	now := f.CreatedAt

	var staleKey *keyEntry
	if c.IdempotencyKey != "" {
		if v := t.keys.Get([]byte(c.IdempotencyKey)); v != nil {
			e, err := decodeKeyEntry(v)
			if err != nil {
				return err
			}
			if e.live(now) {
				if e.hash != c.RequestHash {
					w.refused = idempotencyConflict()
					return nil
				}
				orig, err := t.getIndexed(e.id, "idempotency key "+c.IdempotencyKey)
				if err != nil {
					return err
				}
				w.created = followup.Created{Followup: orig.f, Replayed: true}
				return nil
			}
			staleKey = &e
		}
	}

	if t.followups.Get([]byte(f.ID)) != nil {
		w.refused = followup.ErrExists
		return nil
	}

	var out followup.Created
	if f.OriginatingRunID != "" {
		slot := runKey(f.ThreadID, f.OriginatingRunID)
		if c.Replace != nil {
			replaced, err := t.replace(slot, *c.Replace)
			if err != nil {
				return err
			}
			out.Replaced = replaced
		}
		if err := t.runs.Put(slot, []byte(f.ID)); err != nil {
			return err
		}
	}

	if err := t.insert(f, w.encoded, w.keyExpiresAt); err != nil {
		return err
	}

	if c.IdempotencyKey != "" {
		key := []byte(c.IdempotencyKey)
		if staleKey != nil {
			if err := t.keyExpiry.Delete(timeIDKey(staleKey.expiresAt, c.IdempotencyKey)); err != nil {
				return err
			}
		} else if err := t.count(counterKeys, 1); err != nil {
			return err
		}
		e := keyEntry{expiresAt: c.KeyExpiresAt, hash: c.RequestHash, id: f.ID}
		if err := t.keys.Put(key, encodeKeyEntry(e)); err != nil {
			return err
		}
		if err := t.keyExpiry.Put(timeIDKey(c.KeyExpiresAt, c.IdempotencyKey), nil); err != nil {
			return err
		}
	}
	out.Followup = f.Clone()
	w.created = out
	return nil
}

func idempotencyConflict() error {
	return followup.FieldErrorf(followup.CodeIdempotencyConflict, "Idempotency-Key",
		"Idempotency-Key was already used with a different request")
}

// replace applies tr to the pending followup in slot, if any, and returns
// it as it stands after: changed, or unchanged when tr did not apply (it is
// dispatching). A terminal followup is not pending and is not returned.
func (t tx) replace(slot []byte, tr followup.Transition) (*followup.Followup, error) {
	id := t.runs.Get(slot)
	if id == nil {
		return nil, nil
	}
	prev, err := t.get(string(id))
	if errors.Is(err, followup.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if prev.f.Status.Terminal() {
		return nil, nil
	}
	if tr.Check(prev.f) != nil {
		return prev.f, nil
	}
	next, err := t.transition(prev, tr)
	if err != nil {
		return nil, err
	}
	return next.Clone(), nil
}

// Replay returns the followup created under key, nil when the key is
// unknown or expired at now, or an idempotency_conflict *followup.Error
// when the key was used with another request.
func (s *Store) Replay(ctx context.Context, key, requestHash string, now time.Time) (*followup.Followup, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *followup.Followup
	err := s.db.View(func(btx *bbolt.Tx) error {
		t := txn(btx)
		v := t.keys.Get([]byte(key))
		if v == nil {
			return nil
		}
		e, err := decodeKeyEntry(v)
		if err != nil {
			return err
		}
		if !e.live(now) {
			return nil
		}
		if e.hash != requestHash {
			return idempotencyConflict()
		}
		r, err := t.getIndexed(e.id, "idempotency key")
		if err != nil {
			return err
		}
		out = r.f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay key %q: %w", key, err)
	}
	return out, nil
}

// Get returns the followup, or an error matching followup.ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*followup.Followup, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *followup.Followup
	err := s.db.View(func(btx *bbolt.Tx) error {
		r, err := txn(btx).get(id)
		out = r.f
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get followup %s: %w", id, err)
	}
	return out, nil
}

// List returns a page of one thread's followups in run_at, id order, from
// the thread index: only the page's records are decoded.
func (s *Store) List(ctx context.Context, q followup.ListQuery) ([]*followup.Followup, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if q.Limit <= 0 {
		return nil, false, followup.FieldErrorf(followup.CodeInvalidArgument, "limit", "limit must be positive, got %d", q.Limit)
	}
	prefix := threadPrefix(q.ThreadID)
	var (
		page []*followup.Followup
		more bool
	)
	err := s.db.View(func(btx *bbolt.Tx) error {
		t := txn(btx)
		c := t.threads.Cursor()
		var k []byte
		if q.After != nil {
			after := threadKey(q.ThreadID, q.After.RunAt, q.After.ID)
			k, _ = c.Seek(after)
			if bytes.Equal(k, after) {
				k, _ = c.Next()
			}
		} else {
			k, _ = c.Seek(prefix)
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(k) < len(prefix)+timeKeyLen {
				return fmt.Errorf("thread index key %x too short", k)
			}
			r, err := t.getIndexed(string(k[len(prefix)+timeKeyLen:]), "thread index")
			if err != nil {
				return err
			}
			if q.Status != "" && r.f.Status != q.Status {
				continue
			}
			if len(page) == q.Limit {
				more = true
				return nil
			}
			page = append(page, r.f)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("list thread %q: %w", q.ThreadID, err)
	}
	return page, more, nil
}

// Apply checks tr against the stored followup and writes its result, in
// one transaction shared (and fsynced) with concurrent writes.
func (s *Store) Apply(ctx context.Context, id string, tr followup.Transition) (*followup.Followup, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var (
		out    *followup.Followup
		outErr error
	)
	// As in Create: refusals are results, and only the last run counts.
	err := s.db.Batch(func(btx *bbolt.Tx) error {
		out, outErr = nil, nil
		t := txn(btx)
		r, err := t.get(id)
		if errors.Is(err, followup.ErrNotFound) {
			outErr = err
			return nil
		}
		if err != nil {
			return err
		}
		if err := tr.Check(r.f); err != nil {
			outErr = err
			return nil
		}
		out, err = t.transition(r, tr)
		return err
	})
	if err == nil {
		err = outErr
	}
	if err != nil {
		return nil, fmt.Errorf("%s followup %s: %w", tr.Name, id, err)
	}
	return out, nil
}

// Overdue returns up to limit pending followups whose SweepAt is at or
// before now, earliest first, from the sweep index alone.
func (s *Store) Overdue(ctx context.Context, now time.Time, limit int) ([]followup.OverdueFollowup, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []followup.OverdueFollowup
	err := s.db.View(func(btx *bbolt.Tx) error {
		c := txn(btx).sweep.Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			at, id, err := splitTimeIDKey(k)
			if err != nil {
				return fmt.Errorf("sweep index: %w", err)
			}
			if at.After(now) {
				break
			}
			status, thread, err := decodeSweepEntry(v)
			if err != nil {
				return err
			}
			out = append(out, followup.OverdueFollowup{ID: id, ThreadID: thread, Status: status, SweepAt: at})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find overdue followups: %w", err)
	}
	return out, nil
}

var _ followup.Store = (*Store)(nil)
