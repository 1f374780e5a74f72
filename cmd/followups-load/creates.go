package main

import (
	"context"
	"slices"
	"time"
)

// creates measures POST /followups: -creates creates from -concurrency
// keep-alive clients, due far enough ahead that nothing fires, after
// -warmup creates that open the connections and warm the process.
func (r *runner) creates(ctx context.Context, res *result) error {
	d, err := r.daemonFor(ctx, "creates")
	if err != nil {
		return err
	}
	defer d.kill()
	childRows(res, d, r.o.childEnv)
	c := newAPIClient(d.base, r.o.apiToken, r.o.concurrency)
	defer c.close()
	token := runToken("creates", res.run)
	build := r.requests(token, farFuture)

	warmed := 0
	if r.o.warmup > 0 {
		w := c.createMany(ctx, r.o.warmup, r.o.concurrency, build, false)
		reportFailures(res, w)
		warmed = w.accepted
	}
	offset := r.o.warmup
	cpu := startCPU(d)
	prof := r.startProfile(ctx, d, res, "creates")
	b := c.createMany(ctx, r.o.creates, r.o.concurrency, func(i int) createRequest { return build(offset + i) }, false)
	used := cpu.stop()
	prof.wait(res)
	reportFailures(res, b)

	keys := "no Idempotency-Key"
	if r.o.idempotency {
		keys = "a distinct Idempotency-Key each"
	}
	res.row("creates", "%s accepted, %d failed; %d concurrent keep-alive clients; %s warm-up creates before, not counted; %s",
		num(float64(b.accepted)), b.failed(), r.o.concurrency, num(float64(r.o.warmup)), keys)
	res.row("body", "%d bytes: thread_id (1,000 threads), prompt, reason, metadata, delay_seconds 82800", len(build(0).body))
	res.row("throughput", "%s creates/s (%s in %s)", num(b.rate()), num(float64(b.accepted)), b.finished.Sub(b.started).Round(time.Millisecond))
	res.figure("creates/s", "1/s", b.rate())
	lat := slices.Clone(b.latency)
	slices.Sort(lat)
	if len(lat) > 0 {
		p50, p99, top := percentile(lat, 0.5), percentile(lat, 0.99), lat[len(lat)-1]
		res.row("latency", "p50 %s  p99 %s  max %s (request sent to answer read, per create)", ms(p50), ms(p99), ms(top))
		res.figure("latency p50", "ms", msf(p50))
		res.figure("latency p99", "ms", msf(p99))
	}
	res.atLeast("throughput", b.rate(), 5000, "creates/s")
	res.row("CPU", "%s", used)
	if used.measured && b.accepted > 0 {
		per := used.child / time.Duration(b.accepted)
		res.row("CPU per create", "followupd %s µs, load command %s µs", num(float64(per.Microseconds())), num(float64((used.self / time.Duration(b.accepted)).Microseconds())))
		res.figure("followupd CPU/create", "µs", float64(per.Nanoseconds())/1e3)
		res.atMost("CPU per create", float64(per.Nanoseconds())/1e3, 50, "µs")
	}

	if d.cmd != nil {
		if m, err := readMemory(d.pid()); err == nil {
			res.row("followupd memory", "peak RSS (VmHWM) %s; RSS now %s (anon %s, file-backed %s)", mib(m.peak), mib(m.rss), mib(m.anon), mib(m.file))
		}
		// Every 201 must be a record: the store's own count agrees.
		want := float64(warmed + b.accepted)
		if n, err := c.metric(ctx, "followups_store_followups"); err != nil {
			res.fail("read store count: %v", err)
		} else if n != want {
			res.fail("store holds %s followups, %s creates were accepted", num(n), num(want))
		} else {
			res.row("store", "holds %s followups: one per accepted create", num(n))
		}
	}
	checkLog(res, d)
	took := stopChild(res, d, "stop")
	if d.cmd != nil {
		res.row("stop", "SIGTERM to exit: %s", ms(took))
	}
	return nil
}
