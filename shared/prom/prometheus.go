// Package prom is followupd's Prometheus side: an Observer that counts what
// happens to followups in client_golang metrics, the gauges of the store
// and the queue, and the /metrics handler. The Lambda functions report
// through EMF (shared/telemetry) instead and do not link this package.
package prom

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/followups/followups/shared/followup"
)

// Prometheus metric names, for followupd's /metrics.
const (
	MetricScheduled        = "followups_scheduled_total"
	MetricDelivered        = "followups_delivered_total"
	MetricDropped          = "followups_dropped_total"
	MetricCancelled        = "followups_cancelled_total"
	MetricRedriven         = "followups_redriven_total"
	MetricDispatchAttempts = "followups_dispatch_attempts_total"
	MetricDispatchLatency  = "followups_dispatch_latency_seconds"
	MetricFireLateness     = "followups_fire_lateness_seconds"
	MetricStoreFollowups   = "followups_store_followups"
	MetricStoreBytes       = "followups_store_bytes"
	MetricQueueDepth       = "followups_queue_depth"
)

// Prometheus label names.
const (
	LabelDropReason = "drop_reason"
	LabelOutcome    = "outcome"
)

// Histogram buckets, in seconds.
var (
	// DispatchLatencyBuckets spans a fast thread API (5 ms) to well past the
	// default 10 s dispatch timeout.
	DispatchLatencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// FireLatenessBuckets spans a precise local timer (10 ms) to an hour of
	// retries.
	FireLatenessBuckets = []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
)

// Observer is a followup.Observer that counts events in client_golang
// metrics, for followupd.
type Observer struct {
	scheduled prometheus.Counter
	delivered prometheus.Counter
	dropped   *prometheus.CounterVec
	cancelled prometheus.Counter
	redriven  prometheus.Counter
	attempts  *prometheus.CounterVec
	latency   prometheus.Histogram
	lateness  prometheus.Histogram
}

var _ followup.Observer = (*Observer)(nil)

// NewObserver creates the metrics and registers them with reg (none
// when reg is nil). It panics if reg already holds metrics of these
// names, as prometheus.MustRegister does: that is a wiring mistake.
//
// Every drop reason and every outcome starts at zero, so a dashboard or
// alert sees the series before the first event.
func NewObserver(reg prometheus.Registerer) *Observer {
	p := &Observer{
		scheduled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricScheduled,
			Help: "Followups created.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricDelivered,
			Help: "Followups delivered to their thread.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDropped,
			Help: "Followups settled failed_dropped, by drop reason.",
		}, []string{LabelDropReason}),
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricCancelled,
			Help: "Followups cancelled.",
		}),
		redriven: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricRedriven,
			Help: "Messages of overdue followups the sweep sent again: something lost them.",
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDispatchAttempts,
			Help: "Dispatch attempts finished, by outcome.",
		}, []string{LabelOutcome}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricDispatchLatency,
			Help:    "Duration of one dispatch attempt to the thread API.",
			Buckets: DispatchLatencyBuckets,
		}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    MetricFireLateness,
			Help:    "Delivery time minus run_at of delivered followups.",
			Buckets: FireLatenessBuckets,
		}),
	}
	for _, r := range followup.DropReasons {
		p.dropped.WithLabelValues(string(r))
	}
	for _, o := range []followup.Outcome{followup.OutcomeSuccess, followup.OutcomeRetryableError, followup.OutcomeDrop} {
		p.attempts.WithLabelValues(string(o))
	}
	if reg != nil {
		reg.MustRegister(p.scheduled, p.delivered, p.dropped, p.cancelled, p.redriven, p.attempts, p.latency, p.lateness)
	}
	return p
}

// Scheduled counts a created followup.
func (p *Observer) Scheduled(*followup.Followup) {
	p.scheduled.Inc()
}

// Attempted counts an attempt by outcome and observes its latency.
func (p *Observer) Attempted(_ *followup.Followup, a followup.Attempt, latency time.Duration) {
	p.attempts.WithLabelValues(orUnknown(string(a.Outcome))).Inc()
	p.latency.Observe(latency.Seconds())
}

// Settled counts a delivery (observing its lateness), a drop by reason, or
// a cancellation. A status that is not terminal counts nothing.
func (p *Observer) Settled(f *followup.Followup, lateness time.Duration) {
	if f == nil {
		return
	}
	switch f.Status {
	case followup.StatusDelivered:
		p.delivered.Inc()
		p.lateness.Observe(lateness.Seconds())
	case followup.StatusFailedDropped:
		p.dropped.WithLabelValues(orUnknown(string(f.DropReason))).Inc()
	case followup.StatusCancelled:
		p.cancelled.Inc()
	}
}

// Redriven counts a followup whose message the sweep sent again.
func (p *Observer) Redriven(followup.OverdueFollowup) { p.redriven.Inc() }

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// GaugeValues is the state followupd reports on each scrape.
type GaugeValues struct {
	// Followups is how many followup records the store holds.
	Followups int64
	// StoreBytes is the size of the store on disk.
	StoreBytes int64
	// QueueDepth is how many followups wait in the fire queue or timer.
	QueueDepth int64
}

// RegisterGauges registers the gauges followups_store_followups,
// followups_store_bytes and followups_queue_depth with reg. read is called
// once per scrape, from the scraping goroutine; it must be quick and safe
// for concurrent use.
func RegisterGauges(reg prometheus.Registerer, read func() GaugeValues) error {
	return reg.Register(&gauges{
		read:      read,
		followups: prometheus.NewDesc(MetricStoreFollowups, "Followup records in the store.", nil, nil),
		bytes:     prometheus.NewDesc(MetricStoreBytes, "Size of the store on disk, in bytes.", nil, nil),
		depth:     prometheus.NewDesc(MetricQueueDepth, "Followups waiting to be fired.", nil, nil),
	})
}

// gauges is a collector that reads all three values with one call, so a
// scrape sees them from the same moment and the store is asked once.
type gauges struct {
	read                    func() GaugeValues
	followups, bytes, depth *prometheus.Desc
}

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.followups
	ch <- g.bytes
	ch <- g.depth
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	v := g.read()
	ch <- prometheus.MustNewConstMetric(g.followups, prometheus.GaugeValue, float64(v.Followups))
	ch <- prometheus.MustNewConstMetric(g.bytes, prometheus.GaugeValue, float64(v.StoreBytes))
	ch <- prometheus.MustNewConstMetric(g.depth, prometheus.GaugeValue, float64(v.QueueDepth))
}

// Handler serves the metrics gathered from g in the Prometheus exposition
// formats. A metric that fails to gather is reported and the rest served.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
