package telemetry

import (
	"time"

	"github.com/followups/followups/shared/followup"
)

// Multi returns an Observer that tells each of obs, in order, about every
// event: logs and metrics from one call site. Nil observers are skipped,
// and nested Multis are flattened.
func Multi(obs ...followup.Observer) followup.Observer {
	var m multi
	for _, o := range obs {
		switch o := o.(type) {
		case nil:
		case multi:
			m = append(m, o...)
		default:
			m = append(m, o)
		}
	}
	switch len(m) {
	case 0:
		return followup.NopObserver{}
	case 1:
		return m[0]
	}
	return m
}

type multi []followup.Observer

func (m multi) Scheduled(f *followup.Followup) {
	for _, o := range m {
		o.Scheduled(f)
	}
}

func (m multi) Attempted(f *followup.Followup, a followup.Attempt, latency time.Duration) {
	for _, o := range m {
		o.Attempted(f, a, latency)
	}
}

func (m multi) Settled(f *followup.Followup, lateness time.Duration) {
	for _, o := range m {
		o.Settled(f, lateness)
	}
}
