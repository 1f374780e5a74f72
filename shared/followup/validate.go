package followup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones must not depend on the host: Lambda images may lack zoneinfo
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The API's size limits, in bytes of UTF-8.
const (
	MaxThreadIDBytes         = 256
	MaxPromptBytes           = 32 << 10
	MaxReasonBytes           = 1 << 10
	MaxOriginatingRunIDBytes = 256
	MaxMetadataBytes         = 4 << 10
	MaxBodyBytes             = 64 << 10
	MaxIdempotencyKeyLen     = 128
	// MaxDelayLimit is the longest max_delay a deployment may configure.
	MaxDelayLimit = 365 * 24 * time.Hour
)

// Limits bound how far ahead a followup may be scheduled.
type Limits struct {
	MinDelay time.Duration
	MaxDelay time.Duration
}

// DefaultLimits are FOLLOWUPS_MIN_DELAY and FOLLOWUPS_MAX_DELAY's defaults: 60 s to 24 h.
var DefaultLimits = Limits{MinDelay: 60 * time.Second, MaxDelay: 24 * time.Hour}

// CreateRequest is a validated POST /followups body, before its time is
// checked against the clock.
type CreateRequest struct {
	ThreadID         string
	Prompt           string
	Reason           string
	OriginatingRunID string
	Metadata         json.RawMessage // compact, or nil
	// DelaySeconds is set when the request gave a delay.
	DelaySeconds *int64
	// RunAt is set when the request gave a time.
	RunAt time.Time
	// fields are the members as sent, for Hash.
	fields map[string]json.RawMessage
	// delayLiteral is delay_seconds as written, for an error about an
	// integer too large for DelaySeconds (which then holds the nearest bound).
	delayLiteral string
}

// Hash identifies the request as JSON, so that the same body with other
// key order or white space is the same request for Idempotency-Key. It is
// computed on demand: only a create with a key needs it.
func (r *CreateRequest) Hash() string { return jsonHash(r.fields) }

var createFields = []string{"thread_id", "prompt", "delay_seconds", "run_at", "timezone", "reason", "originating_run_id", "metadata"}

// ParseCreate validates a POST /followups body against every rule of
// the API that does not depend on the clock. Errors are *Error values with
// the specific code and field.
func ParseCreate(body []byte) (*CreateRequest, error) {
	fields, err := decodeFields(body, createFields, "")
	if err != nil {
		return nil, err
	}
	var r CreateRequest
	if r.ThreadID, err = stringField(fields, "thread_id"); err != nil {
		return nil, err
	}
	if err := ValidateThreadID(r.ThreadID); err != nil {
		return nil, err
	}
	if r.Prompt, err = stringField(fields, "prompt"); err != nil {
		return nil, err
	}
	switch {
	case strings.TrimSpace(r.Prompt) == "":
		return nil, FieldErrorf(CodeInvalidArgument, "prompt", "prompt is required and must not be blank")
	case len(r.Prompt) > MaxPromptBytes:
		return nil, FieldErrorf(CodeInvalidArgument, "prompt", "prompt is too long: at most %d bytes, got %d", MaxPromptBytes, len(r.Prompt))
	}
	if err := r.parseWhen(fields); err != nil {
		return nil, err
	}
	if r.Reason, err = stringField(fields, "reason"); err != nil {
		return nil, err
	}
	if len(r.Reason) > MaxReasonBytes {
		return nil, FieldErrorf(CodeInvalidArgument, "reason", "reason is too long: at most %d bytes, got %d", MaxReasonBytes, len(r.Reason))
	}
	if r.OriginatingRunID, err = stringField(fields, "originating_run_id"); err != nil {
		return nil, err
	}
	if len(r.OriginatingRunID) > MaxOriginatingRunIDBytes {
		return nil, FieldErrorf(CodeInvalidArgument, "originating_run_id", "originating_run_id is too long: at most %d bytes, got %d", MaxOriginatingRunIDBytes, len(r.OriginatingRunID))
	}
	if err := r.parseMetadata(fields["metadata"]); err != nil {
		return nil, err
	}
	r.fields = fields
	return &r, nil
}

