package dispatch

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// reflectedMessage is what encoding/json writes for m without HTML
// escaping: what encodeMessage must write byte for byte.
func reflectedMessage(t testing.TB, m Message) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func messageSample(prompt, reason, runID string, metadata []byte, delay *int64) Message {
	local := time.FixedZone("local", 3*3600)
	return messageFor(&followup.Followup{
		ID: "fu_01", ThreadID: "t", Prompt: prompt, Reason: reason, OriginatingRunID: runID, Metadata: metadata,
		RunAt: time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, local), CreatedAt: time.Date(2030, 1, 2, 3, 0, 0, 0, local),
		DelaySecondsRequested: delay,
	}, 3)
}

func TestEncodeMessageMatchesEncodingJSON(t *testing.T) {
	delay := int64(240)
	for _, m := range []Message{
		messageSample("check the <nightly> build & \"report\"\n\u2028 \x01 \xff", "why <not>", "run & 1", []byte(`{"a":"<&>","b":[1,null],"c":"\u2029"}`), &delay),
		messageSample("plain", "", "", nil, nil),
	} {
		if got, want := encodeMessage(m), reflectedMessage(t, m); !bytes.Equal(got, want) {
			t.Errorf("encodeMessage:\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzEncodeMessage(f *testing.F) {
	f.Add("check <b>", "why & how", "run-1", `{"a":"<x>"}`)
	f.Fuzz(func(t *testing.T, prompt, reason, runID, metadata string) {
		var compact bytes.Buffer
		var md []byte
		if json.Compact(&compact, []byte(metadata)) == nil && bytes.HasPrefix(compact.Bytes(), []byte("{")) {
			md = compact.Bytes()
		}
		m := messageSample(prompt, reason, runID, md, nil)
		if got, want := encodeMessage(m), reflectedMessage(t, m); !bytes.Equal(got, want) {
			t.Fatalf("encodeMessage:\n got %s\nwant %s", got, want)
		}
	})
}
