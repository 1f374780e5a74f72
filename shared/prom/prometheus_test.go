package prom_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/followup/followuptest"
	"github.com/followups/followups/shared/prom"
)

// droppedText is the exposition of followups_dropped_total with every
// reason at zero except those in n.
func droppedText(n map[followup.DropReason]int) string {
	var b strings.Builder
	b.WriteString("# HELP followups_dropped_total Followups settled failed_dropped, by drop reason.\n")
	b.WriteString("# TYPE followups_dropped_total counter\n")
	for _, r := range followup.DropReasons {
		fmt.Fprintf(&b, "followups_dropped_total{drop_reason=%q} %d\n", r, n[r])
	}
	return b.String()
}

func TestPrometheusStartsAtZero(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	prom.NewObserver(reg)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(droppedText(nil)), prom.MetricDropped); err != nil {
		t.Error(err)
	}
	want := `
# HELP followups_dispatch_attempts_total Dispatch attempts finished, by outcome.
# TYPE followups_dispatch_attempts_total counter
followups_dispatch_attempts_total{outcome="drop"} 0
followups_dispatch_attempts_total{outcome="retryable_error"} 0
followups_dispatch_attempts_total{outcome="success"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), prom.MetricDispatchAttempts); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestPrometheusCounts(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := prom.NewObserver(reg)

	p.Scheduled(followuptest.Sample(followup.StatusScheduled))
	p.Scheduled(followuptest.Sample(followup.StatusScheduled))
	p.Attempted(followuptest.Sample(followup.StatusDispatching), followuptest.AttemptOf(followup.OutcomeRetryableError), 2*time.Second)
	p.Attempted(followuptest.Sample(followup.StatusDispatching), followuptest.AttemptOf(followup.OutcomeSuccess), 40*time.Millisecond)
	p.Attempted(followuptest.Sample(followup.StatusDispatching), followuptest.AttemptOf(followup.OutcomeDrop), 10*time.Millisecond)
	p.Settled(followuptest.Sample(followup.StatusDelivered), 3*time.Second)
	p.Settled(followuptest.Sample(followup.StatusCancelled), 0)
	p.Settled(followuptest.Sample(followup.StatusScheduled), 0) // not terminal: ignored
	drops := map[followup.DropReason]int{}
	for i, r := range followup.DropReasons {
		for range i + 1 {
			p.Settled(followuptest.Dropped(r), 0)
		}
		drops[r] = i + 1
	}

	for _, tc := range []struct {
		name string
		want string
	}{
		{prom.MetricScheduled, "# HELP followups_scheduled_total Followups created.\n# TYPE followups_scheduled_total counter\nfollowups_scheduled_total 2\n"},
		{prom.MetricDelivered, "# HELP followups_delivered_total Followups delivered to their thread.\n# TYPE followups_delivered_total counter\nfollowups_delivered_total 1\n"},
		{prom.MetricCancelled, "# HELP followups_cancelled_total Followups cancelled.\n# TYPE followups_cancelled_total counter\nfollowups_cancelled_total 1\n"},
		{prom.MetricDropped, droppedText(drops)},
		{prom.MetricDispatchAttempts, `# HELP followups_dispatch_attempts_total Dispatch attempts finished, by outcome.
# TYPE followups_dispatch_attempts_total counter
followups_dispatch_attempts_total{outcome="drop"} 1
followups_dispatch_attempts_total{outcome="retryable_error"} 1
followups_dispatch_attempts_total{outcome="success"} 1
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.want), tc.name); err != nil {
				t.Error(err)
			}
		})
	}

	for _, tc := range []struct {
		name  string
		count uint64
		sum   float64
	}{
		{prom.MetricDispatchLatency, 3, 2.05},
		{prom.MetricFireLateness, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count, sum := histogram(t, reg, tc.name)
			if count != tc.count || !near(sum, tc.sum) {
				t.Errorf("count, sum = %d, %g; want %d, %g", count, sum, tc.count, tc.sum)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// histogram returns the sample count and sum of the histogram name.
func histogram(t *testing.T, g prometheus.Gatherer, name string) (uint64, float64) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("histogram %s not gathered", name)
	return 0, 0
}

func TestPrometheusLatenessBuckets(t *testing.T) {
	b := prom.FireLatenessBuckets
	if b[0] != 0.01 || b[len(b)-1] != 3600 {
		t.Errorf("lateness buckets span %g s to %g s, want 0.01 s to 3600 s", b[0], b[len(b)-1])
	}
}

func TestPrometheusRegistersTwicePanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	prom.NewObserver(reg)
	defer func() {
		if recover() == nil {
			t.Error("second NewPrometheus on one registry did not panic")
		}
	}()
	prom.NewObserver(reg)
}

func TestNewPrometheusNilRegisterer(t *testing.T) {
	p := prom.NewObserver(nil)
	p.Scheduled(followuptest.Sample(followup.StatusScheduled)) // counts without a registry
}

func TestGaugesReadOnScrape(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var depth atomic.Int64
	depth.Store(4)
	err := prom.RegisterGauges(reg, func() prom.GaugeValues {
		return prom.GaugeValues{Followups: 12, StoreBytes: 65536, QueueDepth: depth.Load()}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := func(depth int) string {
		return fmt.Sprintf(`
# HELP followups_queue_depth Followups waiting to be fired.
# TYPE followups_queue_depth gauge
followups_queue_depth %d
# HELP followups_store_bytes Size of the store on disk, in bytes.
# TYPE followups_store_bytes gauge
followups_store_bytes 65536
# HELP followups_store_followups Followup records in the store.
# TYPE followups_store_followups gauge
followups_store_followups 12
`, depth)
	}
	names := []string{prom.MetricQueueDepth, prom.MetricStoreBytes, prom.MetricStoreFollowups}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(4)), names...); err != nil {
		t.Error(err)
	}
	depth.Store(9)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want(9)), names...); err != nil {
		t.Error(err)
	}
	if err := prom.RegisterGauges(reg, func() prom.GaugeValues { return prom.GaugeValues{} }); err == nil {
		t.Error("registering the gauges twice succeeded")
	}
}

func TestHandlerExposesEveryMetric(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	p := prom.NewObserver(reg)
	if err := prom.RegisterGauges(reg, func() prom.GaugeValues { return prom.GaugeValues{QueueDepth: 3} }); err != nil {
		t.Fatal(err)
	}
	p.Settled(followuptest.Sample(followup.StatusDelivered), time.Second)
	p.Attempted(followuptest.Sample(followup.StatusDispatching), followuptest.AttemptOf(followup.OutcomeSuccess), time.Millisecond)

	srv := httptest.NewServer(prom.Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	text := string(body)
	for _, name := range []string{
		prom.MetricScheduled, prom.MetricDelivered, prom.MetricDropped, prom.MetricCancelled,
		prom.MetricDispatchAttempts, prom.MetricDispatchLatency + "_bucket", prom.MetricFireLateness + "_bucket",
		prom.MetricStoreFollowups, prom.MetricStoreBytes, prom.MetricQueueDepth,
	} {
		if !strings.Contains(text, "\n"+name) {
			t.Errorf("exposition lacks %s", name)
		}
	}
	if !strings.Contains(text, `followups_dropped_total{drop_reason="retries_exhausted"} 0`) {
		t.Errorf("exposition lacks the zero of a drop reason:\n%s", text)
	}
	if !strings.Contains(text, "followups_queue_depth 3") {
		t.Errorf("exposition lacks the queue depth:\n%s", text)
	}
}
