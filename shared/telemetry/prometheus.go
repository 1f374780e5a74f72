package telemetry

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/followups/followups/shared/followup"
)

// Prometheus metric names, for followupd's /metrics.
const (
	PromScheduled        = "followups_scheduled_total"
	PromDelivered        = "followups_delivered_total"
	PromDropped          = "followups_dropped_total"
	PromCancelled        = "followups_cancelled_total"
	PromDispatchAttempts = "followups_dispatch_attempts_total"
	PromDispatchLatency  = "followups_dispatch_latency_seconds"
	PromFireLateness     = "followups_fire_lateness_seconds"
	PromStoreFollowups   = "followups_store_followups"
	PromStoreBytes       = "followups_store_bytes"
	PromQueueDepth       = "followups_queue_depth"
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

// Prometheus is a followup.Observer that counts events in client_golang
// metrics, for followupd.
type Prometheus struct {
	scheduled prometheus.Counter
	delivered prometheus.Counter
	dropped   *prometheus.CounterVec
	cancelled prometheus.Counter
	attempts  *prometheus.CounterVec
	latency   prometheus.Histogram
	lateness  prometheus.Histogram
}

var _ followup.Observer = (*Prometheus)(nil)

// NewPrometheus creates the metrics and registers them with reg (none
// when reg is nil). It panics if reg already holds metrics of these
// names, as prometheus.MustRegister does: that is a wiring mistake.
//
// Every drop reason and every outcome starts at zero, so a dashboard or
// alert sees the series before the first event.
func NewPrometheus(reg prometheus.Registerer) *Prometheus {
	p := &Prometheus{
		scheduled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: PromScheduled,
			Help: "Followups created.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: PromDelivered,
			Help: "Followups delivered to their thread.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: PromDropped,
			Help: "Followups settled failed_dropped, by drop reason.",
		}, []string{LabelDropReason}),
		cancelled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: PromCancelled,
			Help: "Followups cancelled.",
		}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: PromDispatchAttempts,
			Help: "Dispatch attempts finished, by outcome.",
		}, []string{LabelOutcome}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    PromDispatchLatency,
			Help:    "Duration of one dispatch attempt to the thread API.",
			Buckets: DispatchLatencyBuckets,
		}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    PromFireLateness,
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
		reg.MustRegister(p.scheduled, p.delivered, p.dropped, p.cancelled, p.attempts, p.latency, p.lateness)
	}
	return p
}

// Scheduled counts a created followup.
func (p *Prometheus) Scheduled(*followup.Followup) {
	p.scheduled.Inc()
}

// Attempted counts an attempt by outcome and observes its latency.
func (p *Prometheus) Attempted(_ *followup.Followup, a followup.Attempt, latency time.Duration) {
	p.attempts.WithLabelValues(orUnknown(string(a.Outcome))).Inc()
	p.latency.Observe(latency.Seconds())
}

// Settled counts a delivery (observing its lateness), a drop by reason, or
// a cancellation. A status that is not terminal counts nothing.
func (p *Prometheus) Settled(f *followup.Followup, lateness time.Duration) {
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
		followups: prometheus.NewDesc(PromStoreFollowups, "Followup records in the store.", nil, nil),
		bytes:     prometheus.NewDesc(PromStoreBytes, "Size of the store on disk, in bytes.", nil, nil),
		depth:     prometheus.NewDesc(PromQueueDepth, "Followups waiting to be fired.", nil, nil),
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
