package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/bench/internal/stats"
)

func TestNumber(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{6662.4, "6,662"},
		{1234567, "1,234,567"},
		{100, "100"},
		{57.04, "57.0"},
		{5.164, "5.16"},
		{0, "0.00"},
		{math.NaN(), "–"},
	}
	for _, tt := range tests {
		if got := number(tt.v); got != tt.want {
			t.Errorf("number(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestSpreadCell(t *testing.T) {
	tests := []struct {
		name string
		s    stats.Spread
		want string
	}{
		{"none", stats.Spread{}, "–"},
		{"one round", stats.Spread{Median: 5000, Min: 5000, Max: 5000, N: 1}, "5,000"},
		{"three rounds", stats.Spread{Median: 6662, Min: 5030, Max: 8269, N: 3}, "6,662 (5,030–8,269)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := spreadCell(tt.s); got != tt.want {
				t.Errorf("spreadCell = %q, want %q", got, tt.want)
			}
		})
	}
}

// rounds builds correct rounds of one system with the given creates/s and
// lateness p99.
func rounds(system string, rates []float64, p99 []time.Duration) []*roundResult {
	var out []*roundResult
	for i := range rates {
		out = append(out, &roundResult{system: system, round: i + 1, createsPerSec: rates[i], lateP99: p99[i],
			cpuPerCreate: 100, cpuPerDelivery: 200, clientPerCreate: math.NaN(), memory: 64 << 20})
	}
	return out
}

func TestSummarizeLeavesOutFailedRounds(t *testing.T) {
	rs := rounds("river", []float64{1000, 3000, 2000, 9999}, []time.Duration{time.Second, 3 * time.Second, 2 * time.Second, 0})
	rs[3].duplicates = 2
	rs[3].fail("2 duplicate deliveries")
	s := summarize("river", rs)
	if s.rounds != 3 || s.failed != 1 || s.dups != 2 {
		t.Errorf("rounds %d, failed %d, duplicates %d; want 3, 1, 2", s.rounds, s.failed, s.dups)
	}
	if got := s.spreads[0]; got != (stats.Spread{Median: 2000, Min: 1000, Max: 3000, N: 3}) {
		t.Errorf("creates/s spread %+v", got)
	}
	if s.client.N != 0 {
		t.Errorf("in-process creates have no HTTP client figure, got %+v", s.client)
	}
}

func TestPrintRatios(t *testing.T) {
	var results []*roundResult
	results = append(results, rounds("followupd", []float64{6000, 6000, 6000}, []time.Duration{time.Second, time.Second, time.Second})...)
	results = append(results, rounds("asynq", []float64{12000, 12000, 12000}, []time.Duration{4 * time.Second, 4 * time.Second, 4 * time.Second})...)
	sums := []summary{summarize("followupd", results), summarize("asynq", results)}
	var b bytes.Buffer
	printRatios(&b, sums)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a heading and one row, got:\n%s", b.String())
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "followupd vs creates/s lateness p99 CPU/create CPU/delivery memory" {
		t.Errorf("heading %q", lines[0])
	}
	// followupd's median ÷ asynq's: half the creates/s, a quarter of the
	// lateness, the same CPU and memory.
	if got := strings.Fields(lines[1]); strings.Join(got, " ") != "asynq 0.50× 0.25× 1.00× 1.00× 1.00×" {
		t.Errorf("row %q", lines[1])
	}
}

func TestPrintTable(t *testing.T) {
	results := rounds("followupd", []float64{5030, 8269, 6662}, []time.Duration{time.Second, 2 * time.Second, 3 * time.Second})
	var b bytes.Buffer
	printTable(&b, []summary{summarize("followupd", results)})
	out := b.String()
	for _, want := range []string{"creates/s", "6,662 (5,030–8,269)", "2,000 (1,000–3,000)", "0 / 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine([]string{"bin/followups-compare", "-rounds", "3", "-systems", "followupd,asynq+http", "-lead", "it's 20s"})
	want := `bin/followups-compare -rounds 3 -systems followupd,asynq+http -lead 'it'\''s 20s'`
	if got != want {
		t.Errorf("commandLine = %s, want %s", got, want)
	}
}
