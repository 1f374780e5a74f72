package sqs

import (
	"testing"
	"time"
)

func TestSeconds(t *testing.T) {
	for _, tc := range []struct {
		d, limit time.Duration
		want     int32
	}{
		{0, MaxDelay, 0},
		{-time.Hour, MaxDelay, 0},
		{time.Nanosecond, MaxDelay, 1},
		{time.Second, MaxDelay, 1},
		{time.Second + time.Nanosecond, MaxDelay, 2},
		{MaxDelay, MaxDelay, 900},
		{MaxDelay + time.Nanosecond, MaxDelay, 900},
		{time.Hour, MaxVisibility, 3600},
		{100 * time.Hour, MaxVisibility, 42300},
	} {
		if got := seconds(tc.d, tc.limit); got != tc.want {
			t.Errorf("seconds(%s, %s) = %d, want %d", tc.d, tc.limit, got, tc.want)
		}
	}
}
