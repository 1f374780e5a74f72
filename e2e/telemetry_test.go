package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The prompt and metadata never appear in any log line, through delivery,
// retry and drop.
func TestLogsNeverCarryPromptOrMetadata(t *testing.T) {
	const marker = "zebra-7f3a9-secret"
	th := newThread(t, func(thread string, attempt int) (int, http.Header, string) {
		switch {
		case thread == "gone":
			return 404, nil, "no thread " + marker // the thread's answer is not logged either
		case thread == "flaky" && attempt == 1:
			return 503, nil, "busy " + marker
		}
		return 201, nil, ""
	})
	d := startDaemon(t, th, "")
	var ids []string
	for _, thread := range []string{"ok", "gone", "flaky"} {
		f := d.create(fmt.Sprintf(`{"thread_id":%q,"prompt":"say %s","delay_seconds":1,"reason":"r","metadata":{"note":%q}}`, thread, marker, marker))
		ids = append(ids, str(f["id"]))
	}
	// A request that quotes them in an error must not leak them either.
	d.do("POST", "/followups", fmt.Sprintf(`{"thread_id":"x","prompt":"%s","delay_seconds":5}`, marker))
	d.do("POST", "/followups", fmt.Sprintf(`{"thread_id":"x","prompt":"%s","metadata":{"a":%q},"delay_seconds":60,"bogus":1}`, marker, marker))
	for _, id := range ids {
		d.settle(id)
	}
	lines := d.logLines()
	if len(lines) == 0 {
		t.Fatal("no log lines")
	}
	if strings.Contains(d.logs.String(), marker) {
		for _, l := range strings.Split(d.logs.String(), "\n") {
			if strings.Contains(l, marker) {
				t.Errorf("log line carries the prompt, metadata or thread answer: %s", l)
			}
		}
	}
}

// followupd's /metrics counts what happened, by the contract's names.
func TestPrometheusMetrics(t *testing.T) {
	th := newThread(t, func(thread string, _ int) (int, http.Header, string) {
		if thread == "gone" {
			return 404, nil, ""
		}
		return 201, nil, ""
	})
	d := startDaemon(t, th, "")
	a := str(d.create(`{"thread_id":"ok","prompt":"p","delay_seconds":1}`)["id"])
	b := str(d.create(`{"thread_id":"gone","prompt":"p","delay_seconds":1}`)["id"])
	c := str(d.create(`{"thread_id":"ok","prompt":"p","delay_seconds":60}`)["id"])
	d.do("DELETE", "/followups/"+c, "")
	d.settle(a)
	d.settle(b)
	res, err := http.Get(d.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), " "); ok && !strings.HasPrefix(name, "#") {
			got[name] = value
		}
	}
	io.Copy(io.Discard, res.Body)
	for name, want := range map[string]string{
		"followups_scheduled_total":                                "3",
		"followups_delivered_total":                                "1",
		`followups_dropped_total{drop_reason="thread_not_found"}`:  "1",
		`followups_dropped_total{drop_reason="retries_exhausted"}`: "0",
		"followups_cancelled_total":                                "1",
		`followups_dispatch_attempts_total{outcome="success"}`:     "1",
		`followups_dispatch_attempts_total{outcome="drop"}`:        "1",
		"followups_fire_lateness_seconds_count":                    "1",
		"followups_store_followups":                                "3",
	} {
		if got[name] != want {
			t.Errorf("%s = %q, want %s", name, got[name], want)
		}
	}
}