// parseWhen reads delay_seconds, run_at and timezone.
func (r *CreateRequest) parseWhen(fields map[string]json.RawMessage) error {
	delay, hasDelay := present(fields, "delay_seconds")
	// run_at is not one of the optional strings for which "" means absent:
	// an empty run_at is a time that does not parse.
	_, hasRunAt := present(fields, "run_at")
	runAt, err := stringField(fields, "run_at")
	if err != nil {
		return err
	}
	zone, err := stringField(fields, "timezone")
	if err != nil {
		return err
	}
	switch {
	case hasDelay && hasRunAt:
		return FieldErrorf(CodeInvalidArgument, "delay_seconds", "give exactly one of delay_seconds and run_at, not both")
	case !hasDelay && !hasRunAt:
		return FieldErrorf(CodeInvalidArgument, "delay_seconds", "one of delay_seconds and run_at is required")
	case hasDelay:
		if zone != "" {
			return FieldErrorf(CodeInvalidArgument, "timezone", "timezone goes only with a run_at that has no UTC offset, not with delay_seconds")
		}
		n, literal, err := integerField(delay, "delay_seconds")
		if err != nil {
			return err
		}
		r.DelaySeconds, r.delayLiteral = &n, literal
		return nil
	}
	t, err := ParseRunAt(runAt, zone)
	if err != nil {
		return err
	}
	r.RunAt = t
	return nil
}

