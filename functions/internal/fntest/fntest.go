// Package fntest helps the tests of the three function mains: it points the
// AWS SDK's default configuration at the test endpoint (moto's server) the
// way AWS_ENDPOINT_URL does in the end-to-end harness, creates the
// resources template.yaml would, builds invocation contexts, and reads the
// functions' log and metric lines.
package fntest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/shared/awstest"
	"github.com/followups/followups/shared/dynamo"
	"github.com/followups/followups/shared/lambdafn"
)

// AWSEnv makes config.LoadDefaultConfig, as the mains call it, use the test
// endpoint with dummy credentials and nothing from the developer's own AWS
// files. It skips the test without an endpoint (see awstest) and returns a
// configuration for the test's own clients.
func AWSEnv(t *testing.T) aws.Config {
	t.Helper()
	cfg := awstest.Config(t)
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            aws.ToString(cfg.BaseEndpoint),
		"AWS_REGION":                  awstest.Region,
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	return cfg
}

// Stack is one test's share of what template.yaml creates.
type Stack struct {
	Table, FireQueueURL, FireQueueARN, DLQURL, DLQARN, Group, SchedulerRoleARN string
}

// NewStack creates a table, a dead-letter queue, a fire queue redriving to
// it after maxReceiveCount receives (with template.yaml's visibility
// timeout), and a schedule group, all removed when the test ends.
func NewStack(t *testing.T, cfg aws.Config, maxReceiveCount int) Stack {
	t.Helper()
	ctx := context.Background()
	_, file, _, _ := runtime.Caller(0)
	tpl, err := harness.LoadSAMTemplate(filepath.Join(filepath.Dir(file), "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	d, err := tpl.Deployment()
	if err != nil {
		t.Fatal(err)
	}
	s := Stack{Table: awstest.Name("fn-test"), Group: awstest.Name("fn-test")}
	ddb := dynamodb.NewFromConfig(cfg)
	if err := dynamo.CreateTable(ctx, ddb, s.Table); err != nil {
		t.Fatal(err)
	}
	q := sqs.NewFromConfig(cfg)
	s.DLQURL, s.DLQARN = queue(t, q, nil)
	redrive, _ := json.Marshal(map[string]any{"deadLetterTargetArn": s.DLQARN, "maxReceiveCount": maxReceiveCount})
	s.FireQueueURL, s.FireQueueARN = queue(t, q, map[string]string{"RedrivePolicy": string(redrive), "VisibilityTimeout": strconv.Itoa(int(d.FireVisibility.Seconds()))})
	sch := scheduler.NewFromConfig(cfg)
	if _, err := sch.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(s.Group)}); err != nil {
		t.Fatal(err)
	}
	account := strings.Split(s.FireQueueARN, ":")[4]
	s.SchedulerRoleARN = "arn:aws:iam::" + account + ":role/fn-test-scheduler"
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = sch.DeleteScheduleGroup(ctx, &scheduler.DeleteScheduleGroupInput{Name: aws.String(s.Group)})
		_, _ = q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(s.FireQueueURL)})
		_, _ = q.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(s.DLQURL)})
		_, _ = ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(s.Table)})
	})
	return s
}

func queue(t *testing.T, q *sqs.Client, attrs map[string]string) (url, arn string) {
	t.Helper()
	ctx := context.Background()
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name("fn-test")), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl), got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
}

// Lookup returns a lookup function over env, in place of os.LookupEnv.
func Lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// Invocation returns the context Lambda gives one invocation: its request
// id and a deadline timeout from now.
func Invocation(t *testing.T, requestID string, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: requestID})
}

// ReadEvent decodes the sample event events/name of the repository into v,
// so the tests keep the samples sam local invoke uses valid.
func ReadEvent(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatalf("read sample event: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}

// Output collects what a function writes to stdout or stderr. It is safe
// for concurrent use, and Take returns the lines written since the last
// Take, so each invocation's lines can be read apart.
type Output struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	read int
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// Take returns the JSON lines written since the last Take, decoded.
func (o *Output) Take(t *testing.T) []map[string]any {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.buf.Bytes()[o.read:]
	o.read = o.buf.Len()
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("output line is not JSON: %q", sc.Text())
		}
		lines = append(lines, m)
	}
	return lines
}

// Calls returns the AWS calls of the one "aws calls" line among lines, and
// checks every log line carries requestID.
func Calls(t *testing.T, lines []map[string]any, requestID string) map[string]int {
	t.Helper()
	var calls map[string]int
	for _, l := range lines {
		if l[lambdafn.KeyAWSRequestID] != requestID {
			t.Errorf("log line without the invocation's %s %q: %v", lambdafn.KeyAWSRequestID, requestID, l)
		}
		if l["msg"] != lambdafn.MsgAWSCalls {
			continue
		}
		if calls != nil {
			t.Fatalf("more than one %q line", lambdafn.MsgAWSCalls)
		}
		calls = map[string]int{}
		m, _ := l["aws_calls"].(map[string]any)
		for k, v := range m {
			calls[k] = int(v.(float64))
		}
	}
	if calls == nil {
		t.Fatalf("no %q line in %v", lambdafn.MsgAWSCalls, lines)
	}
	return calls
}

// Metrics returns the metric names the EMF lines among lines declare.
func Metrics(lines []map[string]any) []string {
	var names []string
	for _, l := range lines {
		a, _ := l["_aws"].(map[string]any)
		dirs, _ := a["CloudWatchMetrics"].([]any)
		for _, d := range dirs {
			defs, _ := d.(map[string]any)["Metrics"].([]any)
			for _, def := range defs {
				if n, ok := def.(map[string]any)["Name"].(string); ok {
					names = append(names, n)
				}
			}
		}
	}
	return names
}
