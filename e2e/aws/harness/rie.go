package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/followups/followups/internal/syncbuf"
)

// RIEEnv names the variable that may point at an aws-lambda-rie binary.
const RIEEnv = "FOLLOWUPS_RIE"

// RIESkipMessage is why a test is skipped when there is no emulator.
const RIESkipMessage = "needs the Lambda Runtime Interface Emulator (aws-lambda-rie): run make test " +
	"(scripts/aws-tools.sh builds it into .tools/bin), or set " + RIEEnv

// invokePath is the emulator's invocation endpoint, the Lambda Invoke API's.
const invokePath = "/2015-03-31/functions/function/invocations"

// FindRIE returns the emulator binary: $FOLLOWUPS_RIE, else
// root/.tools/bin/aws-lambda-rie, else aws-lambda-rie on PATH.
func FindRIE(root string) (string, error) {
	if p := os.Getenv(RIEEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", RIEEnv, p, err)
		}
		return p, nil
	}
	if root != "" {
		p := filepath.Join(root, ".tools", "bin", "aws-lambda-rie")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("aws-lambda-rie")
	if err != nil {
		return "", errors.New("aws-lambda-rie not found in " + RIEEnv + ", .tools/bin or PATH")
	}
	return p, nil
}

// FunctionConfig says how to run one function under the emulator.
type FunctionConfig struct {
	// Name is the function's name (schedule, fire, dlq).
	Name string
	// RIE and Bootstrap are the emulator and the function's binary.
	RIE, Bootstrap string
	// Dir is the working directory and HOME of both processes.
	Dir string
	// Env is the whole environment the emulator passes to the function;
	// nothing is inherited from the test process.
	Env map[string]string
	// Timeout is the function's timeout (AWS_LAMBDA_FUNCTION_TIMEOUT).
	Timeout time.Duration
	// Warmup is the first invocation's payload, sent by StartFunction to
	// measure the cold start; it should do no work the tests count.
	Warmup []byte
}

// Function is one function running under its own emulator process, like
// one Lambda execution environment: one invocation at a time.
type Function struct {
	Name string
	// ColdStart is how long the first invocation took from process start.
	ColdStart ColdStart

	cfg    FunctionConfig
	url    string
	cmd    *exec.Cmd
	client *http.Client
	out    *outputLog
	stderr *syncbuf.Buffer
	exited chan struct{}

	invokeMu sync.Mutex // one invocation at a time, as in one environment

	mu          sync.Mutex
	invocations []*Invocation
}

// ColdStart is the start-up of one function's environment.
type ColdStart struct {
	Function string
	// Total runs from starting the emulator process to the first
	// invocation's response: emulator start, bootstrap start and init, and
	// the invocation itself.
	Total time.Duration
	// Listening runs from process start until the emulator accepted a
	// connection.
	Listening time.Duration
	// Init is the bootstrap's init (process start to its first request for
	// work) as the emulator reports it in its INIT REPORT line. The REPORT
	// line's "Init Duration" is not it: the emulator starts the init
	// asynchronously and reports only that call.
	Init time.Duration
	// Invoke is the first invocation's own duration (Total = Listening +
	// Invoke, roughly).
	Invoke time.Duration
}

// Invocation is one call of a function and everything it produced.
type Invocation struct {
	RequestID string
	// Status is the emulator's HTTP status: 200, or 502 when the runtime
	// crashed.
	Status int
	// Payload is the function's response, or its error document.
	Payload []byte
	// Err is set when the function returned an error or crashed.
	Err *FunctionError
	// Output is what the function wrote during the invocation.
	Output Output
	Start  time.Time
	Took   time.Duration
	// Warmup marks the invocation StartFunction made.
	Warmup bool
}

// FunctionError is the error document Lambda returns for a failed
// invocation.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *FunctionError) Error() string { return e.Type + ": " + e.Message }