// rfc3339 is RFC 3339's date-time (§5.6), with the offset optional (a
// wall-clock time for a time zone): date, "T" (or "t"), hh:mm:, seconds,
// fraction of any length, and "Z" (or "z") or ±hh:mm. Ranges are checked
// by time.Parse.
var rfc3339 = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:)(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$`)

// maxFractionDigits is the precision times keep: nanoseconds. RFC 3339
// sets no limit on the digits of a fraction; those past nanoseconds are
// truncated.
const maxFractionDigits = 9

// localLayout is RFC 3339 without the offset: a wall-clock time.
const localLayout = "2006-01-02T15:04:05.999999999"

// ParseRunAt reads an RFC 3339 time, or a wall-clock time in the IANA time
// zone zone. A wall-clock time that does not exist there (a DST gap) is an
// error; one that exists twice (a DST overlap) is the earlier instant.
func ParseRunAt(s, zone string) (time.Time, error) {
	bad := FieldErrorf(CodeInvalidArgument, "run_at", "run_at must be an RFC 3339 time such as 2026-01-02T15:04:05Z, got %q", truncate(s, 64))
	m := rfc3339.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, bad
	}
	date, hhmm, sec, frac, offset := m[1], m[2], m[3], m[4], strings.ToUpper(m[5])
	if len(frac) > 1+maxFractionDigits {
		frac = frac[:1+maxFractionDigits]
	}
	if len(offset) == 6 && (offset[1:3] > "23" || offset[4:6] > "59") {
		return time.Time{}, bad
	}
	// RFC 3339 allows a leap second, :60; Go's time does not. It is read
	// as the first instant of the next second.
	leap := time.Duration(0)
	if sec == "60" {
		sec, leap = "59", time.Second
	}
	text := date + "T" + hhmm + sec + frac
	if offset != "" {
		if zone != "" {
			return time.Time{}, FieldErrorf(CodeInvalidArgument, "timezone", "timezone goes only with a run_at that has no UTC offset; run_at %q has one", s)
		}
		t, err := time.Parse(time.RFC3339Nano, text+offset)
		if err != nil {
			return time.Time{}, bad
		}
		return t.Add(leap).UTC(), nil
	}
	wall, err := time.Parse(localLayout, text)
	if err != nil {
		return time.Time{}, bad
	}
	wall = wall.Add(leap)
	if zone == "" {
		return time.Time{}, FieldErrorf(CodeInvalidArgument, "timezone", "run_at %q has no UTC offset, so timezone (an IANA name such as Europe/Paris) is required", s)
	}
	loc, err := LoadZone(zone)
	if err != nil {
		return time.Time{}, err
	}
	// wall is the wall-clock reading as if it were UTC. Each offset the zone
	// uses around then gives a candidate instant; the ones that read back as
	// the same wall clock are real.
	var found []time.Time
	for _, probe := range []time.Time{wall.Add(-48 * time.Hour), wall, wall.Add(48 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		cand := wall.Add(-time.Duration(off) * time.Second)
		if sameWall(cand.In(loc), wall) {
			found = append(found, cand)
		}
	}
	if len(found) == 0 {
		return time.Time{}, FieldErrorf(CodeInvalidArgument, "run_at", "run_at %q does not exist in %s (the clocks skip it)", s, zone)
	}
	earliest := found[0]
	for _, t := range found[1:] {
		if t.Before(earliest) {
			earliest = t
		}
	}
	return earliest.UTC(), nil
}

func sameWall(t, wall time.Time) bool {
	y, mo, d := t.Date()
	wy, wmo, wd := wall.Date()
	return y == wy && mo == wmo && d == wd && t.Hour() == wall.Hour() && t.Minute() == wall.Minute() &&
		t.Second() == wall.Second() && t.Nanosecond() == wall.Nanosecond()
}

// LoadZone loads an IANA time zone or UTC. "Local" is refused: it would mean
// the server's zone, which a client cannot know.
func LoadZone(zone string) (*time.Location, error) {
	if zone == "Local" || strings.ContainsAny(zone, `\`) {
		return nil, FieldErrorf(CodeInvalidArgument, "timezone", "timezone must be an IANA name such as Europe/Paris, or UTC; got %q", zone)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, FieldErrorf(CodeInvalidArgument, "timezone", "timezone must be an IANA name such as Europe/Paris, or UTC; got %q", zone)
	}
	return loc, nil
}

// When checks the request's time against now and lim and returns run_at.
// Outside the window is out_of_range, never clamped.
func (r *CreateRequest) When(now time.Time, lim Limits) (time.Time, error) {
	if r.DelaySeconds != nil {
		n := *r.DelaySeconds
		lo, hi := int64(lim.MinDelay/time.Second), int64(lim.MaxDelay/time.Second)
		if n < lo || n > hi {
			got := r.delayLiteral
			if got == "" {
				got = strconv.FormatInt(n, 10)
			}
			return time.Time{}, FieldErrorf(CodeOutOfRange, "delay_seconds", "delay_seconds out of range: must be in %d..%d, got %s", lo, hi, truncate(got, 40))
		}
		return now.Add(time.Duration(n) * time.Second).UTC(), nil
	}
	d := r.RunAt.Sub(now)
	if d < lim.MinDelay || d > lim.MaxDelay {
		return time.Time{}, FieldErrorf(CodeOutOfRange, "run_at", "run_at out of range: must be between %s and %s from now, got %s (%s)",
			lim.MinDelay, lim.MaxDelay, r.RunAt.UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	return r.RunAt, nil
}

// MaxMetadataDepth is how deeply metadata may nest: the object itself is
// level 1.
const MaxMetadataDepth = 32

func (r *CreateRequest) parseMetadata(raw json.RawMessage) error {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	if raw[0] != '{' {
		return FieldErrorf(CodeInvalidArgument, "metadata", "metadata must be a JSON object")
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return FieldErrorf(CodeInvalidArgument, "metadata", "metadata must be a JSON object")
	}
	n, lone := encodedSize(buf.Bytes())
	switch {
	case lone:
		return FieldErrorf(CodeInvalidArgument, "metadata", "metadata is not valid UTF-8 (it escapes a lone surrogate)")
	case n > MaxMetadataBytes:
		return FieldErrorf(CodeInvalidArgument, "metadata", "metadata is too large: at most %d bytes encoded, got %d", MaxMetadataBytes, n)
	}
	// The object travels as the client wrote it, white space aside.
	r.Metadata = buf.Bytes()
	return nil
}

// nesting returns how deeply the JSON text raw nests objects and arrays,
// stopping as soon as it exceeds limit, and the member of the outermost
// object in which it first did ("" when not in one). It reads raw once and
// allocates nothing but the member's name; raw need not be valid JSON.
func nesting(raw []byte, limit int) (deepest int, member string) {
	depth, inString := 0, false
	strStart, strEnd := 0, 0       // the last string closed at depth 1
	memberStart, memberEnd := 0, 0 // the member whose value is being read
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped byte
		case inString && c == '"':
			inString = false
			if depth == 1 {
				strEnd = i + 1
			}
		case inString:
		case c == '"':
			inString = true
			if depth == 1 {
				strStart = i
			}
		case c == ':' && depth == 1:
			memberStart, memberEnd = strStart, strEnd
		case c == ',' && depth == 1:
			memberStart, memberEnd = 0, 0
		case c == '{' || c == '[':
			depth++
			if depth > deepest {
				if deepest = depth; deepest > limit {
					if memberEnd > memberStart {
						_ = json.Unmarshal(raw[memberStart:memberEnd], &member)
					}
					return deepest, member
				}
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest, ""
}

// encodedSize is the size of a compact JSON value re-encoded with only the
// escapes JSON requires: strings as UTF-8, so "\u00e9" and "é" weigh the
// same; numbers keep their literal. It is computed in one pass over the
// bytes, without decoding the value. lone reports an escape of half a
// UTF-16 surrogate pair, which decoders silently turn into U+FFFD.
func encodedSize(compact []byte) (n int, lone bool) {
	for i := 0; i < len(compact); {
		if compact[i] != '"' {
			n++
			i++
			continue
		}
		n++ // the opening quote
		for i++; i < len(compact) && compact[i] != '"'; {
			if compact[i] != '\\' {
				n++ // a byte of valid UTF-8, as is
				i++
				continue
			}
			if i+1 >= len(compact) {
				return n, false
			}
			switch e := compact[i+1]; e {
			case 'u':
				r, w := escapedRune(compact[i:])
				if r == utf8.RuneError && w == 0 {
					return n, true
				}
				n += minimalEscape(r)
				i += w
			case '/':
				n++ // "/" needs no escape
				i += 2
			default: // \" \\ \b \f \n \r \t
				n += 2
				i += 2
			}
		}
		n++ // the closing quote
		i++
	}
	return n, false
}

// escapedRune reads a \uXXXX escape, or a pair of them for a rune beyond
// the Basic Multilingual Plane, at the start of b, and returns the rune
// and the bytes read; (RuneError, 0) for half a surrogate pair.
func escapedRune(b []byte) (rune, int) {
	hex4 := func(b []byte) rune {
		if len(b) < 6 {
			return -1
		}
		v, err := strconv.ParseUint(string(b[2:6]), 16, 16)
		if err != nil {
			return -1
		}
		return rune(v)
	}
	r := hex4(b)
	if !utf16.IsSurrogate(r) {
		return r, 6
	}
	if len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
		if pair := utf16.DecodeRune(r, hex4(b[6:])); pair != utf8.RuneError {
			return pair, 12
		}
	}
	return utf8.RuneError, 0
}

// minimalEscape is the size of r in a JSON string with only the escapes
// JSON requires.
func minimalEscape(r rune) int {
	switch {
	case r == '"' || r == '\\' || r == '\b' || r == '\f' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20:
		return 6 // \u00XX
	}
	return utf8.RuneLen(r)
}

// checkNesting refuses a body nested deeper than its one nested field,
// metadata, may be (the body is one level more), naming the member at
// fault.
func checkNesting(body []byte) error {
	depth, member := nesting(body, MaxMetadataDepth+1)
	switch {
	case depth <= MaxMetadataDepth+1:
		return nil
	case member == "metadata":
		return FieldErrorf(CodeInvalidArgument, "metadata", "metadata is nested too deeply: at most %d levels", MaxMetadataDepth)
	case member != "":
		return FieldErrorf(CodeInvalidArgument, member, "%s is nested too deeply", member)
	}
	return Errorf(CodeInvalidJSON, "request body is nested too deeply")
}

// ValidateThreadID checks a thread id from a body or a path.
func ValidateThreadID(id string) error {
	switch {
	case id == "":
		return FieldErrorf(CodeInvalidArgument, "thread_id", "thread_id is required")
	case !utf8.ValidString(id):
		return FieldErrorf(CodeInvalidArgument, "thread_id", "thread_id must be valid UTF-8")
	case len(id) > MaxThreadIDBytes:
		return FieldErrorf(CodeInvalidArgument, "thread_id", "thread_id is too long: at most %d bytes, got %d", MaxThreadIDBytes, len(id))
	case id == "." || id == "..":
		return FieldErrorf(CodeInvalidArgument, "thread_id", "thread_id must not be %q (proxies rewrite dot segments)", id)
	case strings.ContainsFunc(id, unicode.IsControl):
		return FieldErrorf(CodeInvalidArgument, "thread_id", "thread_id must not contain control characters")
	case strings.ContainsFunc(id, noncharacter):
		return FieldErrorf(CodeInvalidArgument, "thread_id", "thread_id must not contain Unicode noncharacters (U+FDD0 to U+FDEF, or a code point ending in FFFE or FFFF)")
	}
	return nil
}

// noncharacter reports whether r is one of Unicode's 66 noncharacters:
// U+FDD0 to U+FDEF, and the last two code points of every plane. SQS
// refuses U+FFFE and U+FFFF in a message, and a thread id travels in
// every fire-queue message.
func noncharacter(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}

var idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9\-_.:]{1,128}$`)

