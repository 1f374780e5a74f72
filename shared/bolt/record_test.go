package bolt

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

func TestDecodeRecordRefusesDamage(t *testing.T) {
	delay := int64(60)
	settled := time.Unix(1900000000, 5)
	f := &followup.Followup{
		ID: "fu-1", ThreadID: "t-1", Prompt: "p", Metadata: json.RawMessage(`{}`),
		DelaySecondsRequested: &delay, Status: followup.StatusDelivered, SettledAt: &settled,
		Runs: []followup.Run{{Attempt: 1, Outcome: followup.OutcomeSuccess, Error: "e"}},
	}
	b := encodeRecord(record{f: f, keyExpiresAt: settled})
	if _, err := decodeRecord(b); err != nil {
		t.Fatalf("decode: %v", err)
	}
	for n := range len(b) {
		if _, err := decodeRecord(b[:n]); err == nil {
			t.Fatalf("decode of the first %d of %d bytes succeeded", n, len(b))
		}
	}
	if _, err := decodeRecord(append(b, 0)); err == nil {
		t.Fatalf("decode with a trailing byte succeeded")
	}
	bad := append([]byte(nil), b...)
	bad[0] = 99
	if _, err := decodeRecord(bad); err == nil {
		t.Fatalf("decode of an unknown format succeeded")
	}
}

func TestTimeKeysSortAndRoundTrip(t *testing.T) {
	times := []time.Time{
		{},
		time.Unix(-1, 999999999),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Unix(1900000000, 0),
		time.Unix(1900000000, 999999999),
		time.Unix(1900000001, 0),
	}
	var prev []byte
	for _, tm := range times {
		k := appendTimeKey(nil, tm)
		if got := parseTimeKey(k); !got.Equal(tm) {
			t.Fatalf("time key of %s reads back %s", tm, got)
		}
		if prev != nil && string(prev) >= string(k) {
			t.Fatalf("time key of %s does not sort after the previous one", tm)
		}
		prev = k
	}
	if got := parseTimeKey(appendTimeKey(nil, time.Time{})); !got.IsZero() {
		t.Fatalf("zero time reads back as %s", got)
	}
}
