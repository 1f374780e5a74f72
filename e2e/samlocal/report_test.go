package samlocal_test

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// report collects the timings of a run, for FOLLOWUPS_SAMLOCAL_REPORT.
type report struct {
	mu    sync.Mutex
	note  string
	lines []reportLine
}

type reportLine struct {
	what string
	took time.Duration
	note string
}

func (r *report) add(what string, took time.Duration, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, reportLine{what, took, note})
}

// spread sums up a series of durations: median, min and max.
func spread(ds []time.Duration) (median time.Duration, note string) {
	if len(ds) == 0 {
		return 0, "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], fmt.Sprintf("median of %d; min %s, max %s", len(s), ms(s[0]), ms(s[len(s)-1]))
}

func archNote() string {
	if runtime.GOARCH == "arm64" {
		return "native"
	}
	return "emulated (qemu-user-static)"
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.0f s", d.Seconds())
	}
	if d >= time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

func (r *report) write(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "## sam local (e2e/samlocal)\n\n%s, Docker, the stand-in base image; the deployed arm64 build, %s.\n\n", r.note, archNote())
	b.WriteString("| what | time | |\n|---|---:|---|\n")
	for _, l := range r.lines {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", l.what, ms(l.took), l.note)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
