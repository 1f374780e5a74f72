package dispatch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a signature's timestamp may lie from now when
// Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// The errors of Verify; match them with errors.Is. A thread service answers
// any of them with 401.
var (
	ErrSignatureMissing   = errors.New("no " + SignatureHeader + " header")
	ErrSignatureMalformed = errors.New("malformed " + SignatureHeader + " header")
	ErrSignatureMismatch  = errors.New(SignatureHeader + " does not match the body")
	ErrSignatureTimestamp = errors.New(SignatureHeader + " timestamp is outside the tolerance")
)

// Sign returns the X-Followup-Signature value for body sent at t:
// "t={unix seconds},v1={hex HMAC-SHA256(secret, "{t}.{body}")}".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(signature(secret, ts, body))
}

// Verify checks header, an X-Followup-Signature value, against the raw body
// the thread received: one of its v1 signatures must be secret's, and its
// timestamp within tolerance of now either way (zero or less means
// DefaultTolerance), which bounds how long a captured request can be
// replayed. Unknown keys in the header are ignored, so a signer can add a
// scheme without breaking verifiers. It returns nil or an error wrapping
// ErrSignatureMissing, ErrSignatureMalformed, ErrSignatureMismatch or
// ErrSignatureTimestamp.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("verify " + SignatureHeader + ": the signing secret is empty")
	}
	if strings.TrimSpace(header) == "" {
		return ErrSignatureMissing
	}
	ts, sigs, err := parseSignature(header)
	if err != nil {
		return err
	}
	want := signature(secret, ts, body)
	matched := false
	for _, s := range sigs {
		// Compare every candidate in constant time; which one matched leaks nothing.
		matched = hmac.Equal(s, want) || matched
	}
	if !matched {
		return ErrSignatureMismatch
	}
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	signed := time.Unix(sec, 0)
	if skew := now.Sub(signed); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: signed at %s, %s from now, tolerance %s",
			ErrSignatureTimestamp, signed.UTC().Format(time.RFC3339), skew.Abs().Round(time.Second), tolerance)
	}
	return nil
}

// signature is HMAC-SHA256(secret, "{ts}.{body}").
func signature(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// parseSignature splits "t=…,v1=…[,v1=…]" into the timestamp, as sent, and
// the decoded v1 signatures.
func parseSignature(header string) (ts string, sigs [][]byte, err error) {
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", nil, fmt.Errorf("%w: %q is not key=value", ErrSignatureMalformed, part)
		}
		switch k {
		case "t":
			if ts != "" {
				return "", nil, fmt.Errorf("%w: more than one t=", ErrSignatureMalformed)
			}
			if !isDigits(v) || len(v) > 18 {
				return "", nil, fmt.Errorf("%w: t=%q is not unix seconds", ErrSignatureMalformed, v)
			}
			ts = v
		case "v1":
			s, err := hex.DecodeString(v)
			if err != nil || len(s) != sha256.Size {
				return "", nil, fmt.Errorf("%w: v1 is not %d hex digits", ErrSignatureMalformed, 2*sha256.Size)
			}
			sigs = append(sigs, s)
		}
	}
	switch {
	case ts == "":
		return "", nil, fmt.Errorf("%w: no t=", ErrSignatureMalformed)
	case len(sigs) == 0:
		return "", nil, fmt.Errorf("%w: no v1=", ErrSignatureMalformed)
	}
	return ts, sigs, nil
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
