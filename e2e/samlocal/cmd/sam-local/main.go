// Command sam-local runs the AWS side of Followups on the real SAM CLI, on
// this machine, for make sam-local (scripts/sam-local.sh starts Docker and
// moto, builds the stand-in base image, then runs it):
//
//   - sam build for the architecture (-arch: this machine's by default,
//     arm64 runs emulated);
//   - the local stack events/env.json names, made in moto, which the
//     containers reach at the Docker bridge (-moto-port);
//   - a thread API that prints each turn it receives, reached at the bridge
//     too (-thread-port);
//   - sam local start-api (-api, the followups API a user curls) and sam
//     local start-lambda (-lambda), with events/env.json;
//   - EventBridge Scheduler and the SQS event source mappings, played
//     against start-lambda's Lambda Invoke API.
//
// It prints what happens until Ctrl-C (SIGINT) or SIGTERM, then stops sam
// with SIGINT, so that SAM removes its containers. A bad flag stops it at
// start with a message naming the flag.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/followups/followups/e2e/samlocal"
	"github.com/followups/followups/shared/followup"
)

type options struct {
	root, arch, api, lambda, moto, bridge string
	motoPort, threadPort                  int
}

func main() {
	o := options{}
	flag.StringVar(&o.root, "root", ".", "the repository")
	flag.StringVar(&o.arch, "arch", samlocal.HostArch(), "architecture of the functions: x86_64 or arm64 (arm64 is the deployed one, emulated on another host)")
	flag.StringVar(&o.api, "api", "127.0.0.1:3000", "address of sam local start-api, the followups API")
	flag.StringVar(&o.lambda, "lambda", "127.0.0.1:3001", "address of sam local start-lambda, the Lambda Invoke API")
	flag.StringVar(&o.moto, "moto", os.Getenv("FOLLOWUPS_TEST_AWS_ENDPOINT"), "moto's server on loopback (scripts/moto.sh exports FOLLOWUPS_TEST_AWS_ENDPOINT)")
	flag.StringVar(&o.bridge, "bridge", os.Getenv("FOLLOWUPS_DOCKER_BRIDGE"), "address of Docker's default bridge (scripts/docker.sh exports FOLLOWUPS_DOCKER_BRIDGE)")
	flag.IntVar(&o.motoPort, "moto-port", 5000, "port at the bridge where the functions reach moto (events/env.json's queue URL names 5000)")
	flag.IntVar(&o.threadPort, "thread-port", 8081, "port at the bridge where the functions reach the thread API")
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "sam-local:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "sam-local:", err)
		os.Exit(1)
	}
}

// check refuses a bad flag, naming it.
func (o *options) check() error {
	var errs []error
	if o.arch != samlocal.X8664 && o.arch != samlocal.ARM64 {
		errs = append(errs, fmt.Errorf("-arch %q: want x86_64 or arm64", o.arch))
	}
	for name, addr := range map[string]string{"-api": o.api, "-lambda": o.lambda} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %v", name, addr, err))
		}
	}
	if u, err := url.Parse(o.moto); o.moto == "" || err != nil || u.Scheme != "http" || u.Host == "" {
		errs = append(errs, fmt.Errorf("-moto %q: want moto's http://host:port (run scripts/sam-local.sh, which starts moto)", o.moto))
	}
	if net.ParseIP(o.bridge) == nil {
		errs = append(errs, fmt.Errorf("-bridge %q: want the Docker bridge's IP address (run scripts/sam-local.sh, which starts Docker)", o.bridge))
	}
	for name, p := range map[string]int{"-moto-port": o.motoPort, "-thread-port": o.threadPort} {
		if p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s %d: not a port", name, p))
		}
	}
	root, err := filepath.Abs(o.root)
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "template.yaml"))
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("-root %q: no template.yaml: %v", o.root, err))
	}
	o.root = root
	return errors.Join(errs...)
}

func say(format string, args ...any) { fmt.Printf("sam-local: "+format+"\n", args...) }

func run(ctx context.Context, o options) error {
	start := time.Now()
	bin, err := samlocal.FindSAM(o.root)
	if err != nil {
		return err
	}
	sam, err := samlocal.NewSAM(bin, o.root, o.moto)
	if err != nil {
		return err
	}
	defer sam.Close()
	dir := filepath.Join(o.root, ".aws-sam", "local-"+o.arch)
	say("sam build for %s into %s", o.arch, rel(o.root, dir))
	built, took, err := sam.Build(ctx, o.arch, dir)
	if err != nil {
		return err
	}
	say("built in %.1f s", took.Seconds())

	u, _ := url.Parse(o.moto)
	motoFwd, err := samlocal.Forward(net.JoinHostPort(o.bridge, strconv.Itoa(o.motoPort)), u.Host)
	if err != nil {
		return fmt.Errorf("moto at the bridge (-moto-port): %w", err)
	}
	defer motoFwd.Close()
	endpoint := "http://" + motoFwd.Addr()
	say("moto (%s) is reached by the functions at %s", o.moto, endpoint)

	cfg := aws.Config{Region: samlocal.Region, Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), BaseEndpoint: aws.String(o.moto)}
	say("making the local stack of events/env.json in moto; starting the thread API, sam local start-api on %s and start-lambda on %s, and invoking each function once (the first time, SAM builds its image on the base image)", o.api, o.lambda)
	d, err := samlocal.Deploy(ctx, samlocal.Config{
		SAM: sam, Template: built, EnvVars: filepath.Join(o.root, "events", "env.json"), AWS: cfg,
		Endpoint: endpoint, Bridge: o.bridge, ThreadPort: o.threadPort, APIAddr: o.api, LambdaAddr: o.lambda,
		Thread: samlocal.ThreadAnswers, LogDir: dir,
	})
	if err != nil {
		return err
	}
	defer func() {
		say("stopping: sam local start-api and start-lambda (SIGINT, so that SAM removes its containers)")
		if err := d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "sam-local:", err)
		}
		say("stopped")
	}()
	banner(o, d, time.Since(start))
	watch(ctx, d)
	return nil
}