// ValidateIdempotencyKey checks an Idempotency-Key header value.
func ValidateIdempotencyKey(key string) error {
	if !idempotencyKeyPattern.MatchString(key) {
		return FieldErrorf(CodeInvalidArgument, "Idempotency-Key", "Idempotency-Key must be 1 to %d characters of A-Za-z0-9-_.:", MaxIdempotencyKeyLen)
	}
	return nil
}

// decodeFields decodes a JSON object whose members must be among
// allowed, checking its depth first, on the bytes as they are: a body
// nested deeper than metadata may be is refused before any decoder builds
// or copies it. hint follows the message of an unknown member.
func decodeFields(body []byte, allowed []string, hint string) (map[string]json.RawMessage, error) {
	if err := checkNesting(body); err != nil {
		return nil, err
	}
	fields, order, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	for _, name := range order {
		if !slices.Contains(allowed, name) {
			return nil, FieldErrorf(CodeInvalidArgument, name, "unknown field %q%s", name, hint)
		}
	}
	return fields, nil
}

// decodeObject reads body as exactly one JSON object and returns its members
// raw, and their names in order. A duplicate member is an error: which of
// the two a server keeps is something clients cannot know.
//
// A valid body (nearly every one) is split in one pass over bytes already
// known to be valid JSON; anything else takes the decoder, whose errors
// say what is wrong. Both give the same answer for a valid body (a fuzz
// test holds them to it).
func decodeObject(body []byte) (map[string]json.RawMessage, []string, error) {
	if json.Valid(body) && utf8.Valid(body) {
		if fields, order, err, ok := splitObject(body); ok {
			return fields, order, err
		}
	}
	return decodeObjectSlow(body)
}

