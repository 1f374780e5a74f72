package harness

// Invocations returns the invocations of every function but the warm-ups.
func (e *Env) Invocations() []*Invocation {
	var out []*Invocation
	for _, f := range []*Function{e.Schedule, e.Fire, e.DLQ, e.Sweep} {
		for _, inv := range f.Invocations() {
			if !inv.Warmup {
				out = append(out, inv)
			}
		}
	}
	return out
}

// Metrics returns the EMF documents every function printed, warm-ups
// aside.
func (e *Env) Metrics() []EMF {
	var out []EMF
	for _, inv := range e.Invocations() {
		out = append(out, inv.Output.Metrics...)
	}
	return out
}

// MetricCount counts the documents that carry metric name for followup id
// (any followup when id is empty).
func (e *Env) MetricCount(name, id string) int {
	n := 0
	for _, m := range e.Metrics() {
		if id != "" && m.String("followup_id") != id {
			continue
		}
		for _, got := range m.Metrics() {
			if got == name {
				n++
			}
		}
	}
	return n
}

// Dropped returns the DropReason of every FollowupDropped document for
// followup id (any followup when id is empty).
func (e *Env) Dropped(id string) []string {
	var out []string
	for _, m := range e.Metrics() {
		if id != "" && m.String("followup_id") != id {
			continue
		}
		for _, got := range m.Metrics() {
			if got == "FollowupDropped" {
				out = append(out, m.String("DropReason"))
			}
		}
	}
	return out
}
