package eventbridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/followups/followups/shared/followup"
)

// Defaults of Config.
const (
	// DefaultMaxEventAge is Scheduler's own default and maximum: keep
	// trying to deliver for a day.
	DefaultMaxEventAge = 24 * time.Hour
	// DefaultMaxRetryAttempts is Scheduler's own default and maximum.
	DefaultMaxRetryAttempts = 185
)

// Config says where schedules are made and where they deliver.
type Config struct {
	// Group is the schedule group; empty means Scheduler's "default".
	Group string
	// QueueARN is the fire queue, every schedule's target.
	QueueARN string
	// RoleARN is the role Scheduler assumes to send to the queue.
	RoleARN string
	// DeadLetterARN is the queue for what Scheduler cannot deliver; empty
	// for none.
	DeadLetterARN string
	// MaxEventAge is how long Scheduler keeps trying to deliver one
	// firing, from 1 minute to 24 hours; zero means DefaultMaxEventAge.
	// It is sent in whole seconds, rounded up.
	MaxEventAge time.Duration
	// MaxRetryAttempts is how often Scheduler retries a failed delivery,
	// 0 to 185; zero means DefaultMaxRetryAttempts and a negative value
	// means no retries.
	MaxRetryAttempts int32
	// Direct, when set, takes the followups due within DirectWithin of
	// their create: they skip Scheduler and go to the fire queue at once,
	// with a delay (SQS DelaySeconds).
	Direct Sender
	// DirectWithin is how soon after its create a followup must be due to
	// take the direct path, from MinDirectWithin to MaxDirectWithin; zero
	// means MaxDirectWithin.
	DirectWithin time.Duration
	// Clock tells the time of a direct send's delay; nil is the wall clock.
	Clock followup.Clock
}

// Sender puts a followup's message on the fire queue after a delay of at
// most MaxDirectWithin (sqs.Queue).
type Sender interface {
	Send(ctx context.Context, m followup.Message, delay time.Duration) error
}

// The bounds of Config.DirectWithin. A message can be delayed 15 minutes
// at most (SQS). A followup due later than MinDirectWithin has a schedule
// time (a minute early, on the minute: ScheduleTime) that is still ahead
// when the schedule is made.
const (
	MinDirectWithin = 2 * time.Minute
	MaxDirectWithin = 15 * time.Minute
)

// Lead is how far ahead of a followup's time its schedule is set.
// EventBridge Scheduler has 60-second precision: a schedule set for 1:00
// invokes its target between 1:00:00 and 1:00:59. A schedule a minute
// early, on the minute, therefore always arrives before the followup is
// due, and the fire function sends it back for the rest (with SQS
// DelaySeconds, to the second): on time, and never early.
const Lead = time.Minute

// Scheduler makes one EventBridge Scheduler schedule per followup. It is
// safe for concurrent use.
type Scheduler struct {
	client *scheduler.Client
	cfg    Config
}

// New returns a Scheduler that makes schedules with client as cfg says.
func New(client *scheduler.Client, cfg Config) *Scheduler {
	if cfg.MaxEventAge == 0 {
		cfg.MaxEventAge = DefaultMaxEventAge
	}
	if cfg.DirectWithin == 0 {
		cfg.DirectWithin = MaxDirectWithin
	}
	cfg.DirectWithin = min(max(cfg.DirectWithin, MinDirectWithin), MaxDirectWithin)
	if cfg.Clock == nil {
		cfg.Clock = followup.SystemClock{}
	}
	switch {
	case cfg.MaxRetryAttempts == 0:
		cfg.MaxRetryAttempts = DefaultMaxRetryAttempts
	case cfg.MaxRetryAttempts < 0:
		cfg.MaxRetryAttempts = 0
	}
	return &Scheduler{client: client, cfg: cfg}
}