// splitObject splits valid JSON text into its members, or reports !ok
// when it is not an object.
func splitObject(body []byte) (_ map[string]json.RawMessage, _ []string, _ error, ok bool) {
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return nil, nil, nil, false
	}
	fields := make(map[string]json.RawMessage, 8)
	order := make([]string, 0, 8)
	i = skipSpace(body, i+1)
	for body[i] != '}' {
		end := stringEnd(body, i)
		name := string(body[i+1 : end-1])
		if bytes.IndexByte(body[i:end], '\\') >= 0 {
			name = ""
			_ = json.Unmarshal(body[i:end], &name) // valid: it cannot fail
		}
		i = skipSpace(body, skipSpace(body, end)+1) // past the colon
		end = valueEnd(body, i)
		if _, dup := fields[name]; dup {
			return nil, nil, FieldErrorf(CodeInvalidArgument, name, "field %q appears more than once", name), true
		}
		fields[name] = body[i:end:end]
		order = append(order, name)
		i = skipSpace(body, end)
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	return fields, order, nil, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the valid JSON string at b[i].
func stringEnd(b []byte, i int) int {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd returns the index just past the valid JSON value at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	// A number, true, false or null: up to the next delimiter.
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

// decodeObjectSlow is decodeObject with json.Decoder, for a body that is
// not valid JSON, not valid UTF-8 or not an object: its errors say which.
func decodeObjectSlow(body []byte) (map[string]json.RawMessage, []string, error) {
	notObject := Errorf(CodeInvalidJSON, "request body must be one JSON object")
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, Errorf(CodeInvalidJSON, "request body is not valid JSON: %v", err)
		}
		return nil, nil, notObject
	}
	fields := map[string]json.RawMessage{}
	var order []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, Errorf(CodeInvalidJSON, "request body is not valid JSON: %v", err)
		}
		name := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, Errorf(CodeInvalidJSON, "request body is not valid JSON: %v", err)
		}
		if _, dup := fields[name]; dup {
			return nil, nil, FieldErrorf(CodeInvalidArgument, name, "field %q appears more than once", name)
		}
		fields[name] = raw
		order = append(order, name)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, Errorf(CodeInvalidJSON, "request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, Errorf(CodeInvalidJSON, "request body has data after the JSON object")
	}
	if !utf8.Valid(body) {
		for _, name := range order {
			if !utf8.ValidString(name) {
				return nil, nil, Errorf(CodeInvalidArgument, "request body has a field name that is not valid UTF-8")
			}
			if !utf8.Valid(fields[name]) {
				return nil, nil, FieldErrorf(CodeInvalidArgument, name, "%s is not valid UTF-8", name)
			}
		}
		return nil, nil, Errorf(CodeInvalidArgument, "request body is not valid UTF-8")
	}
	return fields, order, nil
}

