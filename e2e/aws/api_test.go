package awse2e

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/eventbridge"
	"github.com/followups/followups/shared/followup"
)

func TestCancelBeforeFire(t *testing.T) {
	e := start(t, harness.Options{})
	f, _ := e.Create(createBody(threadID("cancel"), 3))
	name := eventbridge.ScheduleName(f.ID)
	_, getErr := e.Sched.GetSchedule(e.Ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(e.Stack.Group)})
	hadSchedule := getErr == nil

	resp := e.Do("DELETE", "/followups/"+f.ID, "")
	if resp.Status != 200 {
		t.Fatalf("DELETE: %d %s", resp.Status, resp.Body)
	}
	var c followup.Followup
	if err := resp.JSON(&c); err != nil || c.Status != followup.StatusCancelled || c.SettledAt == nil {
		t.Fatalf("DELETE answered %s (%v)", resp.Body, err)
	}
	checkBudget(t, resp.Invocation, "cancel", "schedule", 2)
	if hadSchedule {
		_, err := e.Sched.GetSchedule(e.Ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(e.Stack.Group)})
		var missing *schedtypes.ResourceNotFoundException
		if !errors.As(err, &missing) {
			t.Errorf("the schedule is still there after cancel (GetSchedule: %v)", err)
		}
	} else {
		t.Logf("no schedule named %s existed before cancel (%v)", name, getErr)
	}

	if again := e.Do("DELETE", "/followups/"+f.ID, ""); again.Status != 409 || !strings.Contains(string(again.Body), `"conflict"`) {
		t.Errorf("second DELETE: %d %s, want 409 conflict", again.Status, again.Body)
	}
	time.Sleep(time.Until(f.RunAt.Add(3 * time.Second)))
	if n := len(e.Thread.Requests(f.ID)); n != 0 {
		t.Errorf("a cancelled followup was dispatched %d times", n)
	}
	for _, fr := range e.Scheduler.Firings() {
		if fr.Schedule == name {
			t.Errorf("the cancelled followup's schedule ran: %+v", fr)
		}
	}
	if got := e.Get(f.ID); got.Status != followup.StatusCancelled || got.Attempts != 0 {
		t.Errorf("after its time: status %s, attempts %d", got.Status, got.Attempts)
	}
	for metric, want := range map[string]int{"FollowupCancelled": 1, "DispatchAttempts": 0, "FollowupDelivered": 0, "FollowupDropped": 0} {
		if n := e.MetricCount(metric, f.ID); n != want {
			t.Errorf("EMF %s printed %d times, want %d", metric, n, want)
		}
	}
}

