package dynamo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/followups/followups/shared/followup"
)

// Key attributes of the table and of its indexes.
const (
	attrPK       = "pk"
	attrSK       = "sk"
	attrThreadPK = "thread_pk"
	attrRunAtSK  = "run_at_sk"
	attrSweepPK  = "sweep_pk"
	attrSweepSK  = "sweep_sk"
	attrExpires  = "expires_at" // the table's TTL attribute
)

// sweepPartition is sweep_pk's one value: the sweep reads every pending
// followup in one Query.
const sweepPartition = "pending"

// Attributes of a followup item.
const (
	attrID            = "id"
	attrThreadID      = "thread_id"
	attrPrompt        = "prompt"
	attrReason        = "reason"
	attrOriginRun     = "originating_run_id"
	attrMetadata      = "metadata"
	attrRunAt         = "run_at"
	attrDelay         = "delay_seconds_requested"
	attrStatus        = "status"
	attrAttempts      = "attempts"
	attrLastError     = "last_error"
	attrDropReason    = "drop_reason"
	attrRuns          = "runs"
	attrCreatedAt     = "created_at"
	attrUpdatedAt     = "updated_at"
	attrSettledAt     = "settled_at"
	attrVersion       = "version"
	attrNextAttemptAt = "next_attempt_at"
	attrLeaseUntil    = "lease_until"
	attrRearmedFrom   = "rearmed_from"
)

// Attributes of a run, an element of runs.
const (
	attrAttempt    = "attempt"
	attrStartedAt  = "started_at"
	attrFinishedAt = "finished_at"
	attrDurationMS = "duration_ms"
	attrOutcome    = "outcome"
	attrHTTPStatus = "http_status"
	attrError      = "error"
)

// Attributes of an idempotency key item and of a run slot item.
const (
	attrFollowupID   = "followup_id"
	attrRequestHash  = "request_hash"
	attrKeyExpiresAt = "key_expires_at"
)

// Attributes of a dead letter item.
const (
	attrBody       = "body"
	attrAttributes = "attributes"
	attrReceivedAt = "received_at"
)

// Sort key values: each item type has one item per partition key.
const (
	skFollowup   = "F"
	skKey        = "K"
	skSlot       = "R"
	skDeadLetter = "D"
)

type item = map[string]types.AttributeValue

func followupKey(id string) item {
	return item{attrPK: str("F#" + id), attrSK: str(skFollowup)}
}

func idempotencyKey(key string) item {
	return item{attrPK: str("K#" + key), attrSK: str(skKey)}
}

// slotKey is the run slot of (thread, run). The thread id is prefixed with
// its length, so no (thread, run) pair can spell another's key whatever
// either holds ('#' included).
func slotKey(thread, run string) item {
	return item{attrPK: str("R#" + strconv.Itoa(len(thread)) + ":" + thread + "#" + run), attrSK: str(skSlot)}
}

func deadLetterKey(id string) item {
	return item{attrPK: str("D#" + id), attrSK: str(skDeadLetter)}
}

// timeLayout is RFC 3339 in UTC with exactly nine fractional digits: it
// keeps every nanosecond, and its fixed width makes string order time
// order, so conditions compare stored times with <= and the index sorts by
// run_at. It holds years 0000 to 9999.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) { return time.Parse(timeLayout, s) }

// runAtSK is a followup's sort key in the thread index: run_at then id,
// the listing order.
func runAtSK(runAt time.Time, id string) string { return formatTime(runAt) + "#" + id }

// sweepSK is a pending followup's sort key in the sweep index: its sweep
// time, then its id.
func sweepSK(at time.Time, id string) string { return formatTime(at) + "#" + id }

// parseSweepSK reads what sweepSK wrote.
func parseSweepSK(sk string) (time.Time, string, error) {
	at, id, ok := strings.Cut(sk, "#")
	if !ok {
		return time.Time{}, "", fmt.Errorf("sweep_sk %q has no id", sk)
	}
	t, err := parseTime(at)
	return t, id, err
}

// ttlSeconds is t as a TTL value: Unix seconds, rounded up so DynamoDB
// never removes an item before t.
func ttlSeconds(t time.Time) types.AttributeValue {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return num(s)
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num[T int | int32 | int64](n T) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(int64(n), 10)}
}

func timeAttr(t time.Time) types.AttributeValue { return str(formatTime(t)) }