// present returns a member that is there and not null.
func present(fields map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// stringField returns a string member, "" when absent or null.
func stringField(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := present(fields, name)
	if !ok {
		return "", nil
	}
	if raw[0] != '"' {
		return "", FieldErrorf(CodeInvalidArgument, name, "%s must be a string", name)
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		// Valid UTF-8 with no escape (decodeObject checked both): the
		// string is its bytes.
		return string(raw[1 : len(raw)-1]), nil
	}
	if hasLoneSurrogate(raw) {
		return "", FieldErrorf(CodeInvalidArgument, name, "%s is not valid UTF-8 (it escapes a lone surrogate)", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", FieldErrorf(CodeInvalidArgument, name, "%s must be a string", name)
	}
	return s, nil
}

var integerLiteral = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// integerField reads a JSON integer literal: 60, not "60", 60.0 or 6e1.
// An integer beyond int64 saturates to the nearest bound, so the range
// check reports it with the range; literal keeps it as written.
func integerField(raw json.RawMessage, name string) (n int64, literal string, err error) {
	literal = string(raw)
	if !integerLiteral.Match(raw) {
		return 0, "", FieldErrorf(CodeInvalidArgument, name, "%s must be an integer, got %s", name, truncate(literal, 40))
	}
	n, err = strconv.ParseInt(literal, 10, 64)
	if err != nil { // only a range error is left
		n = math.MaxInt64
		if literal[0] == '-' {
			n = math.MinInt64
		}
	}
	return n, literal, nil
}

// hasLoneSurrogate reports whether a raw JSON string escapes half a UTF-16
// surrogate pair, which decoders silently turn into U+FFFD.
func hasLoneSurrogate(raw []byte) bool {
	s := string(raw)
	for i := strings.Index(s, `\u`); i >= 0 && i+6 <= len(s); {
		if i > 0 && countBackslashes(s[:i])%2 == 1 {
			// this \u is itself escaped text
		} else if hi := strings.ToLower(s[i+2 : i+6]); hi >= "d800" && hi <= "dbff" {
			if i+12 > len(s) || s[i+6:i+8] != `\u` || strings.ToLower(s[i+8:i+12]) < "dc00" || strings.ToLower(s[i+8:i+12]) > "dfff" {
				return true
			}
			i += 6
		} else if hi >= "dc00" && hi <= "dfff" {
			return true
		}
		next := strings.Index(s[i+2:], `\u`)
		if next < 0 {
			break
		}
		i += 2 + next
	}
	return false
}

func countBackslashes(s string) int {
	n := 0
	for n < len(s) && s[len(s)-1-n] == '\\' {
		n++
	}
	return n
}

// jsonHash hashes the members canonically: json.Marshal sorts map keys and
// drops insignificant white space. Members that count as absent (null, and
// "" for the optional strings) are left out, so a body that says the same
// thing hashes the same.
func jsonHash(fields map[string]json.RawMessage) string {
	canon := map[string]any{}
	for name, raw := range fields {
		if string(raw) == "null" || (string(raw) == `""` && slices.Contains(optionalStrings, name)) {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		_ = dec.Decode(&v) // already decoded once as raw JSON
		canon[name] = v
	}
	b, _ := json.Marshal(canon)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// optionalStrings are the fields for which an empty string is absent.
var optionalStrings = []string{"reason", "originating_run_id", "timezone"}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// RearmRequest is a validated POST /followups/{id}/rearm body: when the new
// followup is due. Without a time it is due after the minimum delay.
type RearmRequest struct {
	when   CreateRequest // only its time fields are used
	given  bool
	fields map[string]json.RawMessage
}

var rearmFields = []string{"delay_seconds", "run_at", "timezone"}

// ParseRearm validates a rearm body: empty, {}, or exactly one of
// delay_seconds and run_at (with timezone for a wall-clock run_at), checked
// as in ParseCreate.
func ParseRearm(body []byte) (*RearmRequest, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return &RearmRequest{}, nil
	}
	fields, err := decodeFields(body, rearmFields, " (a rearm takes delay_seconds, or run_at and timezone)")
	if err != nil {
		return nil, err
	}
	r := &RearmRequest{fields: fields}
	_, hasDelay := present(fields, "delay_seconds")
	_, hasRunAt := present(fields, "run_at")
	if !hasDelay && !hasRunAt {
		if zone, err := stringField(fields, "timezone"); err != nil || zone != "" {
			if err != nil {
				return nil, err
			}
			return nil, FieldErrorf(CodeInvalidArgument, "timezone", "timezone goes only with a run_at that has no UTC offset")
		}
		return r, nil
	}
	if err := r.when.parseWhen(fields); err != nil {
		return nil, err
	}
	r.given = true
	return r, nil
}

// Hash identifies the rearm of followup id with this body, for
// Idempotency-Key: the same key and body on another followup, or on a
// create, is another request.
func (r *RearmRequest) Hash(id string) string {
	fields := maps.Clone(r.fields)
	if fields == nil {
		fields = map[string]json.RawMessage{}
	}
	b, _ := json.Marshal(id) // a string always encodes
	fields["\x00rearm"] = b
	return jsonHash(fields)
}

// create is the create request of the rearm of dropped.
func (r *RearmRequest) create(dropped *Followup, lim Limits) *CreateRequest {
	c := &CreateRequest{
		ThreadID: dropped.ThreadID, Prompt: dropped.Prompt, Reason: dropped.Reason,
		OriginatingRunID: dropped.OriginatingRunID, Metadata: dropped.Metadata,
	}
	if r.given {
		c.DelaySeconds, c.RunAt, c.delayLiteral = r.when.DelaySeconds, r.when.RunAt, r.when.delayLiteral
		return c
	}
	secs := int64((lim.MinDelay + time.Second - 1) / time.Second)
	c.DelaySeconds = &secs
	return c
}
