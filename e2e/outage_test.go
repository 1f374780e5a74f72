package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/followups/followups/shared/awstest"
)

// diskFailing makes every write and flush of process pid fail with ENOSPC
// ("no space left on device") until stop is called, by injecting the
// error into its pwrite64 and fdatasync system calls with strace: the
// store really fails, reads still work. (A full file system does not do
// it reliably: bbolt rewrites pages of its file that are already
// allocated, which need no new blocks.) It needs strace and the right to
// trace (root); without them the test is skipped, or fails under
// FOLLOWUPS_REQUIRE_AWS=1, as the test command runs it. The same outage is
// covered in unit tests by a failing store (shared/followup).
func diskFailing(t *testing.T, pid int) (stop func()) {
	t.Helper()
	cmd := exec.Command("strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=pwrite64,fdatasync",
		"-e", "inject=pwrite64,fdatasync:error=ENOSPC", "-p", strconv.Itoa(pid))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		msg := "needs strace to fail the store's writes: " + err.Error()
		if os.Getenv(awstest.RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// strace attaches within a moment, or gives up (no right to trace).
	select {
	case err := <-exited:
		msg := fmt.Sprintf("strace could not attach: %v %s", err, stderr.String())
		if os.Getenv(awstest.RequireEnv) == "1" || os.Geteuid() == 0 {
			t.Fatal(msg)
		}
		t.Skip(msg)
	case <-time.After(time.Second):
	}
	return func() {
		_ = cmd.Process.Signal(os.Interrupt) // strace detaches and exits
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("strace did not detach")
		}
	}
}

// Attempts, not receives: 500 followups fall due while followupd's disk
// refuses every write for 30 s. Every claim meets a store that cannot
// write; none of those receives spends an attempt, the messages come back
// later and later, and once the disk takes writes again every followup is
// delivered on its first attempt. None is dropped.
func TestFullDiskOutageDropsNothing(t *testing.T) {
	t.Parallel()
	th := newThread(t, ok201)
	d := startDaemon(t, th, "", "FOLLOWUPS_LOG_LEVEL=warn")
	t.Cleanup(func() {
		if t.Failed() {
			logs := d.logs.String()
			t.Logf("followupd's log, last 8 KiB:\n%s", logs[max(0, len(logs)-8<<10):])
		}
	})
	const n = 500
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ids[i] = str(d.create(fmt.Sprintf(`{"thread_id":"disk-%d","prompt":"p","delay_seconds":%d}`, i%20, 6+i%10))["id"])
		})
	}
	wg.Wait()
	created := time.Now()

	stop := diskFailing(t, d.cmd.Process.Pid)
	outageStart := time.Now()
	if since := outageStart.Sub(created); since > 5*time.Second {
		t.Fatalf("the outage began %s after the creates; the first followups fell due before it", since)
	}
	select {
	case <-d.done:
		stop()
		t.Fatalf("followupd exited %s into the outage: %v", time.Since(outageStart).Round(time.Millisecond), d.cmd.ProcessState)
	case <-time.After(30 * time.Second):
	}
	if got := len(th.received("")); got != 0 {
		t.Fatalf("the thread received %d requests while the disk refused writes", got)
	}
	stop()
	outage := time.Since(outageStart)

	dropped := 0
	deadline := time.Now().Add(3 * time.Minute)
	for _, id := range ids {
		var f map[string]any
		for {
			f = d.do("GET", "/followups/"+id, "").Body
			if s := f["status"]; s == "delivered" || s == "failed_dropped" || s == "cancelled" || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		switch {
		case f["status"] == "failed_dropped":
			dropped++
			t.Errorf("%s dropped: %s, %s", id, f["drop_reason"], f["last_error"])
		case f["status"] != "delivered" || num(f["attempts"]) != 1:
			t.Errorf("%s: status %v after %v attempts", id, f["status"], f["attempts"])
		}
	}
	got := 0
	for _, id := range ids {
		if len(th.received(id)) == 1 {
			got++
		}
	}
	t.Logf("disk refused writes for %s: %d of %d followups delivered once each after it, all on their first attempt, %d dropped",
		outage.Round(time.Second), got, n, dropped)
	if got != n {
		t.Errorf("%d of %d followups reached the thread exactly once", got, n)
	}
}
