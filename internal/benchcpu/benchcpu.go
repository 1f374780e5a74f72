// Package benchcpu adds the CPU time per operation to Go benchmarks: on a
// shared machine it moves less than the wall time per operation does.
package benchcpu

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Process is the CPU time (user and system, every thread) this process has
// used, from /proc/self/stat; ok is false where there is none.
func Process() (d time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true // USER_HZ is 100
}

// Start begins a measurement; call the returned function after the timed
// loop to report cpu-µs/op.
func Start(b *testing.B) (report func()) {
	start, ok := Process()
	return func() {
		end, ok2 := Process()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64((end-start).Microseconds())/float64(b.N), "cpu-µs/op")
		}
	}
}
