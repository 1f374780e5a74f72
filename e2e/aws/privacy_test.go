package awse2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/followup"
)

// The prompt, the metadata, the reason and the thread's answers never
// appear in any line the functions write (logs and metrics), through
// delivery, retry and drop, nor when a create is refused.
func TestLogsNeverCarryPromptOrMetadata(t *testing.T) {
	const marker = "zebra-7f3a9-secret"
	e := start(t, harness.Options{Thread: func(r harness.ThreadRequest) harness.ThreadAnswer {
		switch {
		case strings.HasPrefix(r.ThreadID, "t-gone-"):
			return harness.ThreadAnswer{Status: 404, Body: "no thread " + marker}
		case strings.HasPrefix(r.ThreadID, "t-flaky-") && r.Attempt == 1:
			return harness.ThreadAnswer{Status: 503, Body: "busy " + marker}
		}
		return harness.ThreadAnswer{Status: 201}
	}})
	want := map[string]followup.Status{"ok": followup.StatusDelivered, "gone": followup.StatusFailedDropped, "flaky": followup.StatusDelivered}
	ids := map[string]string{}
	for name := range want {
		body, _ := json.Marshal(map[string]any{
			"thread_id": threadID(name), "prompt": "say " + marker, "delay_seconds": 1,
			"reason": "because " + marker, "metadata": map[string]string{"note": marker},
		})
		f, _ := e.Create(string(body))
		ids[name] = f.ID
	}
	refused := e.Do("POST", "/followups", `{"thread_id":"t","prompt":"`+marker+`","metadata":{"a":"`+marker+`"},"delay_seconds":60,"bogus":1}`)
	if refused.Status != 400 {
		t.Fatalf("a create with an unknown field: %d", refused.Status)
	}
	for name, id := range ids {
		if got := e.WaitSettled(id, settleTimeout); got.Status != want[name] {
			t.Fatalf("%s followup %s: %s", name, id, got.Status)
		}
	}
	lines := 0
	for _, inv := range e.Invocations() {
		for _, l := range inv.Output.Lines {
			lines++
			if strings.Contains(l, marker) {
				t.Errorf("a function wrote the user's content or the thread's answer: %s", l)
			}
		}
	}
	if lines == 0 {
		t.Fatal("the functions wrote nothing")
	}
}
