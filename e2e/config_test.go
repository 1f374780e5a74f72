package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Bad configuration stops followupd at start with a message naming the setting.
func TestBadConfigurationStopsAtStart(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"no thread API", nil, nil, "THREAD_API_URL"},
		{"thread API not a URL", nil, []string{"THREAD_API_URL=threads.example.com"}, "THREAD_API_URL"},
		{"bad max retries", nil, []string{"THREAD_API_URL=http://127.0.0.1:1", "FOLLOWUPS_MAX_RETRIES=three"}, "FOLLOWUPS_MAX_RETRIES"},
		{"bad flag value wins over good env", []string{"--max-retries=-1"}, []string{"THREAD_API_URL=http://127.0.0.1:1", "FOLLOWUPS_MAX_RETRIES=2"}, "--max-retries"},
		{"bad duration", nil, []string{"THREAD_API_URL=http://127.0.0.1:1", "FOLLOWUPS_MIN_DELAY=soon"}, "FOLLOWUPS_MIN_DELAY"},
		{"max delay over a year", []string{"--max-delay=9000h"}, []string{"THREAD_API_URL=http://127.0.0.1:1"}, "FOLLOWUPS_MAX_DELAY"},
		{"min above max", nil, []string{"THREAD_API_URL=http://127.0.0.1:1", "FOLLOWUPS_MIN_DELAY=2h", "FOLLOWUPS_MAX_DELAY=1h"}, "FOLLOWUPS_MIN_DELAY"},
		{"empty retry base", nil, []string{"THREAD_API_URL=http://127.0.0.1:1", "FOLLOWUPS_RETRY_BASE="}, "FOLLOWUPS_RETRY_BASE"},
		{"bad address", nil, []string{"THREAD_API_URL=http://127.0.0.1:1", "FOLLOWUPS_ADDR=nonsense"}, "FOLLOWUPS_ADDR"},
		{"profiles on a public address", nil, []string{"THREAD_API_URL=http://127.0.0.1:1", "FOLLOWUPS_DEBUG_ADDR=0.0.0.0:6060"}, "FOLLOWUPS_DEBUG_ADDR"},
		{"unknown flag", []string{"--colour=red"}, []string{"THREAD_API_URL=http://127.0.0.1:1"}, "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, "followupd"), tt.args...)
			cmd.Env = append(cleanEnv(), append(tt.env, "FOLLOWUPS_DATA_DIR="+t.TempDir())...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("followupd started with bad configuration:\n%s", out)
			}
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("message does not name %s:\n%s", tt.want, out)
			}
		})
	}
}

// cleanEnv is the environment without any Followups setting.
func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "FOLLOWUPS_") && !strings.HasPrefix(e, "THREAD_API_") {
			env = append(env, e)
		}
	}
	return env
}
