package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is a child the comparison started: a server under test, a
// database, or one of its own roles. Its output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has exited
	waitErr error         // its exit, once exited is closed
}

// startProcess starts cmd, with its stdout and stderr appended to logPath
// unless the caller set them. The child gets a process group of its own,
// so that a Ctrl-C reaches only the comparison, which then stops its
// children in order; and it is killed if the comparison dies.
func startProcess(name string, cmd *exec.Cmd, logPath string) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	if cmd.Stdout == nil {
		cmd.Stdout = log
	}
	if cmd.Stderr == nil {
		cmd.Stderr = log
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// pid is the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// running reports an error if the process has exited.
func (p *process) running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v); its log: %s\n%s", p.name, p.waitErr, p.logPath, logEnd(p.logPath))
	default:
		return nil
	}
}

// stop sends sig and waits up to limit for the process to exit, then kills
// it. It returns an error if it had to kill it.
func (p *process) stop(sig syscall.Signal, limit time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return nil
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not exit within %s of %s; killed it", p.name, limit, sig)
	}
}

// waitExit waits up to limit for the process to exit by itself and
// returns its exit error.
func (p *process) waitExit(limit time.Duration) error {
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not exit within %s; killed it", p.name, limit)
	}
}

// waitFor calls ready every 20 ms until it succeeds, the process exits,
// or limit passes.
func (p *process) waitFor(limit time.Duration, what string, ready func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := ready()
		if err == nil || errors.Is(err, context.Canceled) {
			return err
		}
		if exitErr := p.running(); exitErr != nil {
			return exitErr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not %s within %s (last: %v); its log: %s", p.name, what, limit, err, p.logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logEnd returns the end of a log file, for error messages.
func logEnd(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	const keep = 1500
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	return strings.TrimSpace(string(b))
}