// StartFunction starts cfg's function under the emulator and invokes it
// once with cfg.Warmup to measure its cold start. The caller must Stop it.
func StartFunction(ctx context.Context, cfg FunctionConfig) (*Function, error) {
	var lastErr error
	for range 3 {
		f, err := startOnce(ctx, cfg)
		if err == nil {
			return f, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("a port was taken")

func startOnce(ctx context.Context, cfg FunctionConfig) (*Function, error) {
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	runtimePort, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + apiPort
	// Both addresses are explicit: the defaults (0.0.0.0:8080 for the
	// invoke API, 127.0.0.1:9001 for the runtime API) are shared by every
	// emulator on the machine.
	cmd := exec.Command(cfg.RIE,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", "127.0.0.1:"+runtimePort,
		cfg.Bootstrap)
	cmd.Dir = cfg.Dir
	cmd.Env = envList(cfg)
	// Its own process group, so Stop ends the emulator and the bootstrap
	// it started, and nothing else.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stderr := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = pw, stderr
	f := &Function{
		Name: cfg.Name, cfg: cfg, url: "http://" + addr + invokePath, cmd: cmd,
		client: &http.Client{Timeout: cfg.Timeout + 10*time.Second},
		out:    newOutputLog(), stderr: stderr, exited: make(chan struct{}),
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.RIE, err)
	}
	pw.Close() // the processes hold the write end; EOF once both are gone
	go func() {
		f.out.read(pr)
		pr.Close()
	}()
	go func() {
		_ = cmd.Wait()
		close(f.exited)
	}()

	// An emulator that could not bind its ports exits at once; one that
	// answers may still be another process on a port that was taken in
	// the meantime, which the first invocation then shows.
	portTaken := func() bool { return strings.Contains(stderr.String(), "address already in use") }
	if err := f.awaitListening(ctx, 10*time.Second); err != nil {
		f.Stop()
		if portTaken() {
			return nil, fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, fmt.Errorf("function %s: %v\nemulator log:\n%s", cfg.Name, err, stderr.String())
	}
	listening := time.Since(start)
	inv, err := f.invoke(ctx, cfg.Warmup, true)
	if err == nil && inv.Err != nil && portTaken() {
		err = inv.Err
	}
	if err != nil {
		f.Stop()
		if portTaken() {
			return nil, fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, fmt.Errorf("function %s: first invocation: %v\nemulator log:\n%s", cfg.Name, err, stderr.String())
	}
	f.ColdStart = ColdStart{
		Function:  cfg.Name,
		Total:     inv.Start.Add(inv.Took).Sub(start),
		Listening: listening,
		Init:      initReport(stderr.String()),
		Invoke:    inv.Took,
	}
	return f, nil
}

func (f *Function) awaitListening(ctx context.Context, timeout time.Duration) error {
	addr := strings.TrimPrefix(strings.SplitN(f.url, invokePath, 2)[0], "http://")
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-f.exited:
			return fmt.Errorf("the emulator exited before it listened on %s", addr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the emulator did not listen on %s within %s", addr, timeout)
		}
	}
}

// Invoke calls the function with payload, as Lambda's Invoke API would,
// and waits for its response and its output. A function error is not an
// error here: it is in Invocation.Err.
func (f *Function) Invoke(ctx context.Context, payload []byte) (*Invocation, error) {
	return f.invoke(ctx, payload, false)
}

func (f *Function) invoke(ctx context.Context, payload []byte, warmup bool) (*Invocation, error) {
	f.invokeMu.Lock()
	defer f.invokeMu.Unlock()
	id := newRequestID()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Amzn-RequestId", id)
	inv := &Invocation{RequestID: id, Start: time.Now(), Warmup: warmup}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", f.Name, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	inv.Took = time.Since(inv.Start)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: read response: %w", f.Name, err)
	}
	inv.Status, inv.Payload = resp.StatusCode, body
	inv.Err = functionError(resp.StatusCode, body)
	wait := 5 * time.Second
	if resp.StatusCode != http.StatusOK {
		wait = 500 * time.Millisecond
	}
	inv.Output = f.out.wait(id, wait)
	f.mu.Lock()
	f.invocations = append(f.invocations, inv)
	f.mu.Unlock()
	return inv, nil
}

// functionError recognises a failed invocation: the emulator answers 200
// with Lambda's error document when the handler returned an error, and an
// error status when the runtime crashed or timed out.
func functionError(status int, body []byte) *FunctionError {
	var doc map[string]json.RawMessage
	isDoc := json.Unmarshal(body, &doc) == nil
	_, hasType := doc["errorType"]
	_, hasMessage := doc["errorMessage"]
	if status == http.StatusOK && !(isDoc && (hasType || hasMessage)) {
		return nil
	}
	fe := &FunctionError{}
	if isDoc {
		_ = json.Unmarshal(body, fe)
	}
	if fe.Type == "" && fe.Message == "" {
		fe.Type, fe.Message = fmt.Sprintf("HTTP %d", status), strings.TrimSpace(string(body))
	}
	return fe
}

// Invocations returns every invocation made so far, the warm-up included.
func (f *Function) Invocations() []*Invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Invocation(nil), f.invocations...)
}