func TestGetListAndCancelThroughTheAPI(t *testing.T) {
	e := start(t, harness.Options{})
	thread := threadID("listing")
	a, _ := e.Create(createBody(thread, 1))
	if got := e.WaitSettled(a.ID, settleTimeout); got.Status != followup.StatusDelivered {
		t.Fatalf("%s: %s, want delivered", a.ID, got.Status)
	}
	b, _ := e.Create(createBody(thread, 3600))
	c, _ := e.Create(createBody(thread, 3601))
	d, _ := e.Create(createBody(thread, 7200))

	r := e.Do("DELETE", "/followups/"+b.ID, "")
	if r.Status != 200 {
		t.Fatalf("DELETE %s: %d %s", b.ID, r.Status, r.Body)
	}
	checkBudget(t, r.Invocation, "cancel", "schedule", 2)
	r = e.Do("DELETE", "/threads/"+url.PathEscape(thread)+"/followups", "")
	var cancelled struct {
		Cancelled int      `json:"cancelled"`
		IDs       []string `json:"ids"`
	}
	if r.Status != 200 || r.JSON(&cancelled) != nil {
		t.Fatalf("DELETE thread: %d %s", r.Status, r.Body)
	}
	slices.Sort(cancelled.IDs)
	want := []string{c.ID, d.ID}
	slices.Sort(want)
	if cancelled.Cancelled != 2 || !slices.Equal(cancelled.IDs, want) {
		t.Errorf("cancelled %d: %v, want 2: %v", cancelled.Cancelled, cancelled.IDs, want)
	}
	setup.Report.AddCalls(harness.CallRecord{Test: t.Name(), Lifecycle: "cancel thread (2 of 4)", Function: "schedule",
		Calls: awsCalls(t, r.Invocation, "cancel thread")})

	all := listThread(t, e, thread, "")
	var ids []string
	for _, f := range all {
		ids = append(ids, f.ID)
	}
	if !slices.Equal(ids, []string{a.ID, b.ID, c.ID, d.ID}) {
		t.Errorf("listing order %v, want %v (run_at order)", ids, []string{a.ID, b.ID, c.ID, d.ID})
	}
	for i, f := range all {
		want := followup.StatusCancelled
		if i == 0 {
			want = followup.StatusDelivered
		}
		if f.Status != want {
			t.Errorf("%s listed as %s, want %s", f.ID, f.Status, want)
		}
	}
	if got := listThread(t, e, thread, "status=cancelled"); len(got) != 3 {
		t.Errorf("status=cancelled listed %d, want 3", len(got))
	}
	if got := listThread(t, e, thread, "status=delivered"); len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("status=delivered listed %+v, want %s", got, a.ID)
	}
	page1 := e.Do("GET", "/threads/"+url.PathEscape(thread)+"/followups?limit=3", "")
	var p1 struct {
		Followups  []followup.Followup `json:"followups"`
		NextCursor string              `json:"next_cursor"`
	}
	if page1.Status != 200 || page1.JSON(&p1) != nil || len(p1.Followups) != 3 || p1.NextCursor == "" {
		t.Fatalf("limit=3: %d %s", page1.Status, page1.Body)
	}
	page2 := e.Do("GET", "/threads/"+url.PathEscape(thread)+"/followups?limit=3&cursor="+url.QueryEscape(p1.NextCursor), "")
	var p2 struct {
		Followups  []followup.Followup `json:"followups"`
		NextCursor string              `json:"next_cursor"`
	}
	if page2.Status != 200 || page2.JSON(&p2) != nil || len(p2.Followups) != 1 || p2.Followups[0].ID != d.ID || p2.NextCursor != "" {
		t.Errorf("second page: %d %s", page2.Status, page2.Body)
	}
	for _, bad := range []struct{ target, code string }{
		{"/followups/" + followup.NewID(), "not_found"},
		{"/nowhere", "not_found"},
		{"/threads/" + url.PathEscape(thread) + "/followups?status=lost", "invalid_argument"},
	} {
		r := e.Do("GET", bad.target, "")
		var er struct {
			Error struct{ Code string } `json:"error"`
		}
		if r.JSON(&er) != nil || er.Error.Code != bad.code {
			t.Errorf("GET %s: %d %s, want %s", bad.target, r.Status, r.Body, bad.code)
		}
	}
	if r := e.Do("PUT", "/followups/"+a.ID, `{}`); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d %s, want 405", r.Status, r.Body)
	}
	getCalls := awsCalls(t, e.Do("GET", "/followups/"+a.ID, "").Invocation, "get")
	listCalls := awsCalls(t, e.Do("GET", "/threads/"+url.PathEscape(thread)+"/followups", "").Invocation, "list")
	setup.Report.AddCalls(harness.CallRecord{Test: t.Name(), Lifecycle: "get", Function: "schedule", Calls: getCalls})
	setup.Report.AddCalls(harness.CallRecord{Test: t.Name(), Lifecycle: "list", Function: "schedule", Calls: listCalls})
	t.Logf("AWS calls, get: %s; list: %s", harness.FormatCalls(getCalls), harness.FormatCalls(listCalls))
}

// listThread lists every followup of thread through the API, following
// cursors; query is extra query parameters.
func listThread(t *testing.T, e *harness.Env, thread, query string) []followup.Followup {
	t.Helper()
	var all []followup.Followup
	cursor := ""
	for range 20 {
		target := "/threads/" + url.PathEscape(thread) + "/followups?limit=100"
		if query != "" {
			target += "&" + query
		}
		if cursor != "" {
			target += "&cursor=" + url.QueryEscape(cursor)
		}
		r := e.Do("GET", target, "")
		var page struct {
			Followups  []followup.Followup `json:"followups"`
			NextCursor string              `json:"next_cursor"`
		}
		if r.Status != 200 || r.JSON(&page) != nil {
			t.Fatalf("GET %s: %d %s", target, r.Status, r.Body)
		}
		all = append(all, page.Followups...)
		if cursor = page.NextCursor; cursor == "" {
			return all
		}
	}
	t.Fatal("listing never ended")
	return nil
}

// schedules lists the names of the schedules in the stack's group.
func schedules(t *testing.T, e *harness.Env) []string {
	t.Helper()
	out, err := e.Sched.ListSchedules(e.Ctx, &scheduler.ListSchedulesInput{GroupName: aws.String(e.Stack.Group)})
	if err != nil {
		t.Fatalf("list schedules: %v", err)
	}
	var names []string
	for _, s := range out.Schedules {
		if aws.ToString(s.GroupName) == e.Stack.Group {
			names = append(names, aws.ToString(s.Name))
		}
	}
	return names
}
