package eventbridge_test

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/followups/followups/shared/awscount"
	"github.com/followups/followups/shared/awstest"
	"github.com/followups/followups/shared/eventbridge"
	"github.com/followups/followups/shared/followup"
)

func TestAt(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   time.Time
		want string
	}{
		{"WholeSecond", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), "at(2030-01-02T03:04:05)"},
		{"RoundsUp", time.Date(2030, 1, 2, 3, 4, 5, 1, time.UTC), "at(2030-01-02T03:04:06)"},
		{"RoundsUpOverMidnight", time.Date(2030, 12, 31, 23, 59, 59, 999999999, time.UTC), "at(2031-01-01T00:00:00)"},
		{"InUTC", time.Date(2030, 6, 1, 12, 0, 0, 500, time.FixedZone("UTC+2", 2*3600)), "at(2030-06-01T10:00:01)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := eventbridge.At(tc.in)
			if got != tc.want {
				t.Fatalf("At(%s) = %s, want %s", tc.in.Format(time.RFC3339Nano), got, tc.want)
			}
			back, err := eventbridge.ParseAt(got)
			if err != nil {
				t.Fatalf("ParseAt(%s): %v", got, err)
			}
			if back.Before(tc.in) || back.Sub(tc.in) >= time.Second {
				t.Fatalf("ParseAt(At(t)) = %s, want within [t, t+1s) of %s", back, tc.in)
			}
		})
	}
	for _, bad := range []string{"", "at(2030-01-02T03:04:05", "rate(5 minutes)", "at(2030-01-02 03:04:05)", "at(2030-01-02T03:04:05Z)"} {
		if _, err := eventbridge.ParseAt(bad); err == nil {
			t.Errorf("ParseAt(%q): no error", bad)
		}
	}
}

func TestScheduleName(t *testing.T) {
	id := followup.NewID()
	if got := eventbridge.ScheduleName(id); got != id {
		t.Fatalf("ScheduleName(%s) = %s, want the id itself", id, got)
	}
	long := strings.Repeat("x", 65)
	for _, in := range []string{"fu with space", "fu/slash", long, "ünï"} {
		got := eventbridge.ScheduleName(in)
		if len(got) != 64 || !strings.HasPrefix(got, "h.") || strings.Trim(got[2:], "0123456789abcdef") != "" {
			t.Fatalf("ScheduleName(%q) = %q, want h. and 62 hex digits", in, got)
		}
		if again := eventbridge.ScheduleName(in); again != got {
			t.Fatalf("ScheduleName(%q) is not deterministic: %q, %q", in, got, again)
		}
	}
	if eventbridge.ScheduleName("a b") == eventbridge.ScheduleName("a c") {
		t.Fatalf("two ids got one name")
	}
}

const (
	queueARN = "arn:aws:sqs:us-east-1:123456789012:followups-fire"
	dlqARN   = "arn:aws:sqs:us-east-1:123456789012:followups-dlq"
	roleARN  = "arn:aws:iam::123456789012:role/followups-scheduler"
)

// fixture is a fresh schedule group and a Scheduler making schedules in it.
type fixture struct {
	sched  *eventbridge.Scheduler
	client *scheduler.Client
	group  string
	calls  *awscount.Counter
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := awstest.Config(t)
	client := scheduler.NewFromConfig(cfg)
	group := awstest.Name("followups-test")
	if _, err := client.CreateScheduleGroup(t.Context(), &scheduler.CreateScheduleGroupInput{Name: aws.String(group)}); err != nil {
		t.Fatalf("CreateScheduleGroup: %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteScheduleGroup(context.Background(), &scheduler.DeleteScheduleGroupInput{Name: aws.String(group)})
	})
	calls := &awscount.Counter{}
	counted := scheduler.NewFromConfig(cfg, scheduler.WithAPIOptions(calls.APIOption))
	s := eventbridge.New(counted, eventbridge.Config{
		Group: group, QueueARN: queueARN, RoleARN: roleARN, DeadLetterARN: dlqARN,
		MaxEventAge: 2 * time.Hour, MaxRetryAttempts: 10,
	})
	return &fixture{sched: s, client: client, group: group, calls: calls}
}

