package harness

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/followups/followups/shared/awstest"
)

// Setup is what every Env of a test binary shares: the emulator and the
// bootstraps, built once.
type Setup struct {
	Root string
	RIE  string
	// RIEErr is why there is no emulator.
	RIEErr error
	// Bootstraps are built for the host; BuildErr says why they are not.
	Bootstraps map[string]Binary
	BuildErr   error
	// BuildTime is how long the host build took.
	BuildTime time.Duration
	Report    *Report
	// Deployment is what template.yaml sets: queue timeouts, function
	// timeouts, the fire queue's receive limit.
	Deployment Deployment
	dir        string
}

// Prepare finds the emulator and builds the bootstraps for the host, but
// only when the tests can run (an AWS endpoint and an emulator), or must
// (FOLLOWUPS_REQUIRE_AWS=1). Close removes what it built.
func Prepare(ctx context.Context) *Setup {
	s := &Setup{Report: &Report{}}
	root, err := ModuleRoot()
	if err != nil {
		s.BuildErr = err
		return s
	}
	s.Root = root
	tmpl, err := LoadSAMTemplate(root)
	if err == nil {
		s.Deployment, err = tmpl.Deployment()
	}
	if err != nil {
		s.BuildErr = err
		return s
	}
	s.RIE, s.RIEErr = FindRIE(root)
	required := os.Getenv(awstest.RequireEnv) == "1"
	if !required && (s.RIEErr != nil || os.Getenv(awstest.EndpointEnv) == "") {
		return s
	}
	if s.dir, err = os.MkdirTemp("", "followups-awse2e-"); err != nil {
		s.BuildErr = err
		return s
	}
	s.Bootstraps, s.BuildTime, s.BuildErr = Build(ctx, root, s.dir, HostTarget)
	return s
}

// Require skips t (or fails it under FOLLOWUPS_REQUIRE_AWS=1) when the
// bootstraps were not built because the AWS side cannot be tested here,
// and fails it when the build failed.
func (s *Setup) Require(t testing.TB) {
	t.Helper()
	if s.BuildErr != nil {
		t.Fatalf("build the bootstraps: %v", s.BuildErr)
	}
	if s.Bootstraps == nil {
		awstest.Endpoint(t)
		if s.RIEErr != nil {
			skipOrFail(t, RIESkipMessage+": "+s.RIEErr.Error())
		}
		t.Fatal("the bootstraps were not built")
	}
}

// Dir is a directory for files that live as long as the Setup.
func (s *Setup) Dir() string { return s.dir }

// Close removes the built bootstraps.
func (s *Setup) Close() {
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// Options configures one Env. Zero fields take the defaults below, short
// timings that keep a retry chain within seconds.
type Options struct {
	MaxRetries      int           // default 3
	RetryBase       time.Duration // default 200ms
	RetryMax        time.Duration // default 1s
	DispatchTimeout time.Duration // default 2s
	MinDelay        time.Duration // default 1s
	// Thread answers the thread API's requests (201 for all when nil).
	Thread func(ThreadRequest) ThreadAnswer
	// HoldFire leaves the fire queue unpolled until StartFire.
	HoldFire bool
	// Window is the fire queue's mapping's batching window; zero is the
	// template's.
	Window time.Duration
	// MaxReceiveCount is the fire queue's receive limit; zero is the
	// template's.
	MaxReceiveCount int
	// FireVisibility is the fire queue's own visibility timeout, the wait
	// after a throttled receive or a failed invocation; zero is the
	// template's.
	FireVisibility time.Duration
	// DirectWithin is the schedule function's FOLLOWUPS_DIRECT_WITHIN;
	// zero is its default (15 minutes).
	DirectWithin time.Duration
	// Throttle, when set, is asked about every batch the fire queue's
	// mapping receives: true plays Lambda throttling the function, the
	// batch is not invoked and its messages come back after the queue's
	// visibility timeout.
	Throttle func([]SQSRecord) bool
}

func (o *Options) defaults() {
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	}
	if o.RetryBase == 0 {
		o.RetryBase = 200 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = time.Second
	}
	if o.DispatchTimeout == 0 {
		o.DispatchTimeout = 2 * time.Second
	}
	if o.MinDelay == 0 {
		o.MinDelay = time.Second
	}
}

