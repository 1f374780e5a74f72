package dispatch

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignMatchesTheDocumentedScheme(t *testing.T) {
	// Computed independently: printf '%s' '1700000000.{"role":"user"}' | openssl dgst -sha256 -hmac whsec_test
	const want = "t=1700000000,v1=071f3a9ce4d1298a062902b95325a88b72702824414c2bca5799671c00f4dc73"
	got := Sign([]byte("whsec_test"), time.Unix(1700000000, 999_000_000), []byte(`{"role":"user"}`))
	if got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("whsec_test")
	body := []byte(`{"role":"user","content":"hi"}`)
	signedAt := time.Unix(1700000000, 0)
	good := Sign(secret, signedAt, body)
	v1 := strings.TrimPrefix(good, "t=1700000000,")
	other := strings.TrimPrefix(Sign([]byte("other"), signedAt, body), "t=1700000000,")

	tests := []struct {
		name      string
		secret    []byte
		header    string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error // nil, a sentinel, or errAny
	}{
		{"valid", secret, good, body, signedAt, time.Minute, nil},
		{"valid at the edge of the tolerance", secret, good, body, signedAt.Add(time.Minute), time.Minute, nil},
		{"valid with spaces", secret, "t=1700000000, " + v1, body, signedAt, time.Minute, nil},
		{"rotated secret, second v1 matches", secret, "t=1700000000," + other + "," + v1, body, signedAt, time.Minute, nil},
		{"unknown scheme ignored", secret, "t=1700000000,v0=abc," + v1, body, signedAt, time.Minute, nil},
		{"default tolerance", secret, good, body, signedAt.Add(4 * time.Minute), 0, nil},
		{"tampered body", secret, good, []byte(`{"role":"user","content":"hI"}`), signedAt, time.Minute, ErrSignatureMismatch},
		{"wrong secret", []byte("whsec_wrong"), good, body, signedAt, time.Minute, ErrSignatureMismatch},
		{"timestamp changed", secret, "t=1700000001," + v1, body, signedAt, time.Minute, ErrSignatureMismatch},
		{"stale", secret, good, body, signedAt.Add(time.Minute + time.Second), time.Minute, ErrSignatureTimestamp},
		{"stale by the default tolerance", secret, good, body, signedAt.Add(6 * time.Minute), 0, ErrSignatureTimestamp},
		{"from the future", secret, good, body, signedAt.Add(-2 * time.Minute), time.Minute, ErrSignatureTimestamp},
		{"missing", secret, "", body, signedAt, time.Minute, ErrSignatureMissing},
		{"blank", secret, "  ", body, signedAt, time.Minute, ErrSignatureMissing},
		{"garbage", secret, "garbage", body, signedAt, time.Minute, ErrSignatureMalformed},
		{"no t", secret, v1, body, signedAt, time.Minute, ErrSignatureMalformed},
		{"no v1", secret, "t=1700000000", body, signedAt, time.Minute, ErrSignatureMalformed},
		{"t not a number", secret, "t=soon," + v1, body, signedAt, time.Minute, ErrSignatureMalformed},
		{"negative t", secret, "t=-1," + v1, body, signedAt, time.Minute, ErrSignatureMalformed},
		{"two t", secret, "t=1700000000,t=1700000000," + v1, body, signedAt, time.Minute, ErrSignatureMalformed},
		{"v1 not hex", secret, "t=1700000000,v1=zz", body, signedAt, time.Minute, ErrSignatureMalformed},
		{"v1 too short", secret, "t=1700000000,v1=abcd", body, signedAt, time.Minute, ErrSignatureMalformed},
		{"empty secret", nil, good, body, signedAt, time.Minute, errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, tt.body, tt.now, tt.tolerance)
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("Verify = %v, want nil", err)
			case tt.want == errAny && err == nil:
				t.Error("Verify = nil, want an error")
			case tt.want != nil && tt.want != errAny && !errors.Is(err, tt.want):
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// errAny stands for "some error" in tables.
var errAny = errors.New("any error")
