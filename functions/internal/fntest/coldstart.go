package fntest

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// BadSetting is one setting made bad: Value "<unset>" removes it.
type BadSetting struct {
	Name, Variable, Value string
	// Also are other variables set with it, for a value that is bad only
	// beside another.
	Also map[string]string
}

// ColdStartFails checks that each bad setting makes build fail with an
// error naming the variable. valid returns a fresh, complete environment.
func ColdStartFails(t *testing.T, valid func() map[string]string, build func(lookup func(string) (string, bool)) error, cases []BadSetting) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			e := valid()
			if tt.Value == "<unset>" {
				delete(e, tt.Variable)
			} else {
				e[tt.Variable] = tt.Value
			}
			maps.Copy(e, tt.Also)
			err := build(Lookup(e))
			if err == nil || !strings.Contains(err.Error(), tt.Variable) {
				t.Fatalf("error = %v, want one naming %s", err, tt.Variable)
			}
		})
	}
}

// MainExits runs the test binary again as the function's main with only
// the settings in env: a failed cold start is exit status 1 with exactly
// one stderr line, which starts with want (the function's name and the
// variable). The calling test must call main itself in that process; see
// RunMainIfAsked.
func MainExits(t *testing.T, testName string, env map[string]string, want string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+testName+"$")
	cmd.Env = []string{"FOLLOWUPS_TEST_MAIN=1", "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("main exited with %v, want status 1; output %q", err, out)
	}
	if !strings.HasPrefix(string(out), want) || strings.Count(string(out), "\n") != 1 {
		t.Errorf("stderr = %q, want one line starting %q", out, want)
	}
}

// RunMainIfAsked runs main and reports true in the child process that
// MainExits starts.
func RunMainIfAsked(main func()) bool {
	if os.Getenv("FOLLOWUPS_TEST_MAIN") != "1" {
		return false
	}
	main()
	return true
}
