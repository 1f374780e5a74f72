package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/followups/followups/shared/followup"
)

// record is what the followups bucket keeps per id: the followup with its
// bookkeeping, and the expiry of the idempotency key that created it, so
// Purge keeps the followup as long as its key can replay it.
type record struct {
	f            *followup.Followup
	keyExpiresAt time.Time
}

// recordFormat is the first byte of every encoded record. A new layout gets
// a new number, and decodeRecord keeps reading the old ones.
const recordFormat = 1

// Presence bits of the optional fields.
const (
	hasMetadata = 1 << iota
	hasDelay
	hasSettledAt
	hasKeyExpiry
	// Added with store format 2; absent in format 1 records.
	hasRearmedFrom
	hasSweepAt
)

// encodeRecord writes r in a compact binary layout: varints, length-prefixed
// strings, times as Unix seconds and nanoseconds. It is several times
// smaller and faster than JSON, which matters at 100,000 records on one
// disk; ReplacedPrevious is a create response's field and is not kept.
func encodeRecord(r record) []byte {
	f := r.f
	b := make([]byte, 0, 112+len(f.ID)+len(f.ThreadID)+len(f.Prompt)+len(f.Reason)+
		len(f.OriginatingRunID)+len(f.Metadata)+len(f.LastError)+len(f.RearmedFrom)+48*len(f.Runs))
	b = append(b, recordFormat)
	var flags uint64
	if f.Metadata != nil {
		flags |= hasMetadata
	}
	if f.DelaySecondsRequested != nil {
		flags |= hasDelay
	}
	if f.SettledAt != nil {
		flags |= hasSettledAt
	}
	if !r.keyExpiresAt.IsZero() {
		flags |= hasKeyExpiry
	}
	if f.RearmedFrom != "" {
		flags |= hasRearmedFrom
	}
	if !f.SweepAt.IsZero() {
		flags |= hasSweepAt
	}
	b = binary.AppendUvarint(b, flags)
	b = appendString(b, f.ID)
	b = appendString(b, f.ThreadID)
	b = appendString(b, f.Prompt)
	b = appendString(b, f.Reason)
	b = appendString(b, f.OriginatingRunID)
	if f.Metadata != nil {
		b = appendString(b, string(f.Metadata))
	}
	b = appendTime(b, f.RunAt)
	if f.DelaySecondsRequested != nil {
		b = binary.AppendVarint(b, *f.DelaySecondsRequested)
	}
	b = appendString(b, string(f.Status))
	b = binary.AppendVarint(b, int64(f.Attempts))
	b = appendString(b, f.LastError)
	b = appendString(b, string(f.DropReason))
	b = binary.AppendUvarint(b, uint64(len(f.Runs)))
	for _, run := range f.Runs {
		b = binary.AppendVarint(b, int64(run.Attempt))
		b = appendTime(b, run.StartedAt)
		b = appendTime(b, run.FinishedAt)
		b = binary.AppendVarint(b, run.DurationMS)
		b = appendString(b, string(run.Outcome))
		b = binary.AppendVarint(b, int64(run.HTTPStatus))
		b = appendString(b, run.Error)
	}
	b = appendTime(b, f.CreatedAt)
	b = appendTime(b, f.UpdatedAt)
	if f.SettledAt != nil {
		b = appendTime(b, *f.SettledAt)
	}
	b = binary.AppendVarint(b, f.Version)
	b = appendTime(b, f.NextAttemptAt)
	b = appendTime(b, f.LeaseUntil)
	if !r.keyExpiresAt.IsZero() {
		b = appendTime(b, r.keyExpiresAt)
	}
	if f.RearmedFrom != "" {
		b = appendString(b, f.RearmedFrom)
	}
	if !f.SweepAt.IsZero() {
		b = appendTime(b, f.SweepAt)
	}
	return b
}

// decodeRecord reads what encodeRecord wrote. Everything it returns is a
// copy: data may be memory of a transaction that is about to end.
func decodeRecord(data []byte) (record, error) {
	if len(data) == 0 || data[0] != recordFormat {
		return record{}, fmt.Errorf("decode record: unknown format %v", data[:min(len(data), 1)])
	}
	d := decoder{b: data[1:]}
	f := &followup.Followup{}
	flags := d.uvarint()
	f.ID = d.string()
	f.ThreadID = d.string()
	f.Prompt = d.string()
	f.Reason = d.string()
	f.OriginatingRunID = d.string()
	if flags&hasMetadata != 0 {
		f.Metadata = []byte(d.string())
	}
	f.RunAt = d.time()
	if flags&hasDelay != 0 {
		v := d.varint()
		f.DelaySecondsRequested = &v
	}
	f.Status = followup.Status(d.string())
	f.Attempts = int(d.varint())
	f.LastError = d.string()
	f.DropReason = followup.DropReason(d.string())
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each run takes several bytes: a bad count, not a huge allocation
		d.fail()
	}
	f.Runs = make([]followup.Run, 0, int(min(n, uint64(len(d.b)))))
	for i := uint64(0); i < n && d.err == nil; i++ {
		var run followup.Run
		run.Attempt = int(d.varint())
		run.StartedAt = d.time()
		run.FinishedAt = d.time()
		run.DurationMS = d.varint()
		run.Outcome = followup.Outcome(d.string())
		run.HTTPStatus = int(d.varint())
		run.Error = d.string()
		f.Runs = append(f.Runs, run)
	}
	f.CreatedAt = d.time()
	f.UpdatedAt = d.time()
	if flags&hasSettledAt != 0 {
		t := d.time()
		f.SettledAt = &t
	}
	f.Version = d.varint()
	f.NextAttemptAt = d.time()
	f.LeaseUntil = d.time()
	var r record
	if flags&hasKeyExpiry != 0 {
		r.keyExpiresAt = d.time()
	}
	if flags&hasRearmedFrom != 0 {
		f.RearmedFrom = d.string()
	}
	if flags&hasSweepAt != 0 {
		f.SweepAt = d.time()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return record{}, fmt.Errorf("decode record: %w", d.err)
	}
	r.f = f
	return r, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime keeps the instant to the nanosecond; the location is not kept
// (decoded times are UTC). The zero time round-trips as zero.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

var errCorrupt = errors.New("corrupt or truncated record")

// decoder reads varints and strings, remembering the first error so the
// caller checks once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n]) // copies out of the transaction's memory
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= uint64(time.Second) {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
