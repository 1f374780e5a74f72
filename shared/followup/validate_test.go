package followup_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

func TestParseCreate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name  string
		body  string
		code  followup.Code // empty: valid
		field string
	}{
		{"minimal delay", `{"thread_id":"t","prompt":"p","delay_seconds":60}`, "", ""},
		{"run_at with offset", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T16:00:00.5+01:00"}`, "", ""},
		{"run_at lower-case t and z", `{"thread_id":"t","prompt":"p","run_at":"2026-11-29t19:00:00z"}`, "", ""},
		{"run_at leap second", `{"thread_id":"t","prompt":"p","run_at":"2026-12-31T23:59:60Z"}`, "", ""},
		{"huge integer is a number, checked against the range later", `{"thread_id":"t","prompt":"p","delay_seconds":100000000000000000000000}`, "", ""},
		{"metadata with line separators measured as UTF-8", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{"k":"` + strings.Repeat("\u2028", 1000) + strings.Repeat("x", 1088) + `"}}`, "", ""},
		{"metadata measured re-encoded", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{"k":"` + strings.Repeat(`\u00e9`, 2044) + `"}}`, "", ""},
		{"run_at local with zone", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T16:00:00","timezone":"Europe/Paris"}`, "", ""},
		{"every optional field", `{"thread_id":"t/1 é","prompt":"p","delay_seconds":60,"reason":"r","originating_run_id":"run","metadata":{"a":[1,2]}}`, "", ""},
		{"nulls are absent", `{"thread_id":"t","prompt":"p","delay_seconds":60,"reason":null,"metadata":null,"run_at":null,"timezone":null}`, "", ""},
		{"empty optional strings are absent", `{"thread_id":"t","prompt":"p","delay_seconds":60,"reason":"","originating_run_id":"","timezone":""}`, "", ""},
		{"surrogate pair is fine", `{"thread_id":"a\ud83d\ude00b","prompt":"p","delay_seconds":60}`, "", ""},
		{"escaped backslash before u is text", `{"thread_id":"a\\ud800b","prompt":"p","delay_seconds":60}`, "", ""},
		{"thread_id at limit", `{"thread_id":"` + long(256) + `","prompt":"p","delay_seconds":60}`, "", ""},
		{"thread_id with U+FFFD, not a noncharacter", `{"thread_id":"a\ufffdb","prompt":"p","delay_seconds":60}`, "", ""},
		{"run_at with twelve fraction digits", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T16:00:00.123456789123Z"}`, "", ""},
		{"local run_at with thirty fraction digits", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T16:00:00.123456789012345678901234567890","timezone":"UTC"}`, "", ""},
		{"metadata 32 levels deep", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":` + nested(32) + `}`, "", ""},
		{"metadata with brackets inside strings is not deep", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{"k":"` + strings.Repeat("[{", 100) + `\"["}}`, "", ""},
		{"metadata escapes weighed as the minimal encoding", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{"k":"` + strings.Repeat(`\/`, 4080) + `"}}`, "", ""},

		{"syntax error", `{"thread_id":`, followup.CodeInvalidJSON, ""},
		{"empty body", ``, followup.CodeInvalidJSON, ""},
		{"array", `[{"thread_id":"t"}]`, followup.CodeInvalidJSON, ""},
		{"scalar", `42`, followup.CodeInvalidJSON, ""},
		{"string", `"x"`, followup.CodeInvalidJSON, ""},
		{"null body", `null`, followup.CodeInvalidJSON, ""},
		{"trailing data", `{"thread_id":"t","prompt":"p","delay_seconds":60} {}`, followup.CodeInvalidJSON, ""},
		{"trailing garbage", `{"thread_id":"t","prompt":"p","delay_seconds":60}x`, followup.CodeInvalidJSON, ""},

		{"unknown field", `{"thread_id":"t","prompt":"p","delay_seconds":60,"colour":"red"}`, followup.CodeInvalidArgument, "colour"},
		{"duplicate field", `{"thread_id":"t","thread_id":"u","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id missing", `{"prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id null", `{"thread_id":null,"prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id empty", `{"thread_id":"","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id number", `{"thread_id":7,"prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id too long", `{"thread_id":"` + long(257) + `","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id multibyte too long", `{"thread_id":"` + strings.Repeat("é", 129) + `","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id control C0", `{"thread_id":"a\nb","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id DEL", `{"thread_id":"a` + "\x7f" + `b","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id C1", `{"thread_id":"a\u0085b","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id dot", `{"thread_id":".","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id dot dot", `{"thread_id":"..","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id invalid UTF-8", "{\"thread_id\":\"a\xffb\",\"prompt\":\"p\",\"delay_seconds\":60}", followup.CodeInvalidArgument, "thread_id"},
		{"thread_id lone surrogate", `{"thread_id":"a\ud800b","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id U+FFFF", `{"thread_id":"a\uffffb","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id U+FFFE", `{"thread_id":"a` + "\uFFFE" + `b","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id U+FDD0", `{"thread_id":"a\ufdd0b","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id U+FDEF", `{"thread_id":"` + "\uFDEF" + `","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id U+1FFFF", `{"thread_id":"a\ud83f\udfffb","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"thread_id U+10FFFE", `{"thread_id":"` + "\U0010FFFE" + `","prompt":"p","delay_seconds":60}`, followup.CodeInvalidArgument, "thread_id"},
		{"metadata 33 levels deep", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":` + nested(33) + `}`, followup.CodeInvalidArgument, "metadata"},
		{"prompt nested deeply names the prompt", `{"thread_id":"t","prompt":` + nested(40) + `,"delay_seconds":60}`, followup.CodeInvalidArgument, "prompt"},
		{"an unknown field nested deeply names it", `{"thread_id":"t","prompt":"p","delay_seconds":60,"x\"y":` + nested(40) + `}`, followup.CodeInvalidArgument, `x"y`},
		{"metadata 6000 levels deep", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":` + nested(6000) + `}`, followup.CodeInvalidArgument, "metadata"},
		{"metadata escapes over the limit", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{"k":"` + strings.Repeat(`\n`, 2045) + `"}}`, followup.CodeInvalidArgument, "metadata"},
		{"prompt lone low surrogate", `{"thread_id":"t","prompt":"\udc00","delay_seconds":60}`, followup.CodeInvalidArgument, "prompt"},
		{"prompt missing", `{"thread_id":"t","delay_seconds":60}`, followup.CodeInvalidArgument, "prompt"},
		{"prompt blank", `{"thread_id":"t","prompt":" \n\t ","delay_seconds":60}`, followup.CodeInvalidArgument, "prompt"},
		{"prompt not string", `{"thread_id":"t","prompt":["p"],"delay_seconds":60}`, followup.CodeInvalidArgument, "prompt"},
		{"prompt too long", `{"thread_id":"t","prompt":"` + long(32<<10+1) + `","delay_seconds":60}`, followup.CodeInvalidArgument, "prompt"},
		{"prompt invalid UTF-8", "{\"thread_id\":\"t\",\"prompt\":\"\xc3\x28\",\"delay_seconds\":60}", followup.CodeInvalidArgument, "prompt"},
		{"neither delay nor run_at", `{"thread_id":"t","prompt":"p"}`, followup.CodeInvalidArgument, "delay_seconds"},
		{"both delay and run_at", `{"thread_id":"t","prompt":"p","delay_seconds":60,"run_at":"2026-11-27T16:00:00Z"}`, followup.CodeInvalidArgument, "delay_seconds"},
		{"delay as string", `{"thread_id":"t","prompt":"p","delay_seconds":"60"}`, followup.CodeInvalidArgument, "delay_seconds"},
		{"delay fractional", `{"thread_id":"t","prompt":"p","delay_seconds":60.5}`, followup.CodeInvalidArgument, "delay_seconds"},
		{"delay 60.0", `{"thread_id":"t","prompt":"p","delay_seconds":60.0}`, followup.CodeInvalidArgument, "delay_seconds"},
		{"delay exponent", `{"thread_id":"t","prompt":"p","delay_seconds":6e1}`, followup.CodeInvalidArgument, "delay_seconds"},
		{"delay bool", `{"thread_id":"t","prompt":"p","delay_seconds":true}`, followup.CodeInvalidArgument, "delay_seconds"},
		{"run_at empty", `{"thread_id":"t","prompt":"p","run_at":""}`, followup.CodeInvalidArgument, "run_at"},
		{"run_at empty beside delay", `{"thread_id":"t","prompt":"p","delay_seconds":60,"run_at":""}`, followup.CodeInvalidArgument, "delay_seconds"},
		{"run_at offset hour 24", `{"thread_id":"t","prompt":"p","run_at":"2026-11-29T19:00:00+24:00"}`, followup.CodeInvalidArgument, "run_at"},
		{"run_at offset minute 60", `{"thread_id":"t","prompt":"p","run_at":"2026-11-29T19:00:00+23:60"}`, followup.CodeInvalidArgument, "run_at"},
		{"run_at comma fraction", `{"thread_id":"t","prompt":"p","run_at":"2026-11-29T19:00:00,5Z"}`, followup.CodeInvalidArgument, "run_at"},
		{"run_at without seconds", `{"thread_id":"t","prompt":"p","run_at":"2026-11-29T19:00Z"}`, followup.CodeInvalidArgument, "run_at"},
		{"run_at month 13", `{"thread_id":"t","prompt":"p","run_at":"2026-13-29T19:00:00Z"}`, followup.CodeInvalidArgument, "run_at"},
		{"timezone with delay", `{"thread_id":"t","prompt":"p","delay_seconds":60,"timezone":"UTC"}`, followup.CodeInvalidArgument, "timezone"},
		{"timezone with offset run_at", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T16:00:00Z","timezone":"UTC"}`, followup.CodeInvalidArgument, "timezone"},
		{"local run_at without zone", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T16:00:00"}`, followup.CodeInvalidArgument, "timezone"},
		{"unknown zone", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T16:00:00","timezone":"Mars/Olympus"}`, followup.CodeInvalidArgument, "timezone"},
		{"Local zone refused", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T16:00:00","timezone":"Local"}`, followup.CodeInvalidArgument, "timezone"},
		{"run_at garbage", `{"thread_id":"t","prompt":"p","run_at":"tomorrow"}`, followup.CodeInvalidArgument, "run_at"},
		{"run_at number", `{"thread_id":"t","prompt":"p","run_at":1764259200}`, followup.CodeInvalidArgument, "run_at"},
		{"run_at in DST gap", `{"thread_id":"t","prompt":"p","run_at":"2026-03-29T02:30:00","timezone":"Europe/Paris"}`, followup.CodeInvalidArgument, "run_at"},
		{"reason too long", `{"thread_id":"t","prompt":"p","delay_seconds":60,"reason":"` + long(1025) + `"}`, followup.CodeInvalidArgument, "reason"},
		{"reason not string", `{"thread_id":"t","prompt":"p","delay_seconds":60,"reason":{}}`, followup.CodeInvalidArgument, "reason"},
		{"originating_run_id too long", `{"thread_id":"t","prompt":"p","delay_seconds":60,"originating_run_id":"` + long(257) + `"}`, followup.CodeInvalidArgument, "originating_run_id"},
		{"metadata lone surrogate value", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{"a":"\ud800"}}`, followup.CodeInvalidArgument, "metadata"},
		{"metadata lone surrogate key", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{"\udc00":1}}`, followup.CodeInvalidArgument, "metadata"},
		{"metadata array", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":[1]}`, followup.CodeInvalidArgument, "metadata"},
		{"metadata string", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":"x"}`, followup.CodeInvalidArgument, "metadata"},
		{"metadata too large", `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{"k":"` + long(4<<10) + `"}}`, followup.CodeInvalidArgument, "metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := followup.ParseCreate([]byte(tt.body))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("ParseCreate: %v", err)
				}
				return
			}
			var e *followup.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *followup.Error %s", err, tt.code)
			}
			if e.Code != tt.code || e.Field != tt.field {
				t.Fatalf("got %s field %q (%s), want %s field %q", e.Code, e.Field, e.Message, tt.code, tt.field)
			}
			if e.Message == "" {
				t.Fatal("empty message")
			}
		})
	}
}

// nested returns a JSON object nested depth levels deep: {"a":[{"a":[...]}]}
// alternating objects and arrays, the outermost an object.
func nested(depth int) string {
	var b strings.Builder
	for i := range depth {
		if i%2 == 0 {
			b.WriteString(`{"a":`)
		} else {
			b.WriteString(`[`)
		}
	}
	b.WriteString(`1`)
	for i := depth - 1; i >= 0; i-- {
		if i%2 == 0 {
			b.WriteString(`}`)
		} else {
			b.WriteString(`]`)
		}
	}
	return b.String()
}

// A metadata value 6,000 levels deep is refused without building it: the
// refusal costs about what the body weighs, not megabytes.
func TestDeepMetadataRefusedCheaply(t *testing.T) {
	body := []byte(`{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":` + nested(6000) + `}`)
	allocs := testing.AllocsPerRun(5, func() { _, _ = followup.ParseCreate(body) })
	var ms1, ms2 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	_, err := followup.ParseCreate(body)
	runtime.ReadMemStats(&ms2)
	var e *followup.Error
	if !errors.As(err, &e) || e.Code != followup.CodeInvalidArgument || e.Field != "metadata" || !strings.Contains(e.Message, "32 levels") {
		t.Fatalf("err = %v", err)
	}
	// Decoding a value 6,000 deep into maps and slices allocates tens of
	// thousands of times; refusing it from its bytes does not.
	if allocs > 200 {
		t.Fatalf("refusing a %d-byte body allocated %v times", len(body), allocs)
	}
	if grew := ms2.TotalAlloc - ms1.TotalAlloc; grew > 8*uint64(len(body)) {
		t.Fatalf("refusing a %d-byte body allocated %d bytes", len(body), grew)
	}
}

func TestRunAtFractionTruncated(t *testing.T) {
	got, err := followup.ParseRunAt("2026-11-27T16:00:00.123456789987654321Z", "")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 27, 16, 0, 0, 123456789, time.UTC); !got.Equal(want) {
		t.Fatalf("ParseRunAt = %s, want %s (digits past nanoseconds truncated)", got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	local, err := followup.ParseRunAt("2026-11-27T16:00:00.9999999999", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 27, 15, 0, 0, 999999999, time.UTC); !local.Equal(want) {
		t.Fatalf("ParseRunAt local = %s, want %s", local, want)
	}
}

func TestMetadataMeasuredCompact(t *testing.T) {
	// 4 KiB of content spread out by white space is still within the limit.
	val := strings.Repeat("a", 4<<10-10)
	body := `{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{  "k" :   "` + val + `"  }}`
	r, err := followup.ParseCreate([]byte(body))
	if err != nil {
		t.Fatalf("ParseCreate: %v", err)
	}
	if want := `{"k":"` + val + `"}`; string(r.Metadata) != want {
		t.Fatalf("metadata not compacted: %d bytes", len(r.Metadata))
	}
}

func TestHashIgnoresOrderAndSpace(t *testing.T) {
	a, err := followup.ParseCreate([]byte(`{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{"a":1,"b":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := followup.ParseCreate([]byte(`{ "metadata" : {"b":2, "a":1}, "delay_seconds":60, "prompt":"p", "thread_id":"t" }`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := followup.ParseCreate([]byte(`{"thread_id":"t","prompt":"p","delay_seconds":61,"metadata":{"a":1,"b":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Error("same JSON, different hash")
	}
	d, err := followup.ParseCreate([]byte(`{"thread_id":"t","prompt":"p","delay_seconds":60,"metadata":{"a":1,"b":2},"reason":"","run_at":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != d.Hash() {
		t.Error("absent members (null, empty optional strings) changed the hash")
	}
	if a.Hash() == c.Hash() {
		t.Error("different JSON, same hash")
	}
}

func TestWhen(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	lim := followup.DefaultLimits
	tests := []struct {
		name  string
		body  string
		want  time.Time
		code  followup.Code
		field string
	}{
		{"delay min", `{"thread_id":"t","prompt":"p","delay_seconds":60}`, now.Add(time.Minute), "", ""},
		{"delay max", `{"thread_id":"t","prompt":"p","delay_seconds":86400}`, now.Add(24 * time.Hour), "", ""},
		{"delay below", `{"thread_id":"t","prompt":"p","delay_seconds":5}`, time.Time{}, followup.CodeOutOfRange, "delay_seconds"},
		{"delay negative", `{"thread_id":"t","prompt":"p","delay_seconds":-60}`, time.Time{}, followup.CodeOutOfRange, "delay_seconds"},
		{"delay above", `{"thread_id":"t","prompt":"p","delay_seconds":86401}`, time.Time{}, followup.CodeOutOfRange, "delay_seconds"},
		{"run_at in range", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T13:00:00Z"}`, now.Add(time.Hour), "", ""},
		{"run_at in past", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T11:00:00Z"}`, time.Time{}, followup.CodeOutOfRange, "run_at"},
		{"run_at too far", `{"thread_id":"t","prompt":"p","run_at":"2026-11-29T12:00:00Z"}`, time.Time{}, followup.CodeOutOfRange, "run_at"},
		{"local time", `{"thread_id":"t","prompt":"p","run_at":"2026-11-27T14:00:00","timezone":"Europe/Paris"}`, now.Add(time.Hour), "", ""},
		{"delay beyond int64", `{"thread_id":"t","prompt":"p","delay_seconds":99999999999999999999999}`, time.Time{}, followup.CodeOutOfRange, "delay_seconds"},
		{"delay below int64", `{"thread_id":"t","prompt":"p","delay_seconds":-99999999999999999999999}`, time.Time{}, followup.CodeOutOfRange, "delay_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := followup.ParseCreate([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.When(now, lim)
			if tt.code != "" {
				var e *followup.Error
				if !errors.As(err, &e) || e.Code != tt.code || e.Field != tt.field {
					t.Fatalf("err = %v, want %s on %s", err, tt.code, tt.field)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("When = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestOutOfRangeMessage(t *testing.T) {
	for delay, want := range map[string]string{
		"5":                       "delay_seconds out of range: must be in 60..86400, got 5",
		"99999999999999999999999": "delay_seconds out of range: must be in 60..86400, got 99999999999999999999999",
	} {
		r, err := followup.ParseCreate([]byte(`{"thread_id":"t","prompt":"p","delay_seconds":` + delay + `}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err = r.When(time.Now(), followup.DefaultLimits); err == nil || err.Error() != want {
			t.Fatalf("message %q, want %q", err, want)
		}
	}
}

func TestParseRunAtDST(t *testing.T) {
	tests := []struct {
		name, wall, zone string
		want             string // RFC 3339 UTC, empty for a gap
	}{
		{"winter", "2026-01-15T09:00:00", "Europe/Paris", "2026-01-15T08:00:00Z"},
		{"summer", "2026-07-15T09:00:00", "Europe/Paris", "2026-07-15T07:00:00Z"},
		{"gap", "2026-03-29T02:30:00", "Europe/Paris", ""},
		{"overlap takes earlier", "2026-10-25T02:30:00", "Europe/Paris", "2026-10-25T00:30:00Z"},
		{"new york overlap", "2026-11-01T01:30:00", "America/New_York", "2026-11-01T05:30:00Z"},
		{"new york gap", "2026-03-08T02:30:00", "America/New_York", ""},
		{"UTC", "2026-03-08T02:30:00.25", "UTC", "2026-03-08T02:30:00.25Z"},
		{"half-hour zone", "2026-06-01T12:00:00", "Asia/Kolkata", "2026-06-01T06:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := followup.ParseRunAt(tt.wall, tt.zone)
			if tt.want == "" {
				if followup.ErrorCode(err) != followup.CodeInvalidArgument {
					t.Fatalf("got %v, %v; want invalid_argument", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := got.Format(time.RFC3339Nano); s != tt.want {
				t.Fatalf("got %s, want %s", s, tt.want)
			}
		})
	}
}

func TestValidateIdempotencyKey(t *testing.T) {
	for _, k := range []string{"a", "A-z_0.9:x", strings.Repeat("k", 128)} {
		if err := followup.ValidateIdempotencyKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []string{"", strings.Repeat("k", 129), "a b", "a/b", "é", "a\n"} {
		err := followup.ValidateIdempotencyKey(k)
		var e *followup.Error
		if !errors.As(err, &e) || e.Code != followup.CodeInvalidArgument || e.Field != "Idempotency-Key" {
			t.Errorf("%q: got %v, want invalid_argument on Idempotency-Key", k, err)
		}
	}
}

// FuzzDecodeObject: the one-pass split of a valid body and the decoder
// agree on every body, valid or not.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : 1 , "b":[1,{"c":"}"}], "\u0061x":"q\"}" } `, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`,
		`[1]`, `"x"`, `null`, `{"a":tru}`, `{"a":1} x`, "{\"a\":\"\xff\"}", `{"n":-1.5e3,"t":true,"f":false,"z":null}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fast, fastOrder, fastErr := followup.DecodeObjectForTest([]byte(body))
		slow, slowOrder, slowErr := followup.DecodeObjectSlowForTest([]byte(body))
		if fmt.Sprint(fastErr) != fmt.Sprint(slowErr) {
			t.Fatalf("%q: errors differ: %v, decoder: %v", body, fastErr, slowErr)
		}
		if !slices.Equal(fastOrder, slowOrder) || len(fast) != len(slow) {
			t.Fatalf("%q: members %q, decoder %q", body, fastOrder, slowOrder)
		}
		for k, v := range slow {
			if !bytes.Equal(fast[k], v) {
				t.Fatalf("%q: member %q = %s, decoder %s", body, k, fast[k], v)
			}
		}
	})
}

// FuzzParseOwnMessage: the fast reading of a queue message agrees with
// the decoder whenever it reads one.
func FuzzParseOwnMessage(f *testing.F) {
	f.Add("fu_01", "th_01")
	f.Add("fu<1>", "team/a b")
	f.Add(`fu"`, "t\\x")
	f.Fuzz(func(t *testing.T, id, thread string) {
		body, _ := json.Marshal(followup.Message{FollowupID: id, ThreadID: thread})
		for _, b := range [][]byte{body, []byte(`{"followup_id":"` + id + `","thread_id":"` + thread + `"}`)} {
			fast, ok := followup.ParseOwnMessageForTest(b)
			if !ok {
				continue
			}
			var slow followup.Message
			if err := json.Unmarshal(b, &slow); err != nil || slow != fast {
				t.Fatalf("%s: read %+v, decoder %+v (%v)", b, fast, slow, err)
			}
		}
	})
}