// encodeFollowup returns f as an item. expiresAt, when not zero, is when
// TTL may remove it.
func encodeFollowup(f *followup.Followup, expiresAt time.Time) item {
	it := followupKey(f.ID)
	it[attrThreadPK] = str(f.ThreadID)
	it[attrRunAtSK] = str(runAtSK(f.RunAt, f.ID))
	it[attrID] = str(f.ID)
	it[attrThreadID] = str(f.ThreadID)
	setString(it, attrPrompt, f.Prompt)
	setString(it, attrReason, f.Reason)
	setString(it, attrOriginRun, f.OriginatingRunID)
	setString(it, attrRearmedFrom, f.RearmedFrom)
	if len(f.Metadata) > 0 {
		// Binary, so the client's JSON comes back byte for byte.
		it[attrMetadata] = &types.AttributeValueMemberB{Value: bytes.Clone(f.Metadata)}
	}
	it[attrRunAt] = timeAttr(f.RunAt)
	if f.DelaySecondsRequested != nil {
		it[attrDelay] = num(*f.DelaySecondsRequested)
	}
	it[attrStatus] = str(string(f.Status))
	it[attrAttempts] = num(f.Attempts)
	setString(it, attrLastError, f.LastError)
	setString(it, attrDropReason, string(f.DropReason))
	runs := make([]types.AttributeValue, len(f.Runs))
	for i := range f.Runs {
		runs[i] = encodeRun(&f.Runs[i])
	}
	it[attrRuns] = &types.AttributeValueMemberL{Value: runs}
	it[attrCreatedAt] = timeAttr(f.CreatedAt)
	it[attrUpdatedAt] = timeAttr(f.UpdatedAt)
	if f.SettledAt != nil {
		it[attrSettledAt] = timeAttr(*f.SettledAt)
	}
	it[attrVersion] = num(f.Version)
	// Always present, zero time included, so "next_attempt_at <= :due"
	// can be evaluated on every followup.
	it[attrNextAttemptAt] = timeAttr(f.NextAttemptAt)
	if !f.LeaseUntil.IsZero() {
		it[attrLeaseUntil] = timeAttr(f.LeaseUntil)
	}
	if !f.SweepAt.IsZero() {
		it[attrSweepPK] = str(sweepPartition)
		it[attrSweepSK] = str(sweepSK(f.SweepAt, f.ID))
	}
	if !expiresAt.IsZero() {
		it[attrExpires] = ttlSeconds(expiresAt)
	}
	return it
}

func encodeRun(r *followup.Run) types.AttributeValue {
	m := item{
		attrAttempt:    num(r.Attempt),
		attrStartedAt:  timeAttr(r.StartedAt),
		attrFinishedAt: timeAttr(r.FinishedAt),
		attrDurationMS: num(r.DurationMS),
		attrOutcome:    str(string(r.Outcome)),
	}
	if r.HTTPStatus != 0 {
		m[attrHTTPStatus] = num(r.HTTPStatus)
	}
	setString(m, attrError, r.Error)
	return &types.AttributeValueMemberM{Value: m}
}

// setString sets name to s, or leaves it out when s is empty: absent and
// empty mean the same for every optional string.
func setString(it item, name, s string) {
	if s != "" {
		it[name] = str(s)
	}
}

