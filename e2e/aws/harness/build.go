package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Functions names the Lambda functions, each a package under functions/ at
// the module root.
var Functions = []string{"schedule", "fire", "dlq", "sweep"}

// Binary is one built bootstrap.
type Binary struct {
	Function string
	GOOS     string
	GOARCH   string
	Path     string
	Bytes    int64
}

// Target is what to build the bootstraps for, and how.
type Target struct {
	GOOS, GOARCH string
	// Flags are extra go build flags, e.g. -trimpath.
	Flags []string
}

// HostTarget builds for this machine, as the tests run the bootstraps.
var HostTarget = Target{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}

// DeployTarget builds as sam build does for the template (arm64, static,
// -trimpath, GOFLAGS=-tags=lambda.norpc): the size that is deployed.
var DeployTarget = Target{GOOS: "linux", GOARCH: "arm64", Flags: []string{"-trimpath"}}

// Build compiles every function of the module at root for target into
// dir/<goos>_<goarch>/<function>/bootstrap, in one go build invocation,
// static (CGO_ENABLED=0) and with -tags lambda.norpc.
func Build(ctx context.Context, root, dir string, target Target) (map[string]Binary, time.Duration, error) {
	out := filepath.Join(dir, target.GOOS+"_"+target.GOARCH)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, 0, err
	}
	args := []string{"build", "-tags", "lambda.norpc", "-o", out + string(filepath.Separator)}
	args = append(args, target.Flags...)
	for _, fn := range Functions {
		args = append(args, "./functions/"+fn)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+target.GOOS, "GOARCH="+target.GOARCH)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return nil, 0, fmt.Errorf("go %s (GOOS=%s GOARCH=%s): %w\n%s", strings.Join(args, " "), target.GOOS, target.GOARCH, err, stderr.String())
	}
	took := time.Since(start)
	bins := map[string]Binary{}
	for _, fn := range Functions {
		// go build -o dir/ names each binary after its package directory.
		fnDir := filepath.Join(out, fn+".d")
		if err := os.MkdirAll(fnDir, 0o755); err != nil {
			return nil, 0, err
		}
		path := filepath.Join(fnDir, "bootstrap")
		if err := os.Rename(filepath.Join(out, fn), path); err != nil {
			return nil, 0, fmt.Errorf("build %s: %w", fn, err)
		}
		st, err := os.Stat(path)
		if err != nil {
			return nil, 0, err
		}
		bins[fn] = Binary{Function: fn, GOOS: target.GOOS, GOARCH: target.GOARCH, Path: path, Bytes: st.Size()}
	}
	return bins, took, nil
}

// ModuleRoot returns the directory of the go.mod that holds the current
// directory.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}
