package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/followups/followups/shared/awstest"
	"github.com/followups/followups/shared/dynamo"
)

// Stack is one test's share of what template.yaml creates: the table, the
// fire queue with its redrive to the dead-letter queue, the schedule group
// and the Scheduler role's ARN. Names are unique, so tests run side by side
// on one moto server.
type Stack struct {
	Table            string
	FireQueueURL     string
	FireQueueARN     string
	DLQURL           string
	DLQARN           string
	Group            string
	SchedulerRoleARN string
	// MaxReceiveCount is the fire queue's redrive limit.
	MaxReceiveCount int
	// Account is the account moto puts the resources in.
	Account string
}

// StackConfig is the queue settings of one stack: template.yaml's, or a
// test's own.
type StackConfig struct {
	MaxReceiveCount               int
	FireVisibility, DLQVisibility time.Duration
	Retention                     time.Duration
}

// CreateStack creates the resources of a deployment. Delete removes them.
func CreateStack(ctx context.Context, cfg aws.Config, sc StackConfig) (*Stack, error) {
	s := &Stack{
		Table:           awstest.Name("followups-e2e"),
		Group:           awstest.Name("followups-e2e"),
		MaxReceiveCount: sc.MaxReceiveCount,
	}
	secs := func(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
	if err := dynamo.CreateTable(ctx, dynamodb.NewFromConfig(cfg), s.Table); err != nil {
		return nil, err
	}
	q := sqs.NewFromConfig(cfg)
	var err error
	s.DLQURL, s.DLQARN, err = createQueue(ctx, q, awstest.Name("followups-e2e-dlq"), map[string]string{
		"VisibilityTimeout":      secs(sc.DLQVisibility),
		"MessageRetentionPeriod": secs(sc.Retention),
		"SqsManagedSseEnabled":   "true",
	})
	if err != nil {
		return s, err
	}
	redrive, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": s.DLQARN,
		"maxReceiveCount":     strconv.Itoa(s.MaxReceiveCount),
	})
	s.FireQueueURL, s.FireQueueARN, err = createQueue(ctx, q, awstest.Name("followups-e2e-fire"), map[string]string{
		"VisibilityTimeout":      secs(sc.FireVisibility),
		"MessageRetentionPeriod": secs(sc.Retention),
		"SqsManagedSseEnabled":   "true",
		"RedrivePolicy":          string(redrive),
	})
	if err != nil {
		return s, err
	}
	if _, err := scheduler.NewFromConfig(cfg).CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(s.Group)}); err != nil {
		return s, fmt.Errorf("create schedule group %s: %w", s.Group, err)
	}
	s.Account = strings.Split(s.FireQueueARN, ":")[4]
	// IAM is not used by moto's Scheduler; the role only has to be a
	// well-formed ARN, as the schedule function checks it at start.
	s.SchedulerRoleARN = "arn:aws:iam::" + s.Account + ":role/" + awstest.Name("followups-e2e-scheduler")
	return s, nil
}

func createQueue(ctx context.Context, q *sqs.Client, name string, attrs map[string]string) (url, arn string, err error) {
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	got, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("queue %s: get its ARN: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}

// Delete removes the stack's resources, as far as they were made.
func (s *Stack) Delete(ctx context.Context, cfg aws.Config) {
	if s.Group != "" {
		_, _ = scheduler.NewFromConfig(cfg).DeleteScheduleGroup(ctx, &scheduler.DeleteScheduleGroupInput{Name: aws.String(s.Group)})
	}
	q := sqs.NewFromConfig(cfg)
	for _, u := range []string{s.FireQueueURL, s.DLQURL} {
		if u != "" {
			_, _ = q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(u)})
		}
	}
	_, _ = dynamodb.NewFromConfig(cfg).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(s.Table)})
}

// QueueURL returns the URL of the queue arn names at endpoint, the form
// moto and SQS use: {endpoint}/{account}/{name}.
func QueueURL(endpoint, arn string) (string, error) {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[0] != "arn" || p[2] != "sqs" {
		return "", fmt.Errorf("%q is not an SQS queue ARN", arn)
	}
	return strings.TrimSuffix(endpoint, "/") + "/" + p[4] + "/" + p[5], nil
}