// decodeFollowup reads a followup item.
func decodeFollowup(it item) (*followup.Followup, error) {
	d := decoder{it: it}
	f := &followup.Followup{
		ID:               d.str(attrID, true),
		ThreadID:         d.str(attrThreadID, true),
		Prompt:           d.str(attrPrompt, false),
		Reason:           d.str(attrReason, false),
		OriginatingRunID: d.str(attrOriginRun, false),
		RearmedFrom:      d.str(attrRearmedFrom, false),
		RunAt:            d.time(attrRunAt, true),
		Status:           followup.Status(d.str(attrStatus, true)),
		Attempts:         int(d.int(attrAttempts, true)),
		LastError:        d.str(attrLastError, false),
		DropReason:       followup.DropReason(d.str(attrDropReason, false)),
		CreatedAt:        d.time(attrCreatedAt, true),
		UpdatedAt:        d.time(attrUpdatedAt, true),
		Version:          d.int(attrVersion, true),
		NextAttemptAt:    d.time(attrNextAttemptAt, true),
		LeaseUntil:       d.time(attrLeaseUntil, false),
		Runs:             []followup.Run{},
	}
	if v, ok := it[attrMetadata]; ok {
		switch v := v.(type) {
		case *types.AttributeValueMemberB:
			f.Metadata = json.RawMessage(bytes.Clone(v.Value))
		default:
			d.fail(attrMetadata, "not binary")
		}
	}
	if _, ok := it[attrDelay]; ok {
		n := d.int(attrDelay, true)
		f.DelaySecondsRequested = &n
	}
	if _, ok := it[attrSettledAt]; ok {
		t := d.time(attrSettledAt, true)
		f.SettledAt = &t
	}
	if sk := d.str(attrSweepSK, false); sk != "" {
		at, _, err := parseSweepSK(sk)
		if err != nil {
			d.fail(attrSweepSK, err.Error())
		}
		f.SweepAt = at
	}
	if v, ok := it[attrRuns]; ok {
		l, isList := v.(*types.AttributeValueMemberL)
		if !isList {
			d.fail(attrRuns, "not a list")
		} else {
			for i, rv := range l.Value {
				m, isMap := rv.(*types.AttributeValueMemberM)
				if !isMap {
					d.fail(fmt.Sprintf("%s[%d]", attrRuns, i), "not a map")
					continue
				}
				rd := decoder{it: m.Value}
				f.Runs = append(f.Runs, followup.Run{
					Attempt:    int(rd.int(attrAttempt, true)),
					StartedAt:  rd.time(attrStartedAt, true),
					FinishedAt: rd.time(attrFinishedAt, true),
					DurationMS: rd.int(attrDurationMS, true),
					Outcome:    followup.Outcome(rd.str(attrOutcome, true)),
					HTTPStatus: int(rd.int(attrHTTPStatus, false)),
					Error:      rd.str(attrError, false),
				})
				if rd.err != nil {
					d.fail(fmt.Sprintf("%s[%d]", attrRuns, i), rd.err.Error())
				}
			}
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode followup item %v: %w", pkOf(it), d.err)
	}
	return f, nil
}

// pkOf returns an item's partition key, for errors.
func pkOf(it item) string {
	if s, ok := it[attrPK].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return "(no pk)"
}

// decoder reads typed attributes from an item and keeps the first problem.
type decoder struct {
	it  item
	err error
}

func (d *decoder) fail(name, problem string) {
	if d.err == nil {
		d.err = fmt.Errorf("attribute %s: %s", name, problem)
	}
}

func (d *decoder) str(name string, required bool) string {
	v, ok := d.it[name]
	if !ok {
		if required {
			d.fail(name, "missing")
		}
		return ""
	}
	s, ok := v.(*types.AttributeValueMemberS)
	if !ok {
		d.fail(name, "not a string")
		return ""
	}
	return s.Value
}

func (d *decoder) int(name string, required bool) int64 {
	v, ok := d.it[name]
	if !ok {
		if required {
			d.fail(name, "missing")
		}
		return 0
	}
	n, ok := v.(*types.AttributeValueMemberN)
	if !ok {
		d.fail(name, "not a number")
		return 0
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil || i < math.MinInt || i > math.MaxInt {
		d.fail(name, fmt.Sprintf("not an integer: %q", n.Value))
		return 0
	}
	return i
}

func (d *decoder) time(name string, required bool) time.Time {
	s := d.str(name, required)
	if s == "" {
		return time.Time{}
	}
	t, err := parseTime(s)
	if err != nil {
		d.fail(name, err.Error())
	}
	return t
}

// keyEntry is an idempotency key item.
type keyEntry struct {
	followupID string
	hash       string
	expiresAt  time.Time
}

// live reports whether the key still counts at now.
func (e keyEntry) live(now time.Time) bool { return now.Before(e.expiresAt) }

func encodeKey(key string, e keyEntry) item {
	it := idempotencyKey(key)
	it[attrFollowupID] = str(e.followupID)
	it[attrRequestHash] = str(e.hash)
	// Exact, for the liveness check; expires_at (whole seconds) is only
	// for TTL, which removes expired keys some time later.
	it[attrKeyExpiresAt] = timeAttr(e.expiresAt)
	it[attrExpires] = ttlSeconds(e.expiresAt)
	return it
}

func decodeKey(it item) (keyEntry, error) {
	d := decoder{it: it}
	e := keyEntry{
		followupID: d.str(attrFollowupID, true),
		hash:       d.str(attrRequestHash, false),
		expiresAt:  d.time(attrKeyExpiresAt, true),
	}
	if d.err != nil {
		return keyEntry{}, fmt.Errorf("decode idempotency key item %v: %w", pkOf(it), d.err)
	}
	return e, nil
}
