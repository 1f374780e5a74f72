package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/followups/followups/shared/bolt"
	"github.com/followups/followups/shared/followup"
)

// storeFile is the store's file in followupd's data directory.
const storeFile = "followups.db"

// pending creates -pending followups due far ahead, then measures what
// they cost (memory, disk) and how fast followupd serves again after a
// restart with all of them pending.
func (r *runner) pending(ctx context.Context, res *result) error {
	d, err := r.daemonFor(ctx, "pending")
	if err != nil {
		return err
	}
	defer d.kill()
	childRows(res, d, r.o.childEnv)
	c := newAPIClient(d.base, r.o.apiToken, r.o.concurrency)
	defer c.close()
	build := r.requests(runToken("pending", res.run), farFuture)
	cpu := startCPU(d)
	b := c.createMany(ctx, r.o.pending, r.o.concurrency, build, false)
	used := cpu.stop()
	reportFailures(res, b)
	res.row("creates", "%s accepted, %d failed, in %s (%s creates/s) from %d clients, due in 23 h",
		num(float64(b.accepted)), b.failed(), b.finished.Sub(b.started).Round(time.Millisecond), num(b.rate()), r.o.concurrency)
	res.figure("creates/s", "1/s", b.rate())
	res.row("CPU", "%s", used)
	if used.measured && b.accepted > 0 {
		per := used.child / time.Duration(b.accepted)
		res.row("CPU per create", "followupd %s µs, load command %s µs (the store grows from empty to %s)",
			num(float64(per.Microseconds())), num(float64((used.self / time.Duration(b.accepted)).Microseconds())), num(float64(b.accepted)))
		res.figure("followupd CPU/create", "µs", float64(per.Nanoseconds())/1e3)
	}
	if d.cmd == nil {
		if n, err := c.metric(ctx, "followups_store_bytes"); err == nil {
			res.row("store", "followups_store_bytes %s (whole store, not only this run)", mib(int64(n)))
		}
		res.row("not measured", "memory and restart: -target is not a process this command started")
		return nil
	}

	m, err := readMemory(d.pid())
	if err != nil {
		return err
	}
	res.row("followupd memory", "peak RSS (VmHWM) %s with %s pending; RSS now %s (anon %s, file-backed %s)",
		mib(m.peak), num(float64(b.accepted)), mib(m.rss), mib(m.anon), mib(m.file))
	res.figure("peak RSS", "MiB", float64(m.peak)/(1<<20))
	res.atMost("peak RSS", float64(m.peak)/(1<<20), 128, "MiB")
	count, err := c.metric(ctx, "followups_store_followups")
	if err != nil {
		return err
	}
	if int(count) != b.accepted {
		res.fail("store holds %s followups, %s creates were accepted", num(count), num(float64(b.accepted)))
	}
	path := filepath.Join(d.dataDir, storeFile)
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	perFollowup := float64(fi.Size()) / max(count, 1)
	res.row("store file", "%s for %s followups: %s bytes per followup (file size / count)", mib(fi.Size()), num(count), num(perFollowup))
	res.figure("store file bytes/followup", "B", perFollowup)
	checkLog(res, d)
	took := stopChild(res, d, "stop before restart")
	res.row("stop", "SIGTERM to exit: %s", ms(took))
	if len(res.failures) > 0 {
		return nil
	}

	// Read the file with the store itself: how much of it is data, and
	// whether every accepted followup is there, scheduled.
	st, err := readStore(path)
	if err != nil {
		return err
	}
	res.row("store data", "%s in use or free for reuse (bbolt high-water mark): %s bytes per followup; %s scheduled",
		mib(st.DataBytes), num(float64(st.DataBytes)/max(float64(st.Followups), 1)), num(float64(st.ByStatus[followup.StatusScheduled])))
	if got := st.ByStatus[followup.StatusScheduled]; got != int64(b.accepted) {
		res.fail("after the stop the store has %d scheduled followups, %d creates were accepted", got, b.accepted)
	}

	d2, err := r.startChild(ctx, d.dataDir)
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	defer d2.kill()
	res.row("restarted", "pid %d, %s, log %s", d2.pid(), d2.base, d2.logPath)
	c2 := newAPIClient(d2.base, r.o.apiToken, 1)
	defer c2.close()
	healthy, serving, err := d2.waitServing(ctx, c2, build(b.requested).body, time.Minute)
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	upIn := serving.Sub(d2.started)
	startup := "not logged"
	if n := d2.startupMS(); n >= 0 {
		startup = fmt.Sprintf("%d ms", n)
	}
	res.row("serving again", "%s from process start to a create accepted (/healthz answered at %s; followupd's own startup_ms: %s)",
		ms(upIn), ms(healthy.Sub(d2.started)), startup)
	res.figure("restart to serving", "ms", msf(upIn))
	res.atMost("restart to serving", msf(upIn), 2000, "ms")
	if r.logsInfo() {
		rb, err := d2.waitRebuilt(ctx, 2*time.Minute)
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		res.row("timers rebuilt", "%s pending in %d ms (followupd's elapsed_ms from opening the store); line read %s after process start",
			num(float64(rb.Pending)), rb.ElapsedMS, ms(rb.seen.Sub(d2.started)))
		res.figure("timers rebuilt", "ms", float64(rb.ElapsedMS))
		if rb.Pending < int64(b.accepted) {
			res.fail("the restart rebuilt %d timers, %d followups were pending", rb.Pending, b.accepted)
		}
	} else {
		res.row("timers rebuilt", "not measured: the child's FOLLOWUPS_LOG_LEVEL hides the INFO line that tells it")
	}
	if m2, err := readMemory(d2.pid()); err == nil {
		res.row("memory after restart", "peak RSS (VmHWM) %s; RSS now %s (anon %s, file-backed %s)", mib(m2.peak), mib(m2.rss), mib(m2.anon), mib(m2.file))
		res.figure("peak RSS after restart", "MiB", float64(m2.peak)/(1<<20))
	}
	checkLog(res, d2)
	took = stopChild(res, d2, "stop after restart")
	res.row("stop", "SIGTERM to exit after restart: %s", ms(took))
	return nil
}

// readStore opens a stopped followupd's store and reads its statistics.
func readStore(path string) (bolt.Stats, error) {
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return bolt.Stats{}, err
	}
	defer s.Close()
	return s.Stats()
}