// Schedule arranges for f's message to reach the fire queue by
// f.NextAttemptAt. Due within DirectWithin of its create (and with Direct
// set), it is one SendMessage with a delay. Otherwise it is one
// CreateSchedule: at ScheduleTime, in UTC, with no flexible window. A
// schedule of that name that exists already counts as made: Schedule is
// idempotent per followup id.
func (s *Scheduler) Schedule(ctx context.Context, f *followup.Followup) error {
	if s.cfg.Direct != nil && f.NextAttemptAt.Sub(f.CreatedAt) <= s.cfg.DirectWithin {
		if err := s.cfg.Direct.Send(ctx, followup.MessageFor(f), f.NextAttemptAt.Sub(s.cfg.Clock.Now())); err != nil {
			return fmt.Errorf("schedule followup %s on the fire queue: %w", f.ID, err)
		}
		return nil
	}
	name := ScheduleName(f.ID)
	input, err := json.Marshal(followup.MessageFor(f))
	if err != nil {
		return fmt.Errorf("schedule followup %s: %w", f.ID, err)
	}
	target := &types.Target{
		Arn:     aws.String(s.cfg.QueueARN),
		RoleArn: aws.String(s.cfg.RoleARN),
		Input:   aws.String(string(input)),
		RetryPolicy: &types.RetryPolicy{
			MaximumEventAgeInSeconds: aws.Int32(int32((s.cfg.MaxEventAge + time.Second - 1) / time.Second)),
			MaximumRetryAttempts:     aws.Int32(s.cfg.MaxRetryAttempts),
		},
	}
	if s.cfg.DeadLetterARN != "" {
		target.DeadLetterConfig = &types.DeadLetterConfig{Arn: aws.String(s.cfg.DeadLetterARN)}
	}
	_, err = s.client.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name:                       aws.String(name),
		GroupName:                  s.group(),
		ScheduleExpression:         aws.String(At(ScheduleTime(f.NextAttemptAt))),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      types.ActionAfterCompletionDelete,
		Target:                     target,
		// The same token for the same followup makes the SDK's retries
		// of this call idempotent.
		ClientToken: aws.String(clientToken(name)),
	})
	var conflict *types.ConflictException
	if errors.As(err, &conflict) {
		return nil // made already: by an earlier attempt of this create
	}
	if err != nil {
		return fmt.Errorf("schedule followup %s as %s: %w", f.ID, name, err)
	}
	return nil
}

// Unschedule deletes the followup's schedule with one DeleteSchedule call.
// A schedule that does not exist (it fired and deleted itself, was never
// made, or the followup took the direct path, whose message the fire path
// acknowledges without dispatching) is not an error.
func (s *Scheduler) Unschedule(ctx context.Context, id string) error {
	name := ScheduleName(id)
	_, err := s.client.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{
		Name:      aws.String(name),
		GroupName: s.group(),
	})
	var missing *types.ResourceNotFoundException
	if errors.As(err, &missing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unschedule followup %s (%s): %w", id, name, err)
	}
	return nil
}

func (s *Scheduler) group() *string {
	if s.cfg.Group == "" {
		return nil
	}
	return aws.String(s.cfg.Group)
}

// validName is what Scheduler accepts as a schedule name.
var validName = regexp.MustCompile(`^[0-9a-zA-Z._-]{1,64}$`)

// ScheduleName returns the schedule name of followup id: the id itself
// when Scheduler accepts it (1 to 64 of [0-9a-zA-Z._-], as every id
// followup.NewID makes is), or else "h." and 62 hex digits of the id's
// SHA-256. The "." keeps hashed names apart from ids NewID makes.
func ScheduleName(id string) string {
	if validName.MatchString(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "h." + hex.EncodeToString(sum[:])[:62]
}

// clientToken is the CreateSchedule idempotency token of a schedule name:
// 64 hex digits, within Scheduler's [a-zA-Z0-9-_]{1,64}.
func clientToken(name string) string {
	sum := sha256.Sum256([]byte("create-schedule\x00" + name))
	return hex.EncodeToString(sum[:])
}

// ScheduleTime is when the schedule of a followup due at due is set: Lead
// before it, on the minute, so that it fires within the minute before the
// followup is due, or earlier.
func ScheduleTime(due time.Time) time.Time {
	return due.UTC().Add(-Lead).Truncate(time.Minute)
}

// atLayout is the date-time of an at() expression.
const atLayout = "2006-01-02T15:04:05"

// At returns the one-time schedule expression for t: at(yyyy-mm-ddThh:mm:ss)
// in UTC, rounded up to the whole second so it never fires before t.
func At(t time.Time) string {
	t = t.UTC()
	if r := t.Truncate(time.Second); r.Before(t) {
		t = r.Add(time.Second)
	}
	return "at(" + t.Format(atLayout) + ")"
}

// ParseAt returns the time of an at(yyyy-mm-ddThh:mm:ss) expression read
// in UTC (the timezone every schedule here uses), for harnesses that play
// Scheduler.
func ParseAt(expr string) (time.Time, error) {
	inner, ok := strings.CutPrefix(expr, "at(")
	if ok {
		inner, ok = strings.CutSuffix(inner, ")")
	}
	if !ok {
		return time.Time{}, fmt.Errorf("schedule expression %q is not at(...)", expr)
	}
	t, err := time.Parse(atLayout, inner)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule expression %q: %w", expr, err)
	}
	return t, nil
}

var _ followup.Scheduler = (*Scheduler)(nil)