func (x *fixture) get(t *testing.T, name string) *scheduler.GetScheduleOutput {
	t.Helper()
	out, err := x.client.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(x.group)})
	if err != nil {
		t.Fatalf("GetSchedule %s: %v", name, err)
	}
	return out
}

func TestSchedule(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t)
	f := &followup.Followup{
		ID:            followup.NewID(),
		ThreadID:      "thread/with slash ü",
		NextAttemptAt: time.Date(2031, 3, 4, 5, 6, 7, 250_000_000, time.FixedZone("CET", 3600)),
	}

	before := x.calls.Snapshot()
	if err := x.sched.Schedule(t.Context(), f); err != nil {
		t.Fatalf("Schedule: %v", err)
	}
	if got := x.calls.Delta(before); !maps.Equal(got, map[string]int{"Scheduler.CreateSchedule": 1}) {
		t.Fatalf("Schedule made calls %v, want one CreateSchedule", got)
	}

	got := x.get(t, f.ID)
	check := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("Name", aws.ToString(got.Name), f.ID)
	check("GroupName", aws.ToString(got.GroupName), x.group)
	// Due at 04:06:07.25 UTC: a minute early, on the minute.
	check("ScheduleExpression", aws.ToString(got.ScheduleExpression), "at(2031-03-04T04:05:00)")
	check("ScheduleExpressionTimezone", aws.ToString(got.ScheduleExpressionTimezone), "UTC")
	check("ActionAfterCompletion", got.ActionAfterCompletion, types.ActionAfterCompletionDelete)
	if got.FlexibleTimeWindow == nil {
		t.Fatalf("FlexibleTimeWindow missing")
	}
	check("FlexibleTimeWindow.Mode", got.FlexibleTimeWindow.Mode, types.FlexibleTimeWindowModeOff)
	if got.Target == nil {
		t.Fatalf("Target missing")
	}
	check("Target.Arn", aws.ToString(got.Target.Arn), queueARN)
	check("Target.RoleArn", aws.ToString(got.Target.RoleArn), roleARN)
	if got.Target.DeadLetterConfig == nil {
		t.Fatalf("Target.DeadLetterConfig missing")
	}
	check("Target.DeadLetterConfig.Arn", aws.ToString(got.Target.DeadLetterConfig.Arn), dlqARN)
	if got.Target.RetryPolicy == nil {
		t.Fatalf("Target.RetryPolicy missing")
	}
	check("MaximumEventAgeInSeconds", aws.ToInt32(got.Target.RetryPolicy.MaximumEventAgeInSeconds), int32(7200))
	check("MaximumRetryAttempts", aws.ToInt32(got.Target.RetryPolicy.MaximumRetryAttempts), int32(10))
	var m followup.Message
	if err := json.Unmarshal([]byte(aws.ToString(got.Target.Input)), &m); err != nil {
		t.Fatalf("Target.Input %q: %v", aws.ToString(got.Target.Input), err)
	}
	check("Target.Input", m, followup.MessageFor(f))
	// Scheduler fires within the minute of at(): always before the
	// followup is due, by at most two minutes.
	if at, err := eventbridge.ParseAt(aws.ToString(got.ScheduleExpression)); err != nil ||
		at.Add(time.Minute).After(f.NextAttemptAt) || f.NextAttemptAt.Sub(at) > 2*time.Minute {
		t.Errorf("schedule fires from %s (%v), for a followup due at %s", at, err, f.NextAttemptAt)
	}

	before = x.calls.Snapshot()
	if err := x.sched.Schedule(t.Context(), f); err != nil {
		t.Fatalf("Schedule again: %v", err)
	}
	if got := x.calls.Delta(before); !maps.Equal(got, map[string]int{"Scheduler.CreateSchedule": 1}) {
		t.Fatalf("Schedule again made calls %v, want one CreateSchedule", got)
	}

	for i := range 2 {
		before = x.calls.Snapshot()
		if err := x.sched.Unschedule(t.Context(), f.ID); err != nil {
			t.Fatalf("Unschedule #%d: %v", i+1, err)
		}
		if got := x.calls.Delta(before); !maps.Equal(got, map[string]int{"Scheduler.DeleteSchedule": 1}) {
			t.Fatalf("Unschedule #%d made calls %v, want one DeleteSchedule", i+1, got)
		}
	}
	_, err := x.client.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String(f.ID), GroupName: aws.String(x.group)})
	if err == nil {
		t.Fatalf("GetSchedule after Unschedule: the schedule is still there")
	}
}

