package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/followups/followups/shared/eventbridge"
)

// The message attributes EventBridge Scheduler sets on an event it sends
// to a schedule's dead-letter queue, all of data type String ("Configuring
// a schedule's dead-letter queue", EventBridge Scheduler User Guide).
const (
	AttrErrorCode               = "ERROR_CODE"
	AttrErrorMessage            = "ERROR_MESSAGE"
	AttrExecutionID             = "EXECUTION_ID"
	AttrRetryAttempts           = "RETRY_ATTEMPTS"
	AttrScheduledTime           = "SCHEDULED_TIME"
	AttrScheduleARN             = "SCHEDULE_ARN"
	AttrTargetARN               = "TARGET_ARN"
	AttrIsPayloadTruncated      = "IS_PAYLOAD_TRUNCATED"
	AttrExhaustedRetryCondition = "EXHAUSTED_RETRY_CONDITION"
)

// maxHarnessRetries caps the retries of a retryable delivery error.
// Scheduler itself retries up to the target's MaximumRetryAttempts (185 by
// default) within MaximumEventAgeInSeconds; a test cannot wait that long.
const maxHarnessRetries = 2

// Scheduler plays EventBridge Scheduler for the one-time schedules of one
// group: within the minute of a schedule's at() time (at a moment drawn
// at random, as Scheduler's 60-second precision allows) it sends the
// target input to the target queue; what it cannot deliver goes to the schedule's
// dead-letter queue with Scheduler's attributes; then, with
// ActionAfterCompletion DELETE, the schedule is deleted.
type Scheduler struct {
	Client *scheduler.Client
	SQS    *sqs.Client
	Group  string
	// Endpoint is the AWS endpoint the queues live at (queue ARN → URL).
	Endpoint string
	// Interval is the time between two looks at the group.
	Interval time.Duration

	mu      sync.Mutex
	firings []Firing
	done    map[string]bool
	offsets map[string]time.Duration // each schedule's second within its minute
	errs    []error
}

// Firing is one schedule run.
type Firing struct {
	Schedule    string
	ScheduleARN string
	At          time.Time
	FiredAt     time.Time
	TargetARN   string
	Input       string
	// Delivered is true when the input reached the target queue.
	Delivered bool
	// ErrorCode and ErrorMessage say why it did not.
	ErrorCode, ErrorMessage string
	// DeadLettered is true when it was sent to the dead-letter queue.
	DeadLettered bool
	Deleted      bool
}

// Run looks at the group every Interval until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	interval := s.Interval
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.fail(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick runs every schedule of the group whose time has come.
func (s *Scheduler) Tick(ctx context.Context) error {
	var token *string
	for {
		out, err := s.Client.ListSchedules(ctx, &scheduler.ListSchedulesInput{GroupName: aws.String(s.Group), NextToken: token})
		if err != nil {
			return fmt.Errorf("scheduler: list schedules of %s: %w", s.Group, err)
		}
		for _, sum := range out.Schedules {
			// moto matches GroupName as a substring of the group's name,
			// and leaves State empty after an UpdateSchedule without one
			// (AWS then defaults it to ENABLED).
			enabled := sum.State == schedtypes.ScheduleStateEnabled || sum.State == ""
			if aws.ToString(sum.GroupName) != s.Group || !enabled || s.isDone(aws.ToString(sum.Name)) {
				continue
			}
			if err := s.consider(ctx, aws.ToString(sum.Name)); err != nil {
				return err
			}
		}
		if out.NextToken == nil {
			return nil
		}
		token = out.NextToken
	}
}

func (s *Scheduler) consider(ctx context.Context, name string) error {
	sch, err := s.Client.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(s.Group)})
	var missing *schedtypes.ResourceNotFoundException
	if errors.As(err, &missing) {
		return nil // deleted since the listing
	}
	if err != nil {
		return fmt.Errorf("scheduler: get schedule %s: %w", name, err)
	}
	at, err := scheduledTime(sch)
	if err != nil {
		return fmt.Errorf("scheduler: schedule %s: %w", name, err)
	}
	// EventBridge Scheduler has 60-second precision: a schedule set for
	// 1:00 invokes its target between 1:00:00 and 1:00:59. Each schedule
	// here fires at a uniformly random moment of its minute, so a caller
	// meets both an early and a late arrival.
	if time.Now().Before(at.Truncate(time.Minute).Add(s.offset(name))) {
		return nil
	}
	f := s.fire(ctx, sch, at)
	if sch.ActionAfterCompletion == schedtypes.ActionAfterCompletionDelete {
		_, err := s.Client.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(s.Group)})
		if err != nil && !errors.As(err, &missing) {
			return fmt.Errorf("scheduler: delete schedule %s after it ran: %w", name, err)
		}
		f.Deleted = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = map[string]bool{}
	}
	// A one-time schedule runs once, whether or not it is deleted after.
	s.done[name] = true
	s.firings = append(s.firings, *f)
	return nil
}

