package samlocal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/followups/followups/e2e/aws/harness"
)

// Config describes a Deployment.
type Config struct {
	SAM *SAM
	// Template is the built template start-api and start-lambda run.
	Template string
	// EnvVars is the env file, events/env.json.
	EnvVars string
	// AWS is the SDK configuration for moto on loopback, for the harness.
	AWS aws.Config
	// Endpoint is moto as the functions reach it (LocalAwsEndpoint), at
	// the bridge.
	Endpoint string
	// Bridge is the Docker bridge's address, and ThreadPort the port there
	// at which the functions reach the thread API (0: any).
	Bridge     string
	ThreadPort int
	// APIAddr and LambdaAddr are where start-api and start-lambda listen.
	APIAddr, LambdaAddr string
	// Thread answers the thread API's requests (201 for all when nil).
	Thread func(harness.ThreadRequest) harness.ThreadAnswer
	// LogDir receives start-api.log and start-lambda.log.
	LogDir string
}

// Deployment is the AWS side of Followups on sam local: the env file's
// stack made anew in moto, a thread API, sam local start-api (the HTTP
// API) and start-lambda (every function, through the Lambda Invoke API),
// and the harness playing EventBridge Scheduler and the event source
// mappings of the template's queue consumers against start-lambda.
type Deployment struct {
	Config Config
	Stack  *Stack
	Thread *harness.ThreadAPI
	// ThreadURL is the thread API as the functions reach it
	// (ThreadApiUrl).
	ThreadURL string
	API       *Service
	Lambda    *Service
	// Scheduler plays EventBridge Scheduler for the stack's group.
	Scheduler *harness.Scheduler
	// Pollers play the event source mappings, by function.
	Pollers map[string]*harness.Poller
	// WarmUp is how long each function's first invocation took, by
	// function: its container made (SAM CLI's image too, the first time)
	// and its bootstrap started.
	WarmUp map[string]time.Duration

	threadFwd *Forwarder
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Deploy brings a Deployment up. On error, what was started is stopped.
func Deploy(ctx context.Context, cfg Config) (d *Deployment, err error) {
	d = &Deployment{Config: cfg, Pollers: map[string]*harness.Poller{}, WarmUp: map[string]time.Duration{}}
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	defer func() {
		if err != nil {
			d.Close()
			d = nil
		}
	}()
	env, err := ReadEnvFile(cfg.EnvVars)
	if err != nil {
		return d, err
	}
	if d.Stack, err = StackOf(env); err != nil {
		return d, err
	}
	if err := d.Stack.Reset(ctx, cfg.AWS); err != nil {
		return d, fmt.Errorf("make the local stack in moto: %w", err)
	}
	tmpl, err := ReadTemplate(filepath.Join(cfg.SAM.Root, "template.yaml"))
	if err != nil {
		return d, err
	}
	consumers, err := tmpl.Consumers()
	if err != nil {
		return d, err
	}

	d.Thread = harness.NewThreadAPI(cfg.Thread)
	if d.threadFwd, err = Forward(net.JoinHostPort(cfg.Bridge, strconv.Itoa(cfg.ThreadPort)), d.Thread.Listener.Addr().String()); err != nil {
		return d, fmt.Errorf("thread API at the bridge: %w", err)
	}
	d.ThreadURL = "http://" + d.threadFwd.Addr()

	local := d.Local()
	var wg sync.WaitGroup
	var apiErr, lambdaErr error
	wg.Go(func() {
		d.API, apiErr = cfg.SAM.Start(ctx, local, "start-api", cfg.APIAddr, filepath.Join(cfg.LogDir, "start-api.log"))
	})
	wg.Go(func() {
		d.Lambda, lambdaErr = cfg.SAM.Start(ctx, local, "start-lambda", cfg.LambdaAddr, filepath.Join(cfg.LogDir, "start-lambda.log"))
	})
	wg.Wait()
	if err := errors.Join(apiErr, lambdaErr); err != nil {
		return d, err
	}

	q := sqs.NewFromConfig(cfg.AWS)
	client := NewLambdaClient(d.Lambda.URL)
	d.Scheduler = &harness.Scheduler{Client: scheduler.NewFromConfig(cfg.AWS), SQS: q, Group: d.Stack.Group, Endpoint: aws.ToString(cfg.AWS.BaseEndpoint)}
	for _, c := range consumers {
		p := &harness.Poller{
			Fn: &Lambda{Client: client, Function: c.Function}, SQS: q, Region: Region,
			BatchSize: c.BatchSize, Window: c.Window,
		}
		switch c.Queue {
		case "FireQueue":
			p.QueueURL, p.QueueARN = d.Stack.FireQueueURL, d.Stack.FireQueueARN
		case "DeadLetterQueue":
			p.QueueURL, p.QueueARN = d.Stack.DLQURL, d.Stack.DLQARN
		default:
			return d, fmt.Errorf("%s consumes queue %s, which the local stack does not make", c.Function, c.Queue)
		}
		d.Pollers[c.Function] = p
	}
	if err := d.warmUp(ctx, client); err != nil {
		return d, err
	}
	d.wg.Go(func() { d.Scheduler.Run(runCtx) })
	for _, p := range d.Pollers {
		d.wg.Go(func() { p.Run(runCtx) })
	}
	return d, nil
}

// warmUp invokes every function once, doing nothing, so that a user's or
// a test's first request meets a warm container: an unknown path through
// start-api (the API's 404, no AWS call) and an empty batch to each queue
// consumer through start-lambda.
func (d *Deployment) warmUp(ctx context.Context, client *lambda.Client) error {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.API.URL+"/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: readyTimeout}).Do(req)
	if err != nil {
		return fmt.Errorf("warm up start-api: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("warm up start-api: GET / answered %d, want the API's 404", resp.StatusCode)
	}
	d.WarmUp["start-api "+apiFunction] = time.Since(start)
	for fn, p := range d.Pollers {
		start := time.Now()
		inv, err := p.Fn.Invoke(ctx, []byte(`{"Records":[]}`))
		if err == nil && inv.Err != nil {
			err = inv.Err
		}
		if err != nil {
			return fmt.Errorf("warm up %s through start-lambda: %w", fn, err)
		}
		d.WarmUp["start-lambda "+fn] = time.Since(start)
	}
	return nil
}

// apiFunction is the function behind the HTTP API.
const apiFunction = "ScheduleFunction"

// Local is what a sam local command run against the deployment is given:
// its template, the env file, and the parameters that point the functions
// at moto and the thread API.
func (d *Deployment) Local() Local {
	return Local{Template: d.Config.Template, EnvVars: d.Config.EnvVars, Parameters: map[string]string{
		"LocalAwsEndpoint": d.Config.Endpoint,
		"ThreadApiUrl":     d.ThreadURL,
	}}
}

// HarnessErrors returns what went wrong in the harness's own loops.
func (d *Deployment) HarnessErrors() []error {
	var errs []error
	if d.Scheduler != nil {
		errs = append(errs, d.Scheduler.Errors()...)
	}
	for _, p := range d.Pollers {
		errs = append(errs, p.Errors()...)
	}
	return errs
}

// Close stops the harness, then start-api and start-lambda (SIGINT, so
// that SAM removes its containers), then the thread API. It returns an
// error when a sam process had to be killed or left a container behind
// (which it then removes).
func (d *Deployment) Close() error {
	d.closeOnce.Do(func() {
		d.cancel()
		d.wg.Wait()
		var errs []error
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, svc := range []*Service{d.API, d.Lambda} {
			if svc == nil {
				continue
			}
			wg.Go(func() {
				err := errors.Join(svc.Stop(), svc.removeLeftovers())
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			})
		}
		wg.Wait()
		if d.threadFwd != nil {
			d.threadFwd.Close()
		}
		if d.Thread != nil {
			d.Thread.Close()
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

// removeLeftovers removes the containers sam said it created and did not
// remove, and returns an error naming them: sam has exited, so they are
// no one's.
func (svc *Service) removeLeftovers() error {
	ids := svc.Containers()
	if len(ids) == 0 {
		return nil
	}
	args := []string{"ps", "--all", "--quiet", "--no-trunc"}
	for _, id := range ids {
		args = append(args, "--filter", "id="+id)
	}
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, out)
	}
	left := strings.Fields(string(out))
	if len(left) == 0 {
		return nil
	}
	if out, err := exec.Command("docker", append([]string{"rm", "--force"}, left...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("sam local %s left containers %v behind after SIGINT, and docker rm failed: %v: %s", svc.Command, left, err, out)
	}
	return fmt.Errorf("sam local %s left containers %v behind after SIGINT (removed now)", svc.Command, left)
}

// ThreadAnswers is how the thread API of a local deployment answers, by
// thread id, so that every outcome can be tried: an id that starts with
// "gone" gets 404 (a deleted thread: dropped at once), "down" gets 503 (a
// failing thread API: retried, then dead-lettered), any other 201.
func ThreadAnswers(r harness.ThreadRequest) harness.ThreadAnswer {
	switch {
	case strings.HasPrefix(r.ThreadID, "gone"):
		return harness.ThreadAnswer{Status: 404, Body: `{"error":"no such thread"}`}
	case strings.HasPrefix(r.ThreadID, "down"):
		return harness.ThreadAnswer{Status: 503, Body: `{"error":"down for maintenance"}`}
	}
	return harness.ThreadAnswer{Status: 201, Body: `{"ok":true}`}
}
