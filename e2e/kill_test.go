package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Invariant 6 under load: followupd is killed with SIGKILL while 16
// clients create as fast as they can. Every create it answered 201 is
// there after a restart and reaches the thread exactly once (none fell
// due before the kill).
func TestSIGKILLDuringCreatesLosesNoAcknowledgedCreate(t *testing.T) {
	th := newThread(t, ok201)
	dir := t.TempDir()
	d := startDaemon(t, th, dir, "FOLLOWUPS_LOG_LEVEL=warn")
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range 16 {
		wg.Go(func() {
			body := fmt.Sprintf(`{"thread_id":"kill-%d","prompt":"p","delay_seconds":4}`, c)
			for {
				res, err := client.Post(d.base+"/followups", "application/json", strings.NewReader(body))
				if err != nil {
					return // killed
				}
				var f struct{ ID string }
				err = json.NewDecoder(res.Body).Decode(&f)
				res.Body.Close()
				if res.StatusCode == http.StatusCreated && err == nil {
					mu.Lock()
					acked = append(acked, f.ID)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	wg.Wait()
	d.cmd = nil
	if len(acked) < 100 {
		t.Fatalf("only %d creates acknowledged before the kill", len(acked))
	}

	d2 := startDaemon(t, th, dir, "FOLLOWUPS_LOG_LEVEL=warn")
	for _, id := range acked {
		if f := d2.settle(id); f["status"] != "delivered" {
			t.Errorf("%s: %v", id, f)
		}
		if n := len(th.received(id)); n != 1 {
			t.Errorf("%s reached the thread %d times", id, n)
		}
	}
	t.Logf("%d creates acknowledged before SIGKILL: all kept, each delivered once", len(acked))
}
