package telemetry

// DefaultNamespace is the CloudWatch namespace of the metrics, used when
// FOLLOWUPS_METRICS_NAMESPACE is not set.
const DefaultNamespace = "Followups"

// The CloudWatch metric names. They are contract: clients' alarms and
// dashboards name them, and so do the template's.
const (
	MetricFollowupScheduled = "FollowupScheduled"
	MetricFollowupDelivered = "FollowupDelivered"
	MetricFollowupDropped   = "FollowupDropped"
	MetricFollowupCancelled = "FollowupCancelled"
	MetricFollowupRedriven  = "FollowupRedriven"
	MetricDispatchAttempts  = "DispatchAttempts"
	MetricDispatchLatency   = "DispatchLatency"
	MetricFireLateness      = "FireLateness"
)

// The CloudWatch dimension keys.
const (
	// DimensionDropReason carries a followup.DropReason on FollowupDropped.
	DimensionDropReason = "DropReason"
	// DimensionOutcome carries a followup.Outcome on DispatchAttempts and
	// DispatchLatency.
	DimensionOutcome = "Outcome"
)

// The CloudWatch units used (a subset of MetricDatum's units).
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
)

// MetricSpec is one CloudWatch metric the EMF observer publishes: a name
// with one dimension set. The same name with another dimension set is
// another CloudWatch metric, and another MetricSpec.
type MetricSpec struct {
	Name string
	Unit string
	// Dimensions are the dimension keys; empty means the metric without
	// dimensions, the total over every value.
	Dimensions []string
}

// EmittedMetrics lists every (metric, dimension set) the EMF observer
// publishes, for checking alarms and dashboards against. Each call returns
// a fresh slice.
//
// Every metric is published without dimensions, so one alarm can watch the
// total. FollowupDropped is also published per DropReason, and
// DispatchAttempts and DispatchLatency per Outcome: retryable errors and
// their latency (a timeout shows as a retryable_error near the dispatch
// timeout) are what an operator looks at first. Each extra dimension set
// is billed as its own custom metric, so no other dimensions are used;
// followup_id and thread_id go into each line as plain properties, where
// Logs Insights can search them without creating metrics.
func EmittedMetrics() []MetricSpec {
	return []MetricSpec{
		{Name: MetricFollowupScheduled, Unit: UnitCount},
		{Name: MetricFollowupDelivered, Unit: UnitCount},
		{Name: MetricFireLateness, Unit: UnitMilliseconds},
		{Name: MetricFollowupDropped, Unit: UnitCount},
		{Name: MetricFollowupDropped, Unit: UnitCount, Dimensions: []string{DimensionDropReason}},
		{Name: MetricFollowupCancelled, Unit: UnitCount},
		{Name: MetricFollowupRedriven, Unit: UnitCount},
		{Name: MetricDispatchAttempts, Unit: UnitCount},
		{Name: MetricDispatchAttempts, Unit: UnitCount, Dimensions: []string{DimensionOutcome}},
		{Name: MetricDispatchLatency, Unit: UnitMilliseconds},
		{Name: MetricDispatchLatency, Unit: UnitMilliseconds, Dimensions: []string{DimensionOutcome}},
	}
}
