package samlocal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SAMEnv names the variable that may point at a sam executable.
const SAMEnv = "FOLLOWUPS_SAM"

// SAM runs the SAM CLI, as pinned by scripts/aws-tools.sh.
type SAM struct {
	// Bin is the sam executable.
	Bin string
	// Root is the repository root; every command runs there.
	Root string
	// Moto is moto's server on loopback. SAM CLI's only AWS call of its own
	// (STS GetCallerIdentity, for AWS::AccountId) goes there instead of to
	// AWS.
	Moto string
	// appDir is SAM CLI's own folder, with its weekly version check
	// marked done so that it asks no one.
	appDir string
}

// FindSAM returns the sam executable: $FOLLOWUPS_SAM, else
// root/.venv/bin/sam, else sam on PATH.
func FindSAM(root string) (string, error) {
	if p := os.Getenv(SAMEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", SAMEnv, p, err)
		}
		return p, nil
	}
	p := filepath.Join(root, ".venv", "bin", "sam")
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	p, err := exec.LookPath("sam")
	if err != nil {
		return "", errors.New("sam not found in " + SAMEnv + ", .venv/bin or PATH (scripts/aws-tools.sh installs it)")
	}
	return p, nil
}

// NewSAM prepares bin to run in root, its AWS call going to moto. Close
// removes what it made.
func NewSAM(bin, root, moto string) (*SAM, error) {
	dir, err := os.MkdirTemp("", "followups-sam-")
	if err != nil {
		return nil, err
	}
	// GlobalConfig's file: telemetry off, and a version check done just now
	// (otherwise SAM CLI asks PyPI for its latest version once a week). The
	// time must be written as a float with a fraction: SAM CLI takes a whole
	// number for no check at all.
	meta, _ := json.Marshal(map[string]any{"telemetryEnabled": false, "lastVersionCheck": float64(time.Now().UnixMicro())/1e6 + 1e-6})
	if err := os.WriteFile(filepath.Join(dir, "metadata.json"), meta, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &SAM{Bin: bin, Root: root, Moto: moto, appDir: dir}, nil
}

// Close removes SAM CLI's folder.
func (s *SAM) Close() { os.RemoveAll(s.appDir) }

// Version returns sam --version.
func (s *SAM) Version(ctx context.Context) (string, error) {
	out, err := s.Command(ctx, "--version").Output()
	return strings.TrimSpace(string(out)), err
}

// Command is sam with args, in the repository root, with the environment
// of Env.
func (s *SAM) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.Bin, args...)
	cmd.Dir = s.Root
	cmd.Env = s.Env(nil)
	return cmd
}

// Env is the whole environment of a sam process, with extra added. Nothing
// else is inherited: sam local gives a function the value of any variable
// of its own environment that the template declares for it, so a stray
// FOLLOWUPS_TABLE here would reach the functions. The credentials are
// moto's dummies, never a developer's; Go's and Docker's settings are
// passed on for sam build and the Docker client.
func (s *SAM) Env(extra map[string]string) []string {
	env := map[string]string{
		"PATH":                        os.Getenv("PATH"),
		"HOME":                        os.Getenv("HOME"),
		"LANG":                        "C.UTF-8",
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_REGION":                  Region,
		"AWS_DEFAULT_REGION":          Region,
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL_STS":        s.Moto,
		"SAM_CLI_TELEMETRY":           "0",
		"__SAM_CLI_APP_DIR":           s.appDir,
	}
	for _, k := range []string{"DOCKER_HOST", "TMPDIR", "GOPATH", "GOCACHE", "GOMODCACHE", "GOROOT", "GOPROXY", "GOTOOLCHAIN"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	maps.Copy(env, extra)
	list := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}
	return list
}

// Region is the region of the local stack (events/env.json's ARNs).
const Region = "us-east-1"

// Local is what every sam local command of one deployment is given.
type Local struct {
	// Template is a built template (sam build's template.yaml).
	Template string
	// EnvVars is the --env-vars file, events/env.json.
	EnvVars string
	// Parameters are the --parameter-overrides.
	Parameters map[string]string
}

// args are the flags of every sam local command: --skip-pull-image, as no
// registry can be asked for the base image's digest, and 127.0.0.1 as the
// containers' DNS server (see the package doc).
func (l Local) args() []string {
	args := []string{"--template", l.Template, "--env-vars", l.EnvVars, "--skip-pull-image", "--container-dns", "127.0.0.1"}
	if len(l.Parameters) > 0 {
		var p []string
		for _, k := range slices.Sorted(maps.Keys(l.Parameters)) {
			p = append(p, k+"="+l.Parameters[k])
		}
		args = append(args, "--parameter-overrides", strings.Join(p, " "))
	}
	return args
}

// Invocation is one sam local invoke.
type Invocation struct {
	// Response is what sam printed on stdout: the function's response, or
	// Lambda's error document.
	Response []byte
	// Output is what sam printed on stderr: its own messages and the
	// function's output.
	Output string
	// Took is the whole command, CLI and container included.
	Took time.Duration
	// Duration and InitDuration are the REPORT line's.
	Duration, InitDuration time.Duration
}

// Invoke runs sam local invoke of function with event (a path relative to
// the repository root, as a user gives it).
func (s *SAM) Invoke(ctx context.Context, l Local, function, event string) (*Invocation, error) {
	args := append([]string{"local", "invoke", function, "--event", event}, l.args()...)
	cmd := s.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	inv := &Invocation{Response: bytes.TrimSpace(stdout.Bytes()), Output: stderr.String(), Took: time.Since(start)}
	if err != nil {
		return inv, fmt.Errorf("sam %s: %w\n%s", strings.Join(args, " "), err, inv.Output)
	}
	inv.Duration, inv.InitDuration = report(inv.Output)
	if len(inv.Response) == 0 {
		return inv, fmt.Errorf("sam local invoke %s: no response\n%s", function, inv.Output)
	}
	return inv, nil
}

var (
	durationField = regexp.MustCompile(`\tDuration: ([0-9.]+) ms`)
	initField     = regexp.MustCompile(`Init Duration: ([0-9.]+) ms`)
)

// report reads the emulator's REPORT line.
func report(out string) (duration, init time.Duration) {
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "REPORT RequestId:") {
			continue
		}
		ms := func(re *regexp.Regexp) time.Duration {
			m := re.FindStringSubmatch(line)
			if m == nil {
				return 0
			}
			f, _ := strconv.ParseFloat(m[1], 64)
			return time.Duration(f * float64(time.Millisecond))
		}
		return ms(durationField), ms(initField)
	}
	return 0, 0
}
