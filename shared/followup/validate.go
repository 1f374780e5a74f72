package followup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // time zones must not depend on the host: Lambda images may lack zoneinfo
	"unicode"
	"unicode/utf8"
)

// The size limits of DESIGN §2, in bytes of UTF-8.
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

// DefaultLimits are DESIGN §6's defaults: 60 s to 24 h.
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
// DESIGN §2 that does not depend on the clock. Errors are *Error values with
// the specific code and field.
func ParseCreate(body []byte) (*CreateRequest, error) {
	fields, order, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	for _, name := range order {
		if !slices.Contains(createFields, name) {
			return nil, FieldErrorf(CodeInvalidArgument, name, "unknown field %q", name)
		}
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
// fraction, and "Z" (or "z") or ±hh:mm. Ranges are checked by time.Parse.
var rfc3339 = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:)(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?$`)

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

func (r *CreateRequest) parseMetadata(raw json.RawMessage) error {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	if raw[0] != '{' {
		return FieldErrorf(CodeInvalidArgument, "metadata", "metadata must be a JSON object")
	}
	if hasLoneSurrogate(raw) {
		return FieldErrorf(CodeInvalidArgument, "metadata", "metadata is not valid UTF-8 (it escapes a lone surrogate)")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return FieldErrorf(CodeInvalidArgument, "metadata", "metadata must be a JSON object")
	}
	if n := encodedSize(buf.Bytes()); n > MaxMetadataBytes {
		return FieldErrorf(CodeInvalidArgument, "metadata", "metadata is too large: at most %d bytes encoded, got %d", MaxMetadataBytes, n)
	}
	// The object travels as the client wrote it, white space aside.
	r.Metadata = buf.Bytes()
	return nil
}

// encodedSize is the size of a JSON value re-encoded compactly: strings as
// UTF-8, with only the escapes JSON requires, so "\u00e9" and "é" weigh
// the same. Numbers keep their literal.
func encodedSize(compact []byte) int {
	dec := json.NewDecoder(bytes.NewReader(compact))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return len(compact)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return len(compact)
	}
	// encoding/json also escapes U+2028 and U+2029 (6 bytes for 3), which
	// JSON does not require.
	return out.Len() - 1 - 3*lineSeparators(v) // Encode ends with a newline
}

// lineSeparators counts U+2028 and U+2029 in the strings of v, keys too.
func lineSeparators(v any) int {
	count := func(s string) int { return strings.Count(s, "\u2028") + strings.Count(s, "\u2029") }
	switch v := v.(type) {
	case string:
		return count(v)
	case []any:
		n := 0
		for _, e := range v {
			n += lineSeparators(e)
		}
		return n
	case map[string]any:
		n := 0
		for k, e := range v {
			n += count(k) + lineSeparators(e)
		}
		return n
	}
	return 0
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
	}
	return nil
}

var idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9\-_.:]{1,128}$`)

// ValidateIdempotencyKey checks an Idempotency-Key header value.
func ValidateIdempotencyKey(key string) error {
	if !idempotencyKeyPattern.MatchString(key) {
		return FieldErrorf(CodeInvalidArgument, "Idempotency-Key", "Idempotency-Key must be 1 to %d characters of A-Za-z0-9-_.:", MaxIdempotencyKeyLen)
	}
	return nil
}

// decodeObject reads body as exactly one JSON object and returns its members
// raw, and their names in order. A duplicate member is an error: which of
// the two a server keeps is something clients cannot know.
func decodeObject(body []byte) (map[string]json.RawMessage, []string, error) {
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
