package followup

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"time"
)

// idEncoding is Crockford's base32 alphabet in lower case: URL-safe, no
// padding, and unambiguous when read aloud or copied from a log.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a new followup id: "fu_" and 26 characters, 48 bits of
// millisecond time followed by 80 random bits, so ids made close in time
// sort close together (cheap inserts in ordered stores) and never collide.
func NewID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never fails
	return "fu_" + idEncoding.EncodeToString(b[:])
}
