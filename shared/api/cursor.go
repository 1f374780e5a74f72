package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/followups/followups/shared/followup"
)

// A cursor is the position after the last followup of a page, bound to the
// listing it was issued for (thread and status filter) and sealed with an
// HMAC, so a garbled, forged or borrowed cursor is refused instead of
// silently listing from somewhere else.
//
// Layout before base64url: 8-byte run_at (Unix ns), the id, then the first 16 bytes of HMAC-SHA256(key, thread \x00 status \x00 payload).

const macLen = 16

func encodeCursor(key []byte, q followup.ListQuery, p followup.Position) string {
	payload := make([]byte, 0, 8+len(p.ID)+macLen)
	payload = binary.BigEndian.AppendUint64(payload, uint64(p.RunAt.UnixNano()))
	payload = append(payload, p.ID...)
	payload = append(payload, cursorMAC(key, q, payload)...)
	return base64.RawURLEncoding.EncodeToString(payload)
}

func decodeCursor(key []byte, q followup.ListQuery, s string) (followup.Position, error) {
	bad := followup.FieldErrorf(followup.CodeInvalidArgument, "cursor", "cursor was not issued for this listing")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < 9+macLen {
		return followup.Position{}, bad
	}
	payload, mac := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	if !hmac.Equal(mac, cursorMAC(key, q, payload)) {
		return followup.Position{}, bad
	}
	ns := int64(binary.BigEndian.Uint64(payload[:8]))
	return followup.Position{RunAt: time.Unix(0, ns).UTC(), ID: string(payload[8:])}, nil
}

func cursorMAC(key []byte, q followup.ListQuery, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(q.ThreadID))
	m.Write([]byte{0})
	m.Write([]byte(q.Status))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)[:macLen]
}
