package samlocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/followups/followups/shared/dynamo"
)

// EnvFile is an --env-vars file: the variables of each function, by the
// function's logical id.
type EnvFile map[string]map[string]string

// ReadEnvFile reads an --env-vars file.
func ReadEnvFile(path string) (EnvFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var env EnvFile
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}

// Value returns the one value variable has in every function that sets
// it, and an error when the functions disagree or none sets it.
func (e EnvFile) Value(variable string) (string, error) {
	var value, first string
	for _, fn := range slices.Sorted(maps.Keys(e)) {
		v, ok := e[fn][variable]
		if !ok {
			continue
		}
		if first == "" {
			value, first = v, fn
			continue
		}
		if v != value {
			return "", fmt.Errorf("%s is %q for %s but %q for %s", variable, value, first, v, fn)
		}
	}
	if first == "" {
		return "", fmt.Errorf("no function sets %s", variable)
	}
	return value, nil
}

// Stack is the local stack an env file names, made in moto as
// template.yaml makes it on AWS: the table, the fire queue with its
// redrive to the dead-letter queue after FOLLOWUPS_MAX_RECEIVE_COUNT
// (else FOLLOWUPS_MAX_RETRIES + 1) receives, and the schedule group. The scheduler role is only an ARN:
// moto does not check IAM.
type Stack struct {
	Table            string
	FireQueue        string
	FireQueueARN     string
	DLQ              string
	DLQARN           string
	Group            string
	SchedulerRoleARN string
	MaxReceiveCount  int
	// FireQueueURL and DLQURL are the queues' URLs at moto's loopback
	// address, for the harness; the functions use the env file's.
	FireQueueURL, DLQURL string
}

// StackOf reads the stack's names from an env file.
func StackOf(env EnvFile) (*Stack, error) {
	s := &Stack{}
	var errs []error
	val := func(name string) string {
		v, err := env.Value(name)
		errs = append(errs, err)
		return v
	}
	s.Table = val("FOLLOWUPS_TABLE")
	s.FireQueueARN = val("FOLLOWUPS_FIRE_QUEUE_ARN")
	s.DLQARN = val("FOLLOWUPS_DLQ_ARN")
	s.Group = val("FOLLOWUPS_SCHEDULE_GROUP")
	s.SchedulerRoleARN = val("FOLLOWUPS_SCHEDULER_ROLE_ARN")
	// The fire queue's maxReceiveCount: FOLLOWUPS_MAX_RECEIVE_COUNT where
	// the functions are told it, else one receive per attempt.
	if v, err := env.Value("FOLLOWUPS_MAX_RECEIVE_COUNT"); err == nil {
		if s.MaxReceiveCount, err = strconv.Atoi(v); err != nil {
			errs = append(errs, fmt.Errorf("FOLLOWUPS_MAX_RECEIVE_COUNT: %w", err))
		}
	} else {
		retries, err := strconv.Atoi(val("FOLLOWUPS_MAX_RETRIES"))
		if err != nil {
			errs = append(errs, fmt.Errorf("FOLLOWUPS_MAX_RETRIES: %w", err))
		}
		s.MaxReceiveCount = retries + 1
	}
	var err error
	s.FireQueue, err = queueName(s.FireQueueARN)
	errs = append(errs, err)
	s.DLQ, err = queueName(s.DLQARN)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("the stack of the env file: %w", err)
	}
	return s, nil
}

func queueName(arn string) (string, error) {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[2] != "sqs" {
		return "", fmt.Errorf("%q is not an SQS queue ARN", arn)
	}
	return p[5], nil
}

// Queue settings of template.yaml.
const (
	fireVisibilityTimeout = "720"
	dlqVisibilityTimeout  = "180"
	retentionSeconds      = "1209600"
)

// Create makes the stack in moto. The queues' ARNs moto gives must be the
// env file's, or the schedules the functions make would target another
// queue.
func (s *Stack) Create(ctx context.Context, cfg aws.Config) error {
	if err := dynamo.CreateTable(ctx, dynamodb.NewFromConfig(cfg), s.Table); err != nil {
		return err
	}
	q := sqs.NewFromConfig(cfg)
	var err error
	if s.DLQURL, err = createQueue(ctx, q, s.DLQ, s.DLQARN, map[string]string{
		"VisibilityTimeout": dlqVisibilityTimeout, "MessageRetentionPeriod": retentionSeconds, "SqsManagedSseEnabled": "true",
	}); err != nil {
		return err
	}
	redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": s.DLQARN, "maxReceiveCount": strconv.Itoa(s.MaxReceiveCount)})
	if s.FireQueueURL, err = createQueue(ctx, q, s.FireQueue, s.FireQueueARN, map[string]string{
		"VisibilityTimeout": fireVisibilityTimeout, "MessageRetentionPeriod": retentionSeconds, "SqsManagedSseEnabled": "true",
		"RedrivePolicy": string(redrive),
	}); err != nil {
		return err
	}
	if _, err := scheduler.NewFromConfig(cfg).CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(s.Group)}); err != nil {
		return fmt.Errorf("create schedule group %s: %w", s.Group, err)
	}
	return nil
}

func createQueue(ctx context.Context, q *sqs.Client, name, wantARN string, attrs map[string]string) (string, error) {
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	got, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("queue %s: get its ARN: %w", name, err)
	}
	if arn := got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]; arn != wantARN {
		return "", fmt.Errorf("queue %s: moto made %s, the env file names %s", name, arn, wantARN)
	}
	return aws.ToString(out.QueueUrl), nil
}

// Delete removes what of the stack exists; its data goes with it.
func (s *Stack) Delete(ctx context.Context, cfg aws.Config) error {
	var errs []error
	// Its schedules go with the group. moto answers 500 to a delete of a
	// group that does not exist, so it is looked up first.
	sch := scheduler.NewFromConfig(cfg)
	_, err := sch.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(s.Group)})
	if err == nil {
		_, err = sch.DeleteScheduleGroup(ctx, &scheduler.DeleteScheduleGroupInput{Name: aws.String(s.Group)})
	}
	if err != nil && !notFound(err) {
		errs = append(errs, fmt.Errorf("delete schedule group %s: %w", s.Group, err))
	}
	q := sqs.NewFromConfig(cfg)
	for _, name := range []string{s.FireQueue, s.DLQ} {
		u, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if notFound(err) {
			continue
		}
		if err == nil {
			_, err = q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: u.QueueUrl})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete queue %s: %w", name, err))
		}
	}
	if _, err := dynamodb.NewFromConfig(cfg).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(s.Table)}); err != nil && !notFound(err) {
		errs = append(errs, fmt.Errorf("delete table %s: %w", s.Table, err))
	}
	return errors.Join(errs...)
}

// Reset makes the stack anew, empty.
func (s *Stack) Reset(ctx context.Context, cfg aws.Config) error {
	if err := s.Delete(ctx, cfg); err != nil {
		return err
	}
	return s.Create(ctx, cfg)
}

// notFound reports whether err says the table, queue or group does not
// exist.
func notFound(err error) bool {
	var table *ddbtypes.ResourceNotFoundException
	var queue *sqstypes.QueueDoesNotExist
	var group *schedtypes.ResourceNotFoundException
	return errors.As(err, &table) || errors.As(err, &queue) || errors.As(err, &group)
}
