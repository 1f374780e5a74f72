package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// memory is a process's memory as /proc/PID/status tells it, in bytes.
type memory struct {
	peak, rss, anon, file int64 // VmHWM, VmRSS, RssAnon, RssFile
}

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	fields := map[string]*int64{"VmHWM:": &m.peak, "VmRSS:": &m.rss, "RssAnon:": &m.anon, "RssFile:": &m.file}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			if dst, ok := fields[f[0]]; ok {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				*dst = n << 10
			}
		}
	}
	if m.peak == 0 {
		return m, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
	}
	return m, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuTime is the CPU time (user and system, every thread) a process has
// used so far, from /proc/PID/stat; pid 0 means this process.
func cpuTime(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it do not.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: too few fields", path)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: bad CPU times", path)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// cpuMeter tells how much CPU followupd and this command used over a span
// of wall time, to tell a saturated machine from a waiting process.
type cpuMeter struct {
	pid         int
	wall        time.Time
	child, self time.Duration
	machine     machineTicks
}

func startCPU(d *daemon) cpuMeter {
	m := cpuMeter{wall: time.Now(), machine: readMachineTicks()}
	if d.cmd != nil {
		m.pid = d.pid()
		m.child, _ = cpuTime(m.pid)
	}
	m.self, _ = cpuTime(0)
	return m
}

// cpuUse is CPU used over a span: by followupd, by this command (clients
// and null thread API), and the span's wall time.
type cpuUse struct {
	child, self, wall time.Duration
	measured          bool    // the child's CPU could be read
	machineBusy       float64 // share of every CPU's time not idle, any process
}

// stop returns the CPU used since startCPU.
func (m cpuMeter) stop() cpuUse {
	u := cpuUse{wall: time.Since(m.wall)}
	if m.pid != 0 {
		if c, err := cpuTime(m.pid); err == nil {
			u.child, u.measured = c-m.child, true
		}
	}
	if s, err := cpuTime(0); err == nil {
		u.self = s - m.self
	}
	end := readMachineTicks()
	if total := end.total - m.machine.total; total > 0 {
		u.machineBusy = float64(total-(end.idle-m.machine.idle)) / float64(total)
	}
	return u
}

// machineTicks is the first line of /proc/stat: every CPU's time, and the
// part of it idle (idle and iowait), in clock ticks.
type machineTicks struct{ total, idle int64 }

func readMachineTicks() machineTicks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTicks{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var t machineTicks
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already counted in user time
			break
		}
		t.total += n
		if i == 3 || i == 4 {
			t.idle += n
		}
	}
	return t
}

// String writes the use as cores busy on average.
func (u cpuUse) String() string {
	cores := func(d time.Duration) string {
		return strconv.FormatFloat(d.Seconds()/max(u.wall.Seconds(), 1e-3), 'f', 2, 64)
	}
	s := fmt.Sprintf("load command %s s (%s cores)", strconv.FormatFloat(u.self.Seconds(), 'f', 2, 64), cores(u.self))
	if u.measured {
		s = fmt.Sprintf("followupd %s s (%s cores), ", strconv.FormatFloat(u.child.Seconds(), 'f', 2, 64), cores(u.child)) + s
	}
	return s + fmt.Sprintf("; machine %.0f%% busy (every process) over %s", 100*u.machineBusy, u.wall.Round(time.Millisecond))
}