// Env is one deployment of the AWS side for one test: its own table,
// queues and schedule group in moto, the four functions under their own
// emulators, a thread API, and the harness playing API Gateway, Scheduler
// and the two event source mappings.
type Env struct {
	T        testing.TB
	Ctx      context.Context
	Opts     Options
	AWS      aws.Config
	Endpoint string
	Stack    *Stack
	SQS      *sqs.Client
	Sched    *scheduler.Client
	Dynamo   *dynamodb.Client
	Thread   *ThreadAPI
	Schedule *Function
	Fire     *Function
	DLQ      *Function
	Sweep    *Function
	API      *API
	// Faults stands between the functions and moto (Faults.DynamoDown).
	Faults *Faults
	// Scheduler plays EventBridge Scheduler for the stack's group.
	Scheduler *Scheduler
	// FirePoller and DLQPoller play the functions' event source mappings.
	FirePoller *Poller
	DLQPoller  *Poller

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	fireRun sync.Once
}

// Start brings up an Env for t, or skips t when there is no AWS endpoint
// or emulator (fails under FOLLOWUPS_REQUIRE_AWS=1). Everything stops when
// t ends.
func Start(t testing.TB, s *Setup, opts Options) *Env {
	t.Helper()
	opts.defaults()
	cfg := awstest.Config(t)
	if s.RIEErr != nil {
		skipOrFail(t, RIESkipMessage+": "+s.RIEErr.Error())
	}
	if s.BuildErr != nil {
		t.Fatalf("build the bootstraps: %v", s.BuildErr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Env{
		T: t, Ctx: ctx, Opts: opts, AWS: cfg, Endpoint: aws.ToString(cfg.BaseEndpoint), cancel: cancel,
		SQS: sqs.NewFromConfig(cfg), Sched: scheduler.NewFromConfig(cfg), Dynamo: dynamodb.NewFromConfig(cfg),
	}
	d := s.Deployment
	stack, err := CreateStack(ctx, cfg, StackConfig{
		MaxReceiveCount: cmp.Or(opts.MaxReceiveCount, d.MaxReceiveCount),
		FireVisibility:  cmp.Or(opts.FireVisibility, d.FireVisibility),
		DLQVisibility:   d.DLQVisibility,
		Retention:       d.Retention,
	})
	t.Cleanup(func() {
		if stack != nil {
			stack.Delete(context.Background(), cfg)
		}
	})
	if err != nil {
		t.Fatalf("create the stack in moto: %v", err)
	}
	e.Stack = stack
	e.Thread = NewThreadAPI(opts.Thread)
	t.Cleanup(e.Thread.Close)
	if e.Faults, err = NewFaults(e.Endpoint); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Faults.Close)

	dir := t.TempDir()
	tmpl, err := LoadTemplate(filepath.Join(s.Root, "events", "create.json"))
	if err != nil {
		t.Fatalf("API Gateway event template: %v", err)
	}
	e.API = &API{Template: tmpl}
	// The warm-ups do as little as a function can: an unknown path (the
	// router's 404, no AWS call) and an empty batch.
	warmEvent, err := e.API.Event("GET", "/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	warmAPI, err := json.Marshal(warmEvent)
	if err != nil {
		t.Fatal(err)
	}
	sweepEvent, err := os.ReadFile(filepath.Join(s.Root, "events", "sweep.json"))
	if err != nil {
		t.Fatal(err)
	}
	warm := map[string][]byte{"schedule": warmAPI, "fire": []byte(`{"Records":[]}`), "dlq": []byte(`{"Records":[]}`), "sweep": sweepEvent}
	env := e.functionEnv()
	fns := map[string]*Function{}
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for _, name := range Functions {
		wg.Go(func() {
			fnDir := filepath.Join(dir, name)
			if err := os.MkdirAll(fnDir, 0o755); err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
				return
			}
			f, err := StartFunction(ctx, FunctionConfig{
				Name: name, RIE: s.RIE, Bootstrap: s.Bootstraps[name].Path, Dir: fnDir,
				Env: env[name], Timeout: d.FunctionTimeouts[name], Warmup: warm[name],
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			fns[name] = f
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, f := range fns {
			for _, inv := range f.Invocations() {
				if !inv.Warmup && inv.Err == nil {
					s.Report.AddDuration(f.Name, inv.Took)
				}
			}
			f.Stop()
		}
	})
	if len(errs) > 0 {
		t.Fatalf("start the functions:\n%s", strings.Join(errs, "\n"))
	}
	e.Schedule, e.Fire, e.DLQ, e.Sweep = fns["schedule"], fns["fire"], fns["dlq"], fns["sweep"]
	e.API.Fn = e.Schedule
	for _, f := range []*Function{e.Schedule, e.Fire, e.DLQ, e.Sweep} {
		s.Report.AddColdStart(t.Name(), f.ColdStart)
	}

	e.Scheduler = &Scheduler{Client: e.Sched, SQS: e.SQS, Group: stack.Group, Endpoint: e.Endpoint}
	e.FirePoller = &Poller{Fn: e.Fire, SQS: e.SQS, QueueURL: stack.FireQueueURL, QueueARN: stack.FireQueueARN, Region: cfg.Region,
		Window: cmp.Or(opts.Window, d.FireWindow), Throttle: opts.Throttle}
	e.DLQPoller = &Poller{Fn: e.DLQ, SQS: e.SQS, QueueURL: stack.DLQURL, QueueARN: stack.DLQARN, Region: cfg.Region, Window: d.DLQWindow}
	t.Cleanup(func() {
		e.cancel()
		e.wg.Wait()
		for _, err := range e.HarnessErrors() {
			t.Errorf("harness: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []*Function{e.Schedule, e.Fire, e.DLQ, e.Sweep} {
				t.Log(f.Tail(40))
			}
		}
	})
	e.wg.Go(func() { e.Scheduler.Run(ctx) })
	e.wg.Go(func() { e.DLQPoller.Run(ctx) })
	if !opts.HoldFire {
		e.StartFire()
	}
	return e
}

// StartFire starts polling the fire queue (once).
func (e *Env) StartFire() {
	e.fireRun.Do(func() { e.wg.Go(func() { e.FirePoller.Run(e.Ctx) }) })
}

// functionEnv is each function's environment, as template.yaml sets it,
// pointed at moto and the thread API.
func (e *Env) functionEnv() map[string]map[string]string {
	s, o := e.Stack, e.Opts
	common := map[string]string{
		"AWS_REGION":                      e.AWS.Region,
		"AWS_DEFAULT_REGION":              e.AWS.Region,
		"AWS_ACCESS_KEY_ID":               "test",
		"AWS_SECRET_ACCESS_KEY":           "test",
		"AWS_ENDPOINT_URL":                e.Faults.URL,
		"AWS_EC2_METADATA_DISABLED":       "true",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"FOLLOWUPS_TABLE":                 s.Table,
		"FOLLOWUPS_METRICS_NAMESPACE":     "Followups",
		"FOLLOWUPS_RETENTION":             "168h",
		"FOLLOWUPS_LOG_LEVEL":             "debug",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	return map[string]map[string]string{
		"schedule": with(map[string]string{
			"FOLLOWUPS_FIRE_QUEUE_URL":     s.FireQueueURL,
			"FOLLOWUPS_FIRE_QUEUE_ARN":     s.FireQueueARN,
			"FOLLOWUPS_DLQ_ARN":            s.DLQARN,
			"FOLLOWUPS_SCHEDULE_GROUP":     s.Group,
			"FOLLOWUPS_SCHEDULER_ROLE_ARN": s.SchedulerRoleARN,
			"FOLLOWUPS_MIN_DELAY":          o.MinDelay.String(),
			"FOLLOWUPS_MAX_DELAY":          "24h",
			"FOLLOWUPS_DIRECT_WITHIN":      cmp.Or(o.DirectWithin, 15*time.Minute).String(),
		}),
		"fire": with(map[string]string{
			"FOLLOWUPS_FIRE_QUEUE_URL":    s.FireQueueURL,
			"FOLLOWUPS_FIRE_QUEUE_ARN":    s.FireQueueARN,
			"FOLLOWUPS_DLQ_URL":           s.DLQURL,
			"FOLLOWUPS_MAX_RECEIVE_COUNT": strconv.Itoa(s.MaxReceiveCount),
			"THREAD_API_URL":              e.Thread.URL,
			"THREAD_API_TOKEN":            e.Thread.Token,
			"FOLLOWUPS_SIGNING_SECRET":    string(e.Thread.Secret),
			"FOLLOWUPS_MAX_RETRIES":       fmt.Sprint(o.MaxRetries),
			"FOLLOWUPS_RETRY_BASE":        o.RetryBase.String(),
			"FOLLOWUPS_RETRY_MAX":         o.RetryMax.String(),
			"FOLLOWUPS_DISPATCH_TIMEOUT":  o.DispatchTimeout.String(),
		}),
		"dlq": with(map[string]string{
			"FOLLOWUPS_FIRE_QUEUE_URL":    s.FireQueueURL,
			"FOLLOWUPS_DLQ_URL":           s.DLQURL,
			"FOLLOWUPS_MAX_RETRIES":       fmt.Sprint(o.MaxRetries),
			"FOLLOWUPS_MAX_RECEIVE_COUNT": strconv.Itoa(s.MaxReceiveCount),
		}),
		"sweep": with(map[string]string{
			"FOLLOWUPS_FIRE_QUEUE_URL": s.FireQueueURL,
		}),
	}
}

// HarnessErrors returns what went wrong in the harness's own loops.
func (e *Env) HarnessErrors() []error {
	var errs []error
	for _, src := range [][]error{e.Scheduler.Errors(), e.FirePoller.Errors(), e.DLQPoller.Errors()} {
		errs = append(errs, src...)
	}
	return errs
}
