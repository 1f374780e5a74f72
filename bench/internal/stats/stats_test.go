package stats

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"none", nil, 0.99, 0},
		{"one", []time.Duration{7}, 0.5, 7},
		{"median of four is the second", []time.Duration{1, 2, 3, 4}, 0.5, 2},
		{"p99 of 100 is the 99th", hundred, 0.99, 99 * time.Millisecond},
		{"p50 of 100 is the 50th", hundred, 0.5, 50 * time.Millisecond},
		{"p100 is the largest", hundred, 1, 100 * time.Millisecond},
		{"tiny q is the smallest", hundred, 0.0001, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestSpreadOf(t *testing.T) {
	tests := []struct {
		name string
		vs   []float64
		want Spread
	}{
		{"none", nil, Spread{}},
		{"one", []float64{5}, Spread{Median: 5, Min: 5, Max: 5, N: 1}},
		{"odd count, unsorted", []float64{9, 1, 4}, Spread{Median: 4, Min: 1, Max: 9, N: 3}},
		{"even count averages the middle two", []float64{4, 1, 3, 10}, Spread{Median: 3.5, Min: 1, Max: 10, N: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SpreadOf(tt.vs); got != tt.want {
				t.Errorf("SpreadOf(%v) = %+v, want %+v", tt.vs, got, tt.want)
			}
		})
	}
	vs := []float64{3, 1, 2}
	SpreadOf(vs)
	if vs[0] != 3 || vs[1] != 1 {
		t.Errorf("SpreadOf sorted its argument: %v", vs)
	}
}

func TestRatio(t *testing.T) {
	if got := Ratio(6, 3); got != 2 {
		t.Errorf("Ratio(6, 3) = %v, want 2", got)
	}
	for _, c := range [][2]float64{{1, 0}, {math.NaN(), 1}, {1, math.NaN()}} {
		if got := Ratio(c[0], c[1]); !math.IsNaN(got) {
			t.Errorf("Ratio(%v, %v) = %v, want NaN", c[0], c[1], got)
		}
	}
}
