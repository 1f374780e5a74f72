package samlocal_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/followups/followups/e2e/aws/harness"
	"github.com/followups/followups/e2e/samlocal"
	"github.com/followups/followups/shared/awstest"
	"github.com/followups/followups/shared/dynamo"
)

// The environment the tests read.
const (
	// bridgeEnv is the Docker bridge's address, exported by
	// scripts/docker.sh once dockerd answers.
	bridgeEnv = "FOLLOWUPS_DOCKER_BRIDGE"
	// requireEnv set to 1 (scripts/test.sh) turns a skip for want of
	// Docker, moto or the SAM CLI into a failure.
	requireEnv = "FOLLOWUPS_REQUIRE_SAM_LOCAL"
	// reportEnv names a markdown file for the timings.
	reportEnv = "FOLLOWUPS_SAMLOCAL_REPORT"
)

const skipMessage = "needs Docker, moto and the SAM CLI: run make test, or first " +
	". scripts/aws-tools.sh && . scripts/docker.sh && . scripts/moto.sh (" + requireEnv + "=1 makes this a failure)"

// fx is what every test shares: the stand-in image, the build, moto at
// the bridge, and the deployment on start-api and start-lambda (started by
// the first test that needs it).
//
// Everything runs the arm64 build of template.yaml, the artifacts that are
// deployed, emulated on another host. A copy of the template for this
// host's architecture (what make sam-local runs by default) would run the
// same tests no faster: they wait on the queues, not on the functions. But
// it costs a second sam build, the longest step of a run whose Go build
// cache is cold.
var fx fixture

type fixture struct {
	once   sync.Once
	skip   string
	err    error
	root   string
	dir    string
	bridge string
	sam    *samlocal.SAM
	aws    aws.Config
	moto   *samlocal.Forwarder
	// thread is the thread API the sample events are invoked with, at
	// threadFwd at the bridge.
	thread    *harness.ThreadAPI
	threadFwd *samlocal.Forwarder
	// built is sam build's template.yaml of the arm64 build.
	built   string
	envVars string
	stack   *samlocal.Stack
	store   *dynamo.Store

	deployOnce sync.Once
	deployment *samlocal.Deployment
	deployErr  error

	report report
}

func TestMain(m *testing.M) {
	start := time.Now()
	code := m.Run()
	if d := fx.deployment; d != nil {
		if err := d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "stop the deployment:", err)
			code = 1
		}
	}
	for _, fwd := range []*samlocal.Forwarder{fx.moto, fx.threadFwd} {
		if fwd != nil {
			fwd.Close()
		}
	}
	if fx.thread != nil {
		fx.thread.Close()
	}
	if fx.sam != nil {
		fx.sam.Close()
		fx.report.add("the whole package (images, builds, every test)", time.Since(start), "")
		if path := os.Getenv(reportEnv); path != "" {
			if err := fx.report.write(path); err != nil {
				fmt.Fprintln(os.Stderr, "write the report:", err)
				code = 1
			}
		}
	}
	if fx.dir != "" {
		os.RemoveAll(fx.dir)
	}
	os.Exit(code)
}

// need returns the fixture, preparing it on first use, or skips t (fails
// it under FOLLOWUPS_REQUIRE_SAM_LOCAL=1) when Docker, moto or the SAM CLI
// is missing.
func need(t *testing.T) *fixture {
	t.Helper()
	fx.once.Do(func() { fx.prepare(t) })
	if fx.skip != "" {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s=1 but: %s: %s", requireEnv, fx.skip, skipMessage)
		}
		t.Skip(fx.skip + ": " + skipMessage)
	}
	if fx.err != nil {
		t.Fatalf("prepare sam local: %v", fx.err)
	}
	return &fx
}

