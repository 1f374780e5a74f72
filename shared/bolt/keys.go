package bolt

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/followups/followups/shared/followup"
)

// The buckets. Every index is written in the same transaction as the
// record it points to, so they never disagree.
var (
	// bucketFollowups maps id → encoded record.
	bucketFollowups = []byte("followups")
	// bucketThreads maps thread, run_at, id → nothing: a thread's listing
	// in order. It holds no status: a claim or a settle would rewrite the
	// entry, and a burst's entries lie on pages all over the index (one
	// thread each), so every commit of a burst wrote out one page per
	// delivery for it. A listing by status reads the records instead.
	// (A file of format 2 may still hold a status; it is not read, and
	// the entry's next change writes it empty.)
	bucketThreads = []byte("threads")
	// bucketDue maps due time, id → thread id for every non-terminal
	// followup: NextAttemptAt when scheduled, LeaseUntil when dispatching.
	// A restart rebuilds its timers from this small index alone.
	bucketDue = []byte("due")
	// bucketSweep maps sweep time, id → status and thread id for every
	// pending followup: what the sweep reads to find lost messages.
	bucketSweep = []byte("sweep")
	// bucketRuns maps thread, originating run id → followup id: the slot of
	// replace per run.
	bucketRuns = []byte("runs")
	// bucketSettled maps settled_at, id → the expiry of the followup's
	// idempotency key, if any: what Purge walks.
	bucketSettled = []byte("settled")
	// bucketKeys maps idempotency key → expiry, request hash, followup id.
	bucketKeys = []byte("keys")
	// bucketKeyExpiry maps expiry, key → nothing: what Purge walks for keys.
	bucketKeyExpiry = []byte("key_expiry")
	// bucketDeadLetters maps received_at, sequence → JSON dead letter.
	bucketDeadLetters = []byte("dead_letters")
	// bucketMeta holds the format version and the counters of Stats.
	bucketMeta = []byte("meta")
)

var allBuckets = [][]byte{
	bucketFollowups, bucketThreads, bucketDue, bucketSweep, bucketRuns, bucketSettled,
	bucketKeys, bucketKeyExpiry, bucketDeadLetters, bucketMeta,
}

// timeKeyLen is the size of a time in a key.
const timeKeyLen = 12

// appendTimeKey writes t so that byte order is time order: Unix seconds with
// the sign bit flipped, big-endian, then nanoseconds, big-endian.
func appendTimeKey(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func parseTimeKey(b []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:]))).UTC()
}

// maxThreadIDBytes bounds a thread id in a key: its length is written in
// two bytes.
const maxThreadIDBytes = 1<<16 - 1

// threadPrefix is the start of every key of one thread: the id's length,
// then the id. The length keeps "t-1" apart from "t-10" whatever bytes a
// thread id holds.
func threadPrefix(thread string) []byte {
	b := make([]byte, 0, 2+len(thread)+timeKeyLen+32)
	b = binary.BigEndian.AppendUint16(b, uint16(len(thread)))
	return append(b, thread...)
}

// threadKey orders a thread's followups by run_at, then id.
func threadKey(thread string, runAt time.Time, id string) []byte {
	return append(appendTimeKey(threadPrefix(thread), runAt), id...)
}

// runKey is the replace-per-run slot of a thread and an originating run.
func runKey(thread, run string) []byte {
	return append(threadPrefix(thread), run...)
}

// timeIDKey is a key of the due and settled indexes.
func timeIDKey(t time.Time, id string) []byte {
	b := make([]byte, 0, timeKeyLen+len(id))
	return append(appendTimeKey(b, t), id...)
}

// splitTimeIDKey reads a key timeIDKey wrote.
func splitTimeIDKey(k []byte) (time.Time, string, error) {
	if len(k) < timeKeyLen {
		return time.Time{}, "", fmt.Errorf("index key %x too short", k)
	}
	return parseTimeKey(k), string(k[timeKeyLen:]), nil
}

// dueAt is when a non-terminal followup next needs attention, and whether
// it does at all.
func dueAt(f *followup.Followup) (time.Time, bool) {
	switch f.Status {
	case followup.StatusScheduled:
		return f.NextAttemptAt, true
	case followup.StatusDispatching:
		return f.LeaseUntil, true
	}
	return time.Time{}, false
}

// sweepEntry is a bucketSweep value: the status, a byte of its own, then
// the thread id.
func sweepEntry(f *followup.Followup) []byte {
	return append([]byte{statusByte(f.Status)}, f.ThreadID...)
}

func decodeSweepEntry(v []byte) (followup.Status, string, error) {
	if len(v) < 1 || int(v[0]) >= len(followup.Statuses) {
		return "", "", fmt.Errorf("sweep index entry %x is damaged", v)
	}
	return followup.Statuses[v[0]], string(v[1:]), nil
}

func statusByte(s followup.Status) byte {
	return byte(slices.Index(followup.Statuses, s))
}

// keyEntry is a bucketKeys value.
type keyEntry struct {
	expiresAt time.Time
	hash      string
	id        string
}

func encodeKeyEntry(e keyEntry) []byte {
	b := make([]byte, 0, timeKeyLen+4+len(e.hash)+len(e.id))
	b = appendTimeKey(b, e.expiresAt)
	b = appendString(b, e.hash)
	return append(b, e.id...)
}

func decodeKeyEntry(v []byte) (keyEntry, error) {
	if len(v) < timeKeyLen {
		return keyEntry{}, fmt.Errorf("idempotency key entry %x too short", v)
	}
	d := decoder{b: v[timeKeyLen:]}
	e := keyEntry{expiresAt: parseTimeKey(v), hash: d.string()}
	if d.err != nil {
		return keyEntry{}, fmt.Errorf("idempotency key entry: %w", d.err)
	}
	e.id = string(d.b)
	return e, nil
}

// live reports whether the key still guards its followup at now.
func (e keyEntry) live(now time.Time) bool { return now.Before(e.expiresAt) }
