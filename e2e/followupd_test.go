package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/followups/followups/internal/syncbuf"
	"github.com/followups/followups/shared/dispatch"
)

// binDir holds the binaries built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "followups-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	// Every response of a followupd is checked against openapi.json.
	http.DefaultClient.Transport = checked
	build := exec.Command("go", "build", "-race", "-o", filepath.Join(dir, "followupd"), "../cmd/followupd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build followupd:", err)
		os.Exit(1)
	}
	// The followups command, for cli_test.go.
	build = exec.Command("go", "build", "-o", filepath.Join(dir, "followups"), "../cmd/followups")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build followups:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// thread is an httptest thread API that records what it receives and
// answers per thread as a test says.
type thread struct {
	*httptest.Server
	secret []byte
	mu     sync.Mutex
	got    []received
	answer func(threadID string, attempt int) (int, http.Header, string)
}

type received struct {
	RequestURI string
	Header     http.Header
	Body       []byte
	ThreadID   string
	Message    dispatch.Message
	At         time.Time
	SigErr     error
}

func newThread(t *testing.T, answer func(threadID string, attempt int) (int, http.Header, string)) *thread {
	t.Helper()
	th := &thread{secret: []byte("e2e-signing-secret"), answer: answer}
	th.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body, At: time.Now()}
		rec.SigErr = dispatch.Verify(th.secret, r.Header.Get(dispatch.SignatureHeader), body, time.Now(), 0)
		_ = json.Unmarshal(body, &rec.Message)
		p := strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/threads/"), "/messages")
		rec.ThreadID, _ = url.PathUnescape(p)
		th.mu.Lock()
		th.got = append(th.got, rec)
		th.mu.Unlock()
		var attempt int
		fmt.Sscan(r.Header.Get(dispatch.AttemptHeader), &attempt)
		status, hdr, resp := http.StatusCreated, http.Header{}, `{"ok":true}`
		if th.answer != nil {
			status, hdr, resp = th.answer(rec.ThreadID, attempt)
		}
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, resp)
	}))
	t.Cleanup(th.Close)
	return th
}

func (th *thread) received(followupID string) []received {
	th.mu.Lock()
	defer th.mu.Unlock()
	var out []received
	for _, r := range th.got {
		if followupID == "" || r.Message.Followup.ID == followupID {
			out = append(out, r)
		}
	}
	return out
}

// daemon is a running followupd process.
type daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	base    string
	dataDir string
	env     []string
	logs    *syncbuf.Buffer
	token   string
	done    chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startDaemon runs followupd against th with quick test timings; extra
// environment entries override them.
func startDaemon(t *testing.T, th *thread, dataDir string, extra ...string) *daemon {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	addr := freeAddr(t)
	env := []string{
		"FOLLOWUPS_ADDR=" + addr,
		"FOLLOWUPS_DATA_DIR=" + dataDir,
		"FOLLOWUPS_MIN_DELAY=1s",
		"FOLLOWUPS_RETRY_BASE=100ms",
		"FOLLOWUPS_RETRY_MAX=400ms",
		"FOLLOWUPS_DISPATCH_TIMEOUT=2s",
		"FOLLOWUPS_LOG_LEVEL=debug",
	}
	if th != nil {
		env = append(env, "THREAD_API_URL="+th.URL, "FOLLOWUPS_SIGNING_SECRET="+string(th.secret), "THREAD_API_TOKEN=thread-token")
	}
	env = append(env, extra...)
	d := &daemon{t: t, base: "http://" + addr, dataDir: dataDir, env: env, logs: &syncbuf.Buffer{}}
	checked.watch(addr)
	for _, e := range extra {
		if v, ok := strings.CutPrefix(e, "FOLLOWUPS_API_TOKEN="); ok {
			d.token = v
		}
	}
	d.start()
	t.Cleanup(func() { d.kill() })
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	d.cmd = exec.Command(filepath.Join(binDir, "followupd"))
	d.cmd.Env = append(cleanEnv(), d.env...)
	d.cmd.Stdout = d.logs
	d.cmd.Stderr = d.logs
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(d.base + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-d.done:
			d.t.Fatalf("followupd exited at start:\n%s", d.logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.t.Fatalf("followupd did not become healthy:\n%s", d.logs)
}

func (d *daemon) kill() {
	if d.cmd != nil && d.cmd.ProcessState == nil {
		d.cmd.Process.Kill()
		<-d.done
	}
}

func (d *daemon) signal(sig syscall.Signal) {
	d.cmd.Process.Signal(sig)
}

type reply struct {
	Status int
	Header http.Header
	Body   map[string]any
}

func (d *daemon) do(method, path, body string, headers ...string) reply {
	d.t.Helper()
	req, err := http.NewRequest(method, d.base+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	r := reply{Status: res.StatusCode, Header: res.Header}
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, &r.Body); err != nil {
		d.t.Fatalf("%s %s: %d %q is not a JSON object", method, path, res.StatusCode, raw)
	}
	return r
}

func (d *daemon) create(body string, headers ...string) map[string]any {
	d.t.Helper()
	r := d.do("POST", "/followups", body, headers...)
	if r.Status != 201 {
		d.t.Fatalf("create: %d %v", r.Status, r.Body)
	}
	return r.Body
}

// settle waits until the followup reaches a terminal status.
func (d *daemon) settle(id string) map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r := d.do("GET", "/followups/"+id, "")
		switch r.Body["status"] {
		case "delivered", "failed_dropped", "cancelled":
			return r.Body
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("%s did not settle:\n%s", id, d.logs)
	return nil
}

// logLines returns the JSON log lines, failing on any that is not JSON.
func (d *daemon) logLines() []map[string]any {
	d.t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(d.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			d.t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }
func num(v any) int    { f, _ := v.(float64); return int(f) }

// TestDebugAddrServesProfiles: FOLLOWUPS_DEBUG_ADDR serves Go's profiles
// on its own listener; the API's address never does.
func TestDebugAddrServesProfiles(t *testing.T) {
	debug := freeAddr(t)
	d := startDaemon(t, newThread(t, nil), "", "FOLLOWUPS_DEBUG_ADDR="+debug)
	res, err := http.Get("http://" + debug + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "goroutine profile:") {
		t.Fatalf("debug address: %d %.200s", res.StatusCode, body)
	}
	res, err = http.Get(d.base + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 && res.StatusCode != 401 {
		t.Fatalf("the API's address answers %d for a profile, want 404", res.StatusCode)
	}
}
