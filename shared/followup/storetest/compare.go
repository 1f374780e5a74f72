package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// requireSame fails unless got is want as a whole value, once both are
// normalised: times in UTC without a monotonic reading, nil and empty Runs
// and Metadata alike. Every field counts, so a field a store forgets to
// keep fails the suite until every store keeps it.
func requireSame(t *testing.T, what string, want, got *followup.Followup) {
	t.Helper()
	if diff := diffFollowup(want, got); diff != "" {
		t.Fatalf("%s: %s", what, diff)
	}
}

func diffFollowup(want, got *followup.Followup) string {
	if want == nil || got == nil {
		if want == got {
			return ""
		}
		return fmt.Sprintf("got %v, want %v", got, want)
	}
	w, g := normalise(want), normalise(got)
	if reflect.DeepEqual(w, g) {
		return ""
	}
	var d []string
	wv, gv := reflect.ValueOf(w).Elem(), reflect.ValueOf(g).Elem()
	for i := range wv.NumField() {
		wf, gf := wv.Field(i).Interface(), gv.Field(i).Interface()
		if !reflect.DeepEqual(wf, gf) {
			d = append(d, fmt.Sprintf("%s = %s, want %s", wv.Type().Field(i).Name, show(gf), show(wf)))
		}
	}
	return fmt.Sprintf("followup %s differs:\n\t%s", want.ID, strings.Join(d, "\n\t"))
}

// normalise returns a copy of f that compares as the stored value should.
func normalise(f *followup.Followup) *followup.Followup {
	n := f.Clone()
	n.ReplacedPrevious = nil // a create response's field, never stored
	if len(n.Runs) == 0 {
		n.Runs = nil
	}
	if len(n.Metadata) == 0 {
		n.Metadata = nil
	}
	for _, tp := range []*time.Time{&n.RunAt, &n.CreatedAt, &n.UpdatedAt, &n.NextAttemptAt, &n.LeaseUntil, &n.SweepAt, n.SettledAt} {
		if tp != nil {
			*tp = utc(*tp)
		}
	}
	for i := range n.Runs {
		n.Runs[i].StartedAt = utc(n.Runs[i].StartedAt)
		n.Runs[i].FinishedAt = utc(n.Runs[i].FinishedAt)
	}
	return n
}

// utc drops the location and the monotonic reading; the zero time stays
// the zero time.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

func show(v any) string {
	switch v := v.(type) {
	case time.Time:
		return v.Format(time.RFC3339Nano)
	case *time.Time:
		if v != nil {
			return v.Format(time.RFC3339Nano)
		}
	case *int64:
		if v != nil {
			return fmt.Sprint(*v)
		}
	case json.RawMessage:
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf("%+v", v)
}

// applied returns what f becomes under tr, as every store must write it.
func applied(f *followup.Followup, tr followup.Transition) *followup.Followup {
	w := f.Clone()
	tr.Apply(w)
	return w
}

// ids returns the ids of fs, in order.
func ids(fs []*followup.Followup) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.ID
	}
	return out
}
