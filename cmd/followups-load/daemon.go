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
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon is a followupd under load: a child process the command started,
// or one it was pointed at with -target (cmd nil), which it can neither
// restart nor measure from the outside.
type daemon struct {
	base string // http://host:port
	// debugAddr serves the child's profiles (FOLLOWUPS_DEBUG_ADDR), when
	// the command asked for them.
	debugAddr string
	cmd       *exec.Cmd
	dataDir   string
	logPath   string
	started   time.Time // just before the process was started

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

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
