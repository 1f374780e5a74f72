package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon is a followupd under load: a child process the command started,
// or one it was pointed at with -target (cmd nil), which it can neither
// restart nor measure from the outside.
type daemon struct {
	base    string // http://host:port
	cmd     *exec.Cmd
	dataDir string
	logPath string
	started time.Time // just before the process was started

	listening chan listeningLine
	rebuilt   chan rebuiltLine
	exited    chan struct{} // closed when the process has exited
	waitErr   error         // the process's exit, once exited is closed
	logDone   chan struct{} // closed when its stderr is read to the end

	mu       sync.Mutex
	errors   int
	warnings int
	notes    []string // the first few ERROR and WARN messages
}

// listeningLine is followupd's "followupd listening" log line.
type listeningLine struct {
	StartupMS int64 `json:"startup_ms"`
}

// rebuiltLine is followupd's "timers rebuilt from store" log line.
type rebuiltLine struct {
	Pending   int64 `json:"pending"`
	ElapsedMS int64 `json:"elapsed_ms"`
	seen      time.Time
}

// startDaemon starts bin with env, listening on addr and keeping its data
// in dataDir, with its log in logPath, and waits until it accepts
// connections.
func startDaemon(ctx context.Context, bin, addr, dataDir, logPath string, env []string) (*daemon, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// A pipe of our own, not StderrPipe: the reader sees EOF when the
	// process exits, and Wait does not race with it.
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	d := &daemon{
		base:      "http://" + addr,
		dataDir:   dataDir,
		logPath:   logPath,
		listening: make(chan listeningLine, 1),
		rebuilt:   make(chan rebuiltLine, 1),
		exited:    make(chan struct{}),
		logDone:   make(chan struct{}),
	}
	d.cmd = exec.Command(bin)
	d.cmd.Env = append(env, "FOLLOWUPS_ADDR="+addr, "FOLLOWUPS_DATA_DIR="+dataDir)
	d.cmd.Stderr = pw
	d.started = time.Now()
	if err := d.cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	pw.Close()
	go d.watch(pr, logFile)
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return d, nil
		}
		select {
		case <-d.exited:
			<-d.logDone
			return nil, fmt.Errorf("followupd exited at start (%v); its log: %s\n%s", d.waitErr, logPath, tail(logPath, 20))
		case <-time.After(5 * time.Millisecond):
		}
	}
	d.kill()
	return nil, fmt.Errorf("followupd did not accept connections on %s within 30 s; its log: %s", addr, logPath)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago. The process that gets it listens on it at once.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// pid is the process id.
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// startupMS is what followupd logged as its startup time, -1 when it has
// not (yet) logged it.
func (d *daemon) startupMS() int64 {
	select {
	case l := <-d.listening:
		d.listening <- l
		return l.StartupMS
	default:
		return -1
	}
}

// watch copies the child's log to file and picks out the lines the
// scenarios need. It looks at each line with a substring test first: the
// child logs a line per request, on the same two cores it is measured on.
func (d *daemon) watch(r io.ReadCloser, file *os.File) {
	defer close(d.logDone)
	defer r.Close()
	defer file.Close()
	w := bufio.NewWriterSize(file, 256<<10)
	defer w.Flush()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			_, _ = w.Write(line)
			d.inspect(line)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			// A very long line: the rest follows in the next slices.
		case err != nil:
			return
		}
	}
}

var (
	msgListening = []byte(`"msg":"followupd listening"`)
	msgRebuilt   = []byte(`"msg":"timers rebuilt from store"`)
	levelError   = []byte(`"level":"ERROR"`)
	levelWarn    = []byte(`"level":"WARN"`)
)

func (d *daemon) inspect(line []byte) {
	switch {
	case bytes.Contains(line, msgListening):
		var l listeningLine
		if json.Unmarshal(line, &l) == nil {
			offer(d.listening, l)
		}
	case bytes.Contains(line, msgRebuilt):
		l := rebuiltLine{seen: time.Now()}
		if json.Unmarshal(line, &l) == nil {
			offer(d.rebuilt, l)
		}
	case bytes.Contains(line, levelError):
		d.note(&d.errors, line)
	case bytes.Contains(line, levelWarn):
		d.note(&d.warnings, line)
	}
}

func (d *daemon) note(count *int, line []byte) {
	var v struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
	}
	_ = json.Unmarshal(line, &v)
	d.mu.Lock()
	defer d.mu.Unlock()
	*count++
	if len(d.notes) < 5 {
		d.notes = append(d.notes, v.Level+" "+v.Msg)
	}
}

// logged returns how many ERROR and WARN lines the child logged, with the
// first few messages.
func (d *daemon) logged() (errs, warns int, notes []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.errors, d.warnings, append([]string(nil), d.notes...)
}

// offer sends v unless the channel is full: the first line is the one that
// counts.
func offer[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// waitRebuilt waits for the "timers rebuilt from store" line.
func (d *daemon) waitRebuilt(ctx context.Context, limit time.Duration) (rebuiltLine, error) {
	select {
	case l := <-d.rebuilt:
		return l, nil
	case <-d.exited:
		return rebuiltLine{}, fmt.Errorf("followupd exited (%v) before rebuilding its timers", d.waitErr)
	case <-time.After(limit):
		return rebuiltLine{}, fmt.Errorf("followupd did not log %q within %s", msgRebuilt, limit)
	case <-ctx.Done():
		return rebuiltLine{}, ctx.Err()
	}
}

// waitServing polls /healthz until it answers 200, then makes creates until
// one is accepted, and returns both moments.
func (d *daemon) waitServing(ctx context.Context, c *apiClient, body []byte, limit time.Duration) (healthy, serving time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for healthy.IsZero() {
		if status, _, err := c.call(ctx, http.MethodGet, "/healthz", nil, ""); err == nil && status == http.StatusOK {
			healthy = time.Now()
			break
		}
		if err := pause(ctx, 2*time.Millisecond); err != nil {
			return healthy, serving, fmt.Errorf("/healthz did not answer 200 within %s", limit)
		}
	}
	for {
		status, resp, err := c.call(ctx, http.MethodPost, "/followups", body, "")
		if err == nil && status == http.StatusCreated {
			return healthy, time.Now(), nil
		}
		if err := pause(ctx, 2*time.Millisecond); err != nil {
			return healthy, serving, fmt.Errorf("no create accepted within %s (last: %d %s)", limit, status, resp)
		}
	}
}

// pause sleeps for d, or returns ctx's error.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop sends SIGTERM and waits for the process to exit, killing it after
// limit. It returns how long the exit took and an error unless the process
// exited cleanly (status 0) in time.
func (d *daemon) stop(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("signal followupd: %w", err)
	}
	select {
	case <-d.exited:
	case <-time.After(limit):
		d.kill()
		return time.Since(start), fmt.Errorf("followupd did not exit within %s of SIGTERM; killed it", limit)
	}
	took := time.Since(start)
	<-d.logDone
	if d.waitErr != nil {
		return took, fmt.Errorf("followupd exited after SIGTERM with %v", d.waitErr)
	}
	return took, nil
}

// kill ends the process, if it still runs, and waits for it.
func (d *daemon) kill() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.exited:
	default:
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	<-d.logDone
}

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

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
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
