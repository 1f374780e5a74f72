package samlocal

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Service is one sam local start-api or start-lambda process.
type Service struct {
	// Command is start-api or start-lambda.
	Command string
	// Addr is where it listens (host:port) and URL its base URL.
	Addr, URL string
	// Ready is how long it took from start until it listened.
	Ready time.Duration

	log    string
	pid    int
	exited chan struct{}
	err    error
}

// readyTimeout bounds a start.
const readyTimeout = 3 * time.Minute

// Start starts sam local command (start-api or start-lambda) listening on
// addr, with warm containers, and waits until it listens.
// Its output (sam's messages and the functions' output) goes to the file
// log. The caller must Stop it.
func (s *SAM) Start(ctx context.Context, l Local, command, addr, log string) (*Service, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sam local %s: address %q: %w", command, addr, err)
	}
	// Readiness is a connection to addr, so addr must be free first, or
	// another server there would pass for sam.
	free, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sam local %s: %w", command, err)
	}
	free.Close()
	// Warm containers, each made at its function's first invocation (LAZY):
	// SAM CLI 1.161.1 with EAGER sometimes makes a second container for a
	// function at its first invocation and leaves the first one running
	// when it stops.
	args := append([]string{"local", command, "--host", host, "--port", port, "--warm-containers", "LAZY"}, l.args()...)
	interruptible()
	// Not CommandContext: a cancelled context would kill sam, which then
	// leaves its containers behind. Stop interrupts it instead.
	cmd := s.Command(context.Background(), args...)
	// Its own process group: a Ctrl-C at the terminal reaches the program
	// that started it, which stops it in order, not sam in the middle of
	// its start.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	svc := &Service{Command: command, Addr: addr, URL: "http://" + addr, log: log, exited: make(chan struct{})}
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	start := time.Now()
	err = cmd.Start()
	f.Close() // sam holds it now
	if err != nil {
		return nil, fmt.Errorf("start sam local %s: %w", command, err)
	}
	svc.pid = cmd.Process.Pid
	go func() {
		svc.err = cmd.Wait()
		close(svc.exited)
	}()
	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			svc.Ready = time.Since(start)
			return svc, nil
		}
		select {
		case <-svc.exited:
			return nil, fmt.Errorf("sam local %s exited before it listened on %s (%v):\n%s", command, addr, svc.err, svc.Output())
		case <-ctx.Done():
			svc.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			svc.Stop()
			return nil, fmt.Errorf("sam local %s did not listen on %s within %s:\n%s", command, addr, readyTimeout, svc.Output())
		}
	}
}

// interruptible makes sure the sam processes started from here get SIGINT's
// default disposition. A process inherits an ignored SIGINT (a shell starts
// background jobs so), and sam then cannot be interrupted, which is the
// only way it removes its containers: SIGTERM leaves some behind. Once Go
// handles the signal, a child gets the default; the signal was ignored
// here, so handling it by discarding changes nothing for this process.
func interruptible() {
	interruptOnce.Do(func() {
		if signal.Ignored(os.Interrupt) {
			signal.Notify(make(chan os.Signal, 1), os.Interrupt)
		}
	})
}

var interruptOnce sync.Once

// stopTimeout bounds how long sam may take to remove its containers.
const stopTimeout = time.Minute

// Stop interrupts sam (SIGINT, as Ctrl-C would), so that it removes its
// containers, and waits until it has exited; after stopTimeout it is
// killed. It returns an error when sam had to be killed.
func (svc *Service) Stop() error {
	select {
	case <-svc.exited:
		return nil
	default:
	}
	_ = syscall.Kill(svc.pid, syscall.SIGINT)
	select {
	case <-svc.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = syscall.Kill(-svc.pid, syscall.SIGKILL)
	<-svc.exited
	return fmt.Errorf("sam local %s did not stop within %s of SIGINT; killed", svc.Command, stopTimeout)
}

// Exited is closed when the process has ended.
func (svc *Service) Exited() <-chan struct{} { return svc.exited }

// Output is what sam printed so far: its messages and the functions'
// output.
func (svc *Service) Output() string {
	b, _ := os.ReadFile(svc.log)
	return string(b)
}

// Log is the file of the output.
func (svc *Service) Log() string { return svc.log }

var containerLine = regexp.MustCompile(`SAM_CONTAINER_ID: ([0-9a-f]{12,64})`)

// Containers returns the ids of the containers sam said it created.
func (svc *Service) Containers() []string {
	var ids []string
	for _, m := range containerLine.FindAllStringSubmatch(svc.Output(), -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// Tail returns the last n lines of the output, for a failure message.
func (svc *Service) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(svc.Output(), "\n"), "\n")
	return fmt.Sprintf("--- sam local %s (last %d lines)\n%s", svc.Command, min(n, len(lines)),
		strings.Join(lines[max(0, len(lines)-n):], "\n"))
}

// FreeAddr returns a loopback address nothing listens on, for a service.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
