package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/followups/followups/internal/syncbuf"
)

// The README's first command: the demo shows a delivery, a drop, a retry
// and a cancel, then keeps serving until stopped.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "followupd"), "--demo", "--addr", freeAddr(t))
	cmd.Env = cleanEnv()
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const want = "demo finished: 2 delivered, 1 failed_dropped, 1 cancelled"
	for !strings.Contains(out.String(), want) {
		if ctx.Err() != nil {
			t.Fatalf("demo did not finish:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, line := range []string{"received a synthetic user turn", "answered 404", "drop_reason thread_not_found", "answered 503"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("demo output lacks %q", line)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo exit: %v\n%s", err, out)
	}
}