// scheduledTime reads a one-time schedule's at() in its time zone.
func scheduledTime(sch *scheduler.GetScheduleOutput) (time.Time, error) {
	at, err := eventbridge.ParseAt(aws.ToString(sch.ScheduleExpression))
	if err != nil {
		return time.Time{}, fmt.Errorf("only one-time at() schedules are played: %w", err)
	}
	zone := aws.ToString(sch.ScheduleExpressionTimezone)
	if zone == "" || zone == "UTC" {
		return at, nil
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return time.Time{}, fmt.Errorf("time zone %q: %w", zone, err)
	}
	return time.Date(at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), at.Second(), 0, loc), nil
}

// fire delivers one run of sch: to the target, else to its dead-letter
// queue.
func (s *Scheduler) fire(ctx context.Context, sch *scheduler.GetScheduleOutput, at time.Time) *Firing {
	tgt := sch.Target
	f := &Firing{
		Schedule: aws.ToString(sch.Name), ScheduleARN: aws.ToString(sch.Arn), At: at, FiredAt: time.Now(),
		TargetARN: aws.ToString(tgt.Arn), Input: aws.ToString(tgt.Input),
	}
	maxRetries := 0
	if tgt.RetryPolicy != nil && tgt.RetryPolicy.MaximumRetryAttempts != nil {
		maxRetries = min(int(*tgt.RetryPolicy.MaximumRetryAttempts), maxHarnessRetries)
	}
	retries, exhausted := 0, ""
	for {
		err := s.send(ctx, f.TargetARN, f.Input, nil)
		if err == nil {
			f.Delivered = true
			return f
		}
		f.ErrorCode, f.ErrorMessage = errorCodeAndMessage(err)
		if !retryable(err) {
			break
		}
		if retries >= maxRetries {
			exhausted = "MaximumRetryAttempts"
			break
		}
		retries++
		time.Sleep(time.Duration(retries) * 100 * time.Millisecond)
	}
	if tgt.DeadLetterConfig == nil || tgt.DeadLetterConfig.Arn == nil {
		return f // Scheduler drops an event it cannot deliver and has no DLQ for
	}
	attrs := map[string]string{
		AttrErrorCode:          f.ErrorCode,
		AttrErrorMessage:       f.ErrorMessage,
		AttrExecutionID:        executionID(),
		AttrRetryAttempts:      strconv.Itoa(retries),
		AttrScheduledTime:      at.UTC().Format("2006-01-02T15:04:05Z"),
		AttrScheduleARN:        f.ScheduleARN,
		AttrTargetARN:          f.TargetARN,
		AttrIsPayloadTruncated: "false",
	}
	if exhausted != "" {
		attrs[AttrExhaustedRetryCondition] = exhausted
	}
	if err := s.send(ctx, aws.ToString(tgt.DeadLetterConfig.Arn), f.Input, attrs); err != nil && ctx.Err() == nil {
		s.fail(fmt.Errorf("scheduler: schedule %s: send to its dead-letter queue: %w", f.Schedule, err))
		return f
	}
	f.DeadLettered = true
	return f
}

func (s *Scheduler) send(ctx context.Context, arn, body string, attrs map[string]string) error {
	url, err := QueueURL(s.Endpoint, arn)
	if err != nil {
		return err
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}
	if len(attrs) > 0 {
		in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{}
		for k, v := range attrs {
			in.MessageAttributes[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	_, err = s.SQS.SendMessage(ctx, in)
	return err
}

// errorCodeAndMessage is what Scheduler reports of a target's error: the
// target API's error code and message, or Scheduler's own internal error.
func errorCodeAndMessage(err error) (string, string) {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode(), api.ErrorMessage()
	}
	return "AWS.Scheduler.InternalServerError", "Unexpected error occurred while processing the request."
}

// retryable tells a transient delivery error from a permanent one, as
// Scheduler does: a client fault (the queue does not exist, access denied)
// goes to the dead-letter queue at once; throttling and server faults are
// retried.
func retryable(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorFault() != smithy.FaultClient || strings.Contains(api.ErrorCode(), "Throttl")
	}
	return true
}

func executionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// offset returns the moment of its minute at which schedule name fires,
// drawn once.
func (s *Scheduler) offset(name string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offsets == nil {
		s.offsets = map[string]time.Duration{}
	}
	d, ok := s.offsets[name]
	if !ok {
		d = mathrand.N(time.Minute)
		s.offsets[name] = d
	}
	return d
}

func (s *Scheduler) isDone(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[name]
}

func (s *Scheduler) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

// Firings returns the runs so far.
func (s *Scheduler) Firings() []Firing {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Firing(nil), s.firings...)
}

// Errors returns what went wrong in the harness itself.
func (s *Scheduler) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}