// sent records direct sends.
type sent struct {
	m     followup.Message
	delay time.Duration
}

type sender struct{ got []sent }

func (s *sender) Send(_ context.Context, m followup.Message, delay time.Duration) error {
	s.got = append(s.got, sent{m, delay})
	return nil
}

// A followup due within 15 minutes of its create skips Scheduler: its
// message goes to the fire queue with a delay to the second.
func TestScheduleDirect(t *testing.T) {
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	var direct sender
	s := eventbridge.New(nil, eventbridge.Config{Direct: &direct, Clock: fixedClock{now.Add(40 * time.Millisecond)}})
	f := &followup.Followup{ID: "fu-1", ThreadID: "t-1", CreatedAt: now, NextAttemptAt: now.Add(15 * time.Minute)}
	if err := s.Schedule(t.Context(), f); err != nil { // a nil client would panic on CreateSchedule
		t.Fatalf("Schedule: %v", err)
	}
	if len(direct.got) != 1 || direct.got[0].m != followup.MessageFor(f) || direct.got[0].delay != 15*time.Minute-40*time.Millisecond {
		t.Fatalf("direct sends %+v", direct.got)
	}
}

func TestScheduleTime(t *testing.T) {
	for _, due := range []time.Time{
		time.Date(2031, 3, 4, 5, 6, 0, 0, time.UTC),
		time.Date(2031, 3, 4, 5, 6, 59, 999999999, time.UTC),
		time.Date(2031, 3, 4, 0, 0, 30, 0, time.FixedZone("X", -7*3600)),
	} {
		at := eventbridge.ScheduleTime(due)
		if at.Second() != 0 || at.Nanosecond() != 0 || at.Location() != time.UTC {
			t.Errorf("ScheduleTime(%s) = %s: not a whole minute in UTC", due, at)
		}
		// Scheduler fires in [at, at+60s): always before due, at most 2 min early.
		if latest := at.Add(time.Minute); latest.After(due) || due.Sub(at) > 2*time.Minute {
			t.Errorf("ScheduleTime(%s) = %s", due, at)
		}
	}
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func TestScheduleHashedName(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t)
	f := &followup.Followup{ID: "fu with spaces/and slashes", ThreadID: "t-1", NextAttemptAt: time.Now().Add(time.Hour)}
	if err := x.sched.Schedule(t.Context(), f); err != nil {
		t.Fatalf("Schedule: %v", err)
	}
	got := x.get(t, eventbridge.ScheduleName(f.ID))
	var m followup.Message
	if err := json.Unmarshal([]byte(aws.ToString(got.Target.Input)), &m); err != nil || m.FollowupID != f.ID {
		t.Fatalf("Target.Input = %s (%v), want the followup's own id", aws.ToString(got.Target.Input), err)
	}
	if err := x.sched.Unschedule(t.Context(), f.ID); err != nil {
		t.Fatalf("Unschedule: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	awstest.Endpoint(t)
	t.Parallel()
	x := newFixture(t)
	s := eventbridge.New(scheduler.NewFromConfig(awstest.Config(t)), eventbridge.Config{Group: x.group, QueueARN: queueARN, RoleARN: roleARN})
	f := &followup.Followup{ID: followup.NewID(), ThreadID: "t-1", NextAttemptAt: time.Now().Add(time.Hour)}
	if err := s.Schedule(t.Context(), f); err != nil {
		t.Fatalf("Schedule: %v", err)
	}
	got := x.get(t, f.ID)
	if got.Target.DeadLetterConfig != nil && aws.ToString(got.Target.DeadLetterConfig.Arn) != "" {
		t.Errorf("DeadLetterConfig = %v, want none", aws.ToString(got.Target.DeadLetterConfig.Arn))
	}
	rp := got.Target.RetryPolicy
	if rp == nil || aws.ToInt32(rp.MaximumEventAgeInSeconds) != 86400 || aws.ToInt32(rp.MaximumRetryAttempts) != eventbridge.DefaultMaxRetryAttempts {
		t.Errorf("RetryPolicy = %+v, want Scheduler's defaults", rp)
	}
}
