package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// The bodies the load sends are creates followupd accepts.
func TestCreateBodyIsValid(t *testing.T) {
	runAt := `"run_at":"` + time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Format(time.RFC3339Nano) + `"`
	for _, when := range []string{farFuture, runAt} {
		for _, i := range []int{0, 1, 999, 1000, 123456} {
			body := createBody("b1-abc123", i, when)
			if _, err := followup.ParseCreate(body); err != nil {
				t.Errorf("create %d (%s): %v\n%s", i, when, err, body)
			}
		}
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error; "" for none
	}{
		{"all", []string{"all"}, ""},
		{"one scenario with flags", []string{"-creates", "10", "-concurrency", "2", "creates"}, ""},
		{"target on loopback", []string{"-target", "http://127.0.0.1:8080", "burst"}, ""},
		{"no scenario", nil, "name a scenario"},
		{"unknown scenario", []string{"soak"}, "unknown scenario"},
		{"two scenarios", []string{"creates", "burst"}, "one scenario"},
		{"target off the machine", []string{"-target", "http://10.0.0.1:8080", "all"}, "loopback"},
		{"target by name", []string{"-target", "http://example.com:80", "all"}, "loopback"},
		{"target with a path", []string{"-target", "http://127.0.0.1:8080/api", "all"}, "http://host:port"},
		{"sink off the machine", []string{"-sink-addr", "0.0.0.0:9000", "all"}, "loopback"},
		{"no creates", []string{"-creates", "0", "creates"}, "-creates"},
		{"negative lead", []string{"-burst-lead", "-1s", "burst"}, "-burst-lead"},
		{"child env without =", []string{"-child-env", "GOGC", "all"}, "KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 5: "5", 2.5: "2.50", 12.34: "12.3", 999.6: "1,000", 8269.4: "8,269",
		1234567: "1,234,567", -1500: "-1,500", 0.05: "0.05",
	} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(ds, q); got != want {
			t.Errorf("percentile(%v) = %s, want %s", q, got, want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %s", got)
	}
}

func TestShellQuote(t *testing.T) {
	got := shellQuote([]string{"bin/followups-load", "-child-env", "FOLLOWUPS_WORKERS=1000", "it's", ""})
	want := `bin/followups-load -child-env FOLLOWUPS_WORKERS=1000 'it'\''s' ''`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}
