package jsonw

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// stdString is what encoding/json writes for s.
func stdString(t testing.TB, s string, html bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func stdRaw(t testing.TB, raw []byte, html bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(json.RawMessage(raw)); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var strings = []string{
	"", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\rcr\bback\fform",
	"\x00\x01\x1f\x7f", "é ü 漢字 🙂", "line\u2028para\u2029", "bad \xff utf-8 \xc3", "\xed\xa0\x80 surrogate bytes",
}

func TestStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range strings {
		for _, html := range []bool{true, false} {
			if got, want := String(nil, s, html), stdString(t, s, html); !bytes.Equal(got, want) {
				t.Errorf("String(%q, html %v) = %s, encoding/json writes %s", s, html, got, want)
			}
		}
	}
}

func TestRawMatchesEncodingJSON(t *testing.T) {
	for _, raw := range []string{`{}`, `{"a":"<b>&\u2028"}`, "{\"a\":\"x\u2028y\u2029z <>&\"}", `{"n":[1,2,{"x":null}]}`, `{"é":"漢字"}`} {
		for _, html := range []bool{true, false} {
			if got, want := Raw(nil, []byte(raw), html), stdRaw(t, []byte(raw), html); !bytes.Equal(got, want) {
				t.Errorf("Raw(%s, html %v) = %s, encoding/json writes %s", raw, html, got, want)
			}
		}
	}
}

func TestTimeMatchesEncodingJSON(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 18, 0, 0, 120_000_000, time.UTC),
		time.Date(1999, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 5*3600+30*60)),
	} {
		want, err := json.Marshal(tm)
		if err != nil {
			t.Fatal(err)
		}
		if got := Time(nil, tm); !bytes.Equal(got, want) {
			t.Errorf("Time(%v) = %s, encoding/json writes %s", tm, got, want)
		}
	}
}

func FuzzString(f *testing.F) {
	for _, s := range strings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, html := range []bool{true, false} {
			if got, want := String(nil, s, html), stdString(t, s, html); !bytes.Equal(got, want) {
				t.Fatalf("String(%q, html %v) = %s, encoding/json writes %s", s, html, got, want)
			}
		}
	})
}

func FuzzRaw(f *testing.F) {
	f.Add(`{"a":"<b>&\u2028"}`)
	f.Add("{\"a\":\"x\u2028y\"}")
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(s)) != nil {
			return
		}
		raw := buf.Bytes()
		for _, html := range []bool{true, false} {
			if got, want := Raw(nil, raw, html), stdRaw(t, raw, html); !bytes.Equal(got, want) {
				t.Fatalf("Raw(%s, html %v) = %s, encoding/json writes %s", raw, html, got, want)
			}
		}
	})
}