func banner(o options, d *samlocal.Deployment, ready time.Duration) {
	api := d.API.URL
	local := d.Local()
	var params []string
	for _, k := range slices.Sorted(maps.Keys(local.Parameters)) {
		params = append(params, k+"="+local.Parameters[k])
	}
	fmt.Printf(`
sam-local: ready in %.0f s (%s functions). The followups API, on sam local start-api:

  API=%s
  curl -s -X POST $API/followups -H 'Content-Type: application/json' \
    -d '{"thread_id":"t-123","prompt":"Check whether the nightly build finished.","delay_seconds":5}'
  curl -s $API/followups/<id>
  curl -s $API/threads/t-123/followups

No Authorization header: sam local does not emulate the API's IAM authorization.
Within seconds of its run_at the thread API below prints the turn. A thread id
starting with "gone" is answered 404 (dropped thread_not_found), one starting
with "down" 503 (retried, then dead-lettered: retries_exhausted).

The functions themselves, through sam local start-lambda's Lambda Invoke API
at %s, or one by one:

  . scripts/aws-tools.sh
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ENDPOINT_URL_STS=%s
  sam local invoke FireFunction --event events/fire-batch.json --env-vars events/env.json \
    --template %s --skip-pull-image \
    --parameter-overrides "%s"

sam's output, with the functions' logs: %s, %s
Ctrl-C stops everything.

`, ready.Seconds(), o.arch, api, d.Lambda.URL, local.Parameters["LocalAwsEndpoint"], rel(o.root, local.Template), strings.Join(params, " "),
		rel(o.root, d.API.Log()), rel(o.root, d.Lambda.Log()))
}

// watch prints what the thread API receives, what Scheduler runs and what
// the event source mappings invoke, until ctx ends or a sam process exits.
func watch(ctx context.Context, d *samlocal.Deployment) {
	var seenReqs, seenFirings int
	seenBatches := map[string]int{}
	seenErrs := 0
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println()
			return
		case <-d.API.Exited():
			say("sam local start-api exited; see %s", d.API.Log())
			return
		case <-d.Lambda.Exited():
			say("sam local start-lambda exited; see %s", d.Lambda.Log())
			return
		case <-tick.C:
		}
		for _, f := range d.Scheduler.Firings()[seenFirings:] {
			seenFirings++
			to := "the fire queue"
			if !f.Delivered {
				to = "nowhere: " + f.ErrorCode
				if f.DeadLettered {
					to = "the dead-letter queue: " + f.ErrorCode
				}
			}
			say("scheduler: schedule %s ran → %s", f.Schedule, to)
		}
		reqs := d.Thread.Requests("")
		for _, r := range reqs[seenReqs:] {
			a := samlocal.ThreadAnswers(r)
			fmt.Printf("\nthread API: POST %s (followup %s, attempt %d) → %d\n  %s\n\n", r.RequestURI, r.FollowupID, r.Attempt, a.Status, r.Message.Content)
		}
		seenReqs = len(reqs)
		for fn, p := range d.Pollers {
			batches := p.Batches()
			for _, b := range batches[seenBatches[fn]:] {
				var ids []string
				for _, r := range b.Records {
					var m followup.Message
					if json.Unmarshal([]byte(r.Body), &m) == nil && m.FollowupID != "" {
						ids = append(ids, m.FollowupID)
					} else {
						ids = append(ids, "message "+r.MessageID)
					}
				}
				result := fmt.Sprintf("%d done", len(b.Deleted))
				if len(b.Failures) > 0 {
					result += fmt.Sprintf(", %d back to the queue to retry", len(b.Failures))
				}
				if b.WholeBatchFailed {
					result = "the invocation failed: " + fmt.Sprint(b.Invocation.Err)
				}
				say("%s (start-lambda, %d ms): %s: %s", fn, b.Invocation.Took.Milliseconds(), strings.Join(ids, ", "), result)
			}
			seenBatches[fn] = len(batches)
		}
		errs := d.HarnessErrors()
		for _, err := range errs[seenErrs:] {
			say("harness: %v", err)
		}
		seenErrs = len(errs)
	}
}

// rel is path relative to root, when it is inside.
func rel(root, path string) string {
	if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}
