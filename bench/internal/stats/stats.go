// Package stats has the few statistics the comparison prints: latency
// percentiles within a round, and the median and range of a figure across
// rounds.
package stats

import (
	"math"
	"slices"
	"time"
)

// Percentile is the nearest-rank q-quantile (0 < q ≤ 1) of sorted: the
// smallest value that at least q of the values do not exceed. It is 0 for
// no values.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Spread is a figure over rounds: its median, smallest and largest value.
type Spread struct {
	Median, Min, Max float64
	N                int // how many values; 0 means none, and the rest is 0
}

// SpreadOf returns the spread of vs (in any order). The median of an even
// count is the mean of the two middle values.
func SpreadOf(vs []float64) Spread {
	if len(vs) == 0 {
		return Spread{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Spread{Median: med, Min: s[0], Max: s[n-1], N: n}
}

// Ratio is a / b, or NaN when b is 0 or either value is missing (NaN).
func Ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}
