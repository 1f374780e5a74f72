package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/followups/followups/shared/followup"
)

// testList checks a thread's listing: order, pages, status filter, and
// threads kept apart whatever their ids hold.
func testList(t *testing.T, open Open) {
	list := func(t *testing.T, s followup.Store, q followup.ListQuery) ([]*followup.Followup, bool) {
		t.Helper()
		page, more, err := s.List(t.Context(), q)
		if err != nil {
			t.Fatalf("List %+v: %v", q, err)
		}
		return page, more
	}
	// listAll pages through q with q.Limit and checks that more is true
	// exactly until the last page.
	listAll := func(t *testing.T, s followup.Store, q followup.ListQuery) []*followup.Followup {
		t.Helper()
		var all []*followup.Followup
		for range 1000 {
			page, more := list(t, s, q)
			if len(page) > q.Limit {
				t.Fatalf("List returned %d, limit %d", len(page), q.Limit)
			}
			if more && len(page) != q.Limit {
				t.Fatalf("List returned a short page of %d (limit %d) with more", len(page), q.Limit)
			}
			all = append(all, page...)
			if !more {
				return all
			}
			p := followup.PositionOf(page[len(page)-1])
			q.After = &p
		}
		t.Fatalf("List never ended")
		return nil
	}

	t.Run("OrderAndPages", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		h := now.Add(time.Hour)
		created := []*followup.Followup{
			newFollowup("fu-e", "t-1", now, h.Add(3*time.Second)),
			newFollowup("fu-b", "t-1", now, h),
			newFollowup("fu-a", "t-1", now, h.Add(time.Nanosecond)),
			newFollowup("fu-c", "t-1", now, h),
			newFollowup("fu-d", "t-1", now, h.Add(-time.Nanosecond)),
			newFollowup("fu-aa", "t-1", now, h),
			newFollowup("fu-f", "t-1", now, h.Add(24*time.Hour)),
		}
		for _, f := range created {
			mustCreate(t, s, f)
		}
		want := []string{"fu-d", "fu-aa", "fu-b", "fu-c", "fu-a", "fu-e", "fu-f"}
		byID := map[string]*followup.Followup{}
		for _, f := range created {
			byID[f.ID] = f
		}

		for _, limit := range []int{1, 2, 3, 6, 7, 8, 100} {
			t.Run(fmt.Sprintf("Limit%d", limit), func(t *testing.T) {
				all := listAll(t, s, followup.ListQuery{ThreadID: "t-1", Limit: limit})
				if got := ids(all); !slices.Equal(got, want) {
					t.Fatalf("List order = %v, want %v", got, want)
				}
				for _, f := range all {
					requireSame(t, "listed followup", byID[f.ID], f)
				}
			})
		}

		page, more := list(t, s, followup.ListQuery{ThreadID: "t-1", Limit: 3})
		if got := ids(page); !more || !slices.Equal(got, want[:3]) {
			t.Fatalf("first page = %v, more %v; want %v, true", got, more, want[:3])
		}
		after := followup.Position{RunAt: h, ID: "fu-b"}
		page, more = list(t, s, followup.ListQuery{ThreadID: "t-1", Limit: 2, After: &after})
		if got := ids(page); !more || !slices.Equal(got, []string{"fu-c", "fu-a"}) {
			t.Fatalf("page after (h, fu-b) = %v, more %v; want [fu-c fu-a], true", got, more)
		}
		// A position that is not a listed followup still places the page.
		after = followup.Position{RunAt: h, ID: "fu-bb"}
		page, _ = list(t, s, followup.ListQuery{ThreadID: "t-1", Limit: 1, After: &after})
		if got := ids(page); !slices.Equal(got, []string{"fu-c"}) {
			t.Fatalf("page after (h, fu-bb) = %v, want [fu-c]", got)
		}
		after = followup.PositionOf(byID["fu-f"])
		page, more = list(t, s, followup.ListQuery{ThreadID: "t-1", Limit: 5, After: &after})
		if len(page) != 0 || more {
			t.Fatalf("page after the last = %v, more %v; want empty, false", ids(page), more)
		}
	})

	t.Run("StatusFilter", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		var fs []*followup.Followup
		for i := range 6 {
			f := newFollowup(fmt.Sprintf("fu-%d", i), "t-1", now, now.Add(time.Duration(i)*time.Minute))
			mustCreate(t, s, f)
			fs = append(fs, f)
		}
		apply(t, s, "fu-1", followup.Cancel(now))
		apply(t, s, "fu-4", followup.Cancel(now))
		apply(t, s, "fu-2", followup.Claim(now.Add(time.Hour), lease, 4))
		claimed := apply(t, s, "fu-5", followup.Claim(now.Add(time.Hour), lease, 4))
		run := followup.Run{Attempt: 1, StartedAt: now.Add(time.Hour), FinishedAt: now.Add(time.Hour + time.Second), DurationMS: 1000, Outcome: followup.OutcomeSuccess, HTTPStatus: 200}
		apply(t, s, "fu-5", followup.Settle(claimed, followup.Result{Status: followup.StatusDelivered, Run: &run}, run.FinishedAt))

		for _, tc := range []struct {
			status followup.Status
			want   []string
		}{
			{"", []string{"fu-0", "fu-1", "fu-2", "fu-3", "fu-4", "fu-5"}},
			{followup.StatusScheduled, []string{"fu-0", "fu-3"}},
			{followup.StatusCancelled, []string{"fu-1", "fu-4"}},
			{followup.StatusDispatching, []string{"fu-2"}},
			{followup.StatusDelivered, []string{"fu-5"}},
			{followup.StatusFailedDropped, nil},
		} {
			name := string(tc.status)
			if name == "" {
				name = "any"
			}
			t.Run(name, func(t *testing.T) {
				for _, limit := range []int{1, 2, 50} {
					all := listAll(t, s, followup.ListQuery{ThreadID: "t-1", Status: tc.status, Limit: limit})
					if got := ids(all); !slices.Equal(got, tc.want) {
						t.Fatalf("limit %d: List = %v, want %v", limit, got, tc.want)
					}
					for _, f := range all {
						if tc.status != "" && f.Status != tc.status {
							t.Fatalf("listed %s with status %s, want %s", f.ID, f.Status, tc.status)
						}
						requireSame(t, "listed followup", get(t, s, f.ID), f)
					}
				}
			})
		}
	})

	t.Run("ThreadsKeptApart", func(t *testing.T) {
		b := setup(t, open)
		s, now := b.store, b.now
		threads := []string{
			"t-1", "t-10", "t-", "t", "t-1/", "t-1/x", "t-1 x", "a b c",
			"ünïcødé/🙂", "ünïcødé", "/", "..x", "t-1\u00a0", "t-1%2F",
		}
		for i, th := range threads {
			for j := range 2 {
				mustCreate(t, s, newFollowup(fmt.Sprintf("fu-%02d-%d", i, j), th, now, now.Add(time.Duration(j)*time.Minute)))
			}
		}
		for i, th := range threads {
			want := []string{fmt.Sprintf("fu-%02d-0", i), fmt.Sprintf("fu-%02d-1", i)}
			all := listAll(t, s, followup.ListQuery{ThreadID: th, Limit: 1})
			if got := ids(all); !slices.Equal(got, want) {
				t.Fatalf("thread %q: List = %v, want %v", th, got, want)
			}
			for _, f := range all {
				if f.ThreadID != th {
					t.Fatalf("thread %q: listed %s of thread %q", th, f.ID, f.ThreadID)
				}
			}
		}
		page, more := list(t, s, followup.ListQuery{ThreadID: "t-2", Limit: 10})
		if len(page) != 0 || more {
			t.Fatalf("unknown thread: List = %v, more %v; want empty", ids(page), more)
		}
	})
}