// Tail returns the function's last n output lines and the emulator's log,
// for a failure message.
func (f *Function) Tail(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s output (last %d lines)\n", f.Name, n)
	for _, l := range f.out.tail(n) {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	logs := strings.Split(strings.TrimSpace(f.stderr.String()), "\n")
	k := min(10, n, len(logs))
	fmt.Fprintf(&b, "--- %s emulator log (last %d lines)\n", f.Name, k)
	for _, l := range logs[len(logs)-k:] {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// Stop kills the emulator and the bootstrap it started (its process group)
// and waits for the emulator. An emulator that died on its own may have
// left its bootstrap running, which keeps the group, so the group is
// killed either way.
func (f *Function) Stop() {
	if f.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-f.exited:
	case <-time.After(10 * time.Second):
	}
}

var initReportLine = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// initReport returns the first init duration the emulator logged.
func initReport(log string) time.Duration {
	m := initReportLine.FindStringSubmatch(log)
	if m == nil {
		return 0
	}
	ms, _ := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond))
}

func envList(cfg FunctionConfig) []string {
	env := map[string]string{
		"PATH": "/usr/local/bin:/usr/bin:/bin",
		"HOME": cfg.Dir,
		"TZ":   "UTC",
		// The emulator's own log level (its lines go to our stderr buffer).
		"LOG_LEVEL":                   "info",
		"AWS_LAMBDA_FUNCTION_NAME":    cfg.Name,
		"AWS_LAMBDA_FUNCTION_TIMEOUT": fmt.Sprint(int(cfg.Timeout / time.Second)),
	}
	for k, v := range cfg.Env {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]string, 0, len(keys))
	for _, k := range keys {
		list = append(list, k+"="+env[k])
	}
	return list
}

// ports hands out the loopback ports the emulators listen on. The
// emulator binds them itself, after freePort has let go of them, so a
// port must not be handed out twice, nor be one the kernel hands to
// another process's bind to port 0 in that gap: ports are drawn below the
// ephemeral range.
var ports struct {
	sync.Mutex
	used map[int]bool
}

func freePort() (string, error) {
	ports.Lock()
	defer ports.Unlock()
	if ports.used == nil {
		ports.used = map[int]bool{}
	}
	lo, hi := portRange()
	for range 1000 {
		p := lo + mathrand.IntN(hi-lo)
		if ports.used[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		ports.used[p] = true
		return strconv.Itoa(p), nil
	}
	return "", errors.New("no free loopback port below the ephemeral range")
}

// portRange is the 10000 ports below the kernel's ephemeral port range.
func portRange() (lo, hi int) {
	hi = 32768 // Linux's default ip_local_port_range starts here
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11024 {
				hi = n
			}
		}
	}
	return hi - 10000, hi
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// skipOrFail skips t with msg, or fails it when the run requires the AWS
// side (FOLLOWUPS_REQUIRE_AWS=1).
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("FOLLOWUPS_REQUIRE_AWS") == "1" {
		t.Fatalf("FOLLOWUPS_REQUIRE_AWS=1 but: %s", msg)
	}
	t.Skip(msg)
}