func (f *fixture) prepare(t *testing.T) {
	root, err := harness.ModuleRoot()
	if err != nil {
		f.err = err
		return
	}
	f.root = root
	f.envVars = filepath.Join(root, "events", "env.json")
	var missing []string
	motoURL := os.Getenv(awstest.EndpointEnv)
	if motoURL == "" {
		missing = append(missing, "no moto ("+awstest.EndpointEnv+")")
	}
	if f.bridge = os.Getenv(bridgeEnv); f.bridge == "" {
		missing = append(missing, "no Docker ("+bridgeEnv+")")
	} else if net.ParseIP(f.bridge) == nil {
		f.err = fmt.Errorf("%s=%q is not an IP address", bridgeEnv, f.bridge)
		return
	}
	if samlocal.HostArch() != samlocal.ARM64 {
		if b, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-aarch64"); err != nil || !strings.HasPrefix(string(b), "enabled") {
			missing = append(missing, "no arm64 emulation (qemu-aarch64 in binfmt_misc, which scripts/docker.sh enables)")
		}
	}
	bin, err := samlocal.FindSAM(root)
	if err != nil {
		missing = append(missing, err.Error())
	}
	if len(missing) > 0 {
		f.skip = strings.Join(missing, ", ")
		return
	}
	ctx := context.Background()
	f.aws = awstest.Config(t)
	if f.sam, err = samlocal.NewSAM(bin, root, motoURL); err != nil {
		f.err = err
		return
	}
	if f.dir, err = os.MkdirTemp("", "followups-samlocal-"); err != nil {
		f.err = err
		return
	}
	if version, err := f.sam.Version(ctx); err == nil {
		f.report.note = version
	}

	// The stand-in base images, built from Debian's packages unless they
	// are up to date.
	start := time.Now()
	img := exec.Command("bash", filepath.Join(root, "scripts", "lambda-image.sh"), samlocal.ARM64)
	out, err := img.CombinedOutput()
	if err != nil {
		f.err = fmt.Errorf("scripts/lambda-image.sh: %w\n%s", err, out)
		return
	}
	f.report.add("stand-in base image (scripts/lambda-image.sh)", time.Since(start), imageNote(string(out)))

	built, took, err := f.sam.Build(ctx, samlocal.ARM64, filepath.Join(f.dir, samlocal.ARM64))
	if err != nil {
		f.err = err
		return
	}
	f.built = built
	f.report.add("sam build (arm64, template.yaml)", took, "")

	// moto, reached by the containers at the bridge.
	u, err := url.Parse(motoURL)
	if err != nil {
		f.err = fmt.Errorf("%s: %w", awstest.EndpointEnv, err)
		return
	}
	if f.moto, err = samlocal.Forward(net.JoinHostPort(f.bridge, "0"), u.Host); err != nil {
		f.err = fmt.Errorf("moto at the bridge: %w", err)
		return
	}
	f.thread = harness.NewThreadAPI(nil)
	if f.threadFwd, err = samlocal.Forward(net.JoinHostPort(f.bridge, "0"), f.thread.Listener.Addr().String()); err != nil {
		f.err = fmt.Errorf("thread API at the bridge: %w", err)
		return
	}
	env, err := samlocal.ReadEnvFile(f.envVars)
	if err != nil {
		f.err = err
		return
	}
	if f.stack, err = samlocal.StackOf(env); err != nil {
		f.err = err
		return
	}
	f.store = dynamo.New(dynamodb.NewFromConfig(f.aws), f.stack.Table, dynamo.Options{})
}

// endpoint is moto as the functions reach it.
func (f *fixture) endpoint() string { return "http://" + f.moto.Addr() }

// local is what sam local invoke is given, as the README gives it: the
// built template, the env file, and the parameters that point the
// functions at moto and a thread API.
func (f *fixture) local() samlocal.Local {
	return samlocal.Local{Template: f.built, EnvVars: f.envVars, Parameters: map[string]string{
		"LocalAwsEndpoint": f.endpoint(),
		"ThreadApiUrl":     "http://" + f.threadFwd.Addr(),
	}}
}

// deploy returns the deployment on start-api and start-lambda, starting
// it on first use. Its thread API answers as ThreadAnswers says.
func (f *fixture) deploy(t *testing.T) *samlocal.Deployment {
	t.Helper()
	f.deployOnce.Do(func() {
		dir := filepath.Join(f.dir, "deployment")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.deployErr = err
			return
		}
		apiAddr, err := samlocal.FreeAddr()
		if err != nil {
			f.deployErr = err
			return
		}
		lambdaAddr, err := samlocal.FreeAddr()
		if err != nil {
			f.deployErr = err
			return
		}
		f.deployment, f.deployErr = samlocal.Deploy(context.Background(), samlocal.Config{
			SAM: f.sam, Template: f.built, EnvVars: f.envVars, AWS: f.aws,
			Endpoint: f.endpoint(), Bridge: f.bridge, APIAddr: apiAddr, LambdaAddr: lambdaAddr,
			Thread: samlocal.ThreadAnswers, LogDir: dir,
		})
		if f.deployErr == nil {
			f.report.add("sam local start-api listening", f.deployment.API.Ready, "")
			f.report.add("sam local start-lambda listening", f.deployment.Lambda.Ready, "")
			for _, what := range slices.Sorted(maps.Keys(f.deployment.WarmUp)) {
				f.report.add(what+": first invocation (its container made, cold start)", f.deployment.WarmUp[what], "")
			}
		}
	})
	if f.deployErr != nil {
		t.Fatalf("deploy on sam local: %v", f.deployErr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(f.deployment.API.Tail(60))
			t.Log(f.deployment.Lambda.Tail(60))
		}
	})
	return f.deployment
}

// imageNote sums up what scripts/lambda-image.sh said of each image.
func imageNote(out string) string {
	var notes []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimPrefix(l, "lambda-image: public.ecr.aws/lambda/provided:")
		if strings.Contains(l, "built in") || strings.Contains(l, "up to date") || strings.Contains(l, "keeping it") {
			notes = append(notes, l)
		}
	}
	return strings.Join(notes, "; ")
}
