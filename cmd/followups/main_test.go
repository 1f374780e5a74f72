package main

import (
	"bytes"
	"context"
	"flag"
	"slices"
	"strings"
	"testing"
)

func runArgs(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, lookup)
	return code, stdout.String(), stderr.String()
}

// Every command's help names each of its flags and the global ones, and
// shows examples; the top help lists every command.
func TestHelpIsComplete(t *testing.T) {
	code, top, _ := runArgs(t, nil, "--help")
	if code != exitOK {
		t.Fatalf("--help: exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(top, "\n  "+c.name) {
			t.Errorf("--help does not list %s", c.name)
		}
		for _, args := range [][]string{{c.name, "--help"}, {"help", c.name}, {c.name, "-h"}} {
			code, help, _ := runArgs(t, nil, args...)
			if code != exitOK || !strings.Contains(help, "Usage:\n  followups "+c.name) || !strings.Contains(help, "Examples:\n  followups "+c.name) {
				t.Errorf("%v: exit %d\n%s", args, code, help)
			}
			fs := c.flags(&globals{})
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(help, "  -"+f.Name+" ") && !strings.Contains(help, "  -"+f.Name+"\n") {
					t.Errorf("%v does not describe -%s", args, f.Name)
				}
			})
		}
	}
}

// The help never shows a token from the environment.
func TestHelpHidesTheToken(t *testing.T) {
	env := map[string]string{envToken: "s3cret-token"}
	for _, args := range [][]string{{"--help"}, {"get", "--help"}, {"--token", "flag-token", "create", "--help"}} {
		_, out, _ := runArgs(t, env, args...)
		if strings.Contains(out, "s3cret-token") || strings.Contains(out, "flag-token") {
			t.Errorf("%v shows a token", args)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{nil, "Usage:"},
		{[]string{"nope"}, `followups: no command "nope"`},
		{[]string{"get"}, "followups: get takes one argument, ID"},
		{[]string{"get", "a", "b"}, "followups: get takes one argument, ID"},
		{[]string{"create", "--nope"}, "followups: flag provided but not defined: -nope"},
		{[]string{"-o", "yaml", "get", "fu_1"}, `followups: -o "yaml": want json or table`},
		{[]string{"--url", "127.0.0.1:8080", "get", "fu_1"}, `followups: --url "127.0.0.1:8080": want an http or https URL`},
		{[]string{"--token", "t", "--sigv4", "get", "fu_1"}, "followups: --token and --sigv4 both given"},
		{[]string{"create", "--thread", "t", "--prompt", "p", "--delay", "soon"}, `followups: --delay "soon": want seconds (3600) or a duration (1h30m)`},
		{[]string{"create", "--thread", "t", "--prompt", "p", "--delay", "1", "--metadata", "{"}, `followups: --metadata "{" is not JSON`},
		{[]string{"wait", "fu_1", "--interval", "0s"}, "followups: --timeout and --interval must be positive"},
	} {
		code, stdout, stderr := runArgs(t, nil, tc.args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, stdout, stderr, tc.stderr)
		}
	}
}

func TestParseDelay(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"3600", 3600, true}, {"1h", 3600, true}, {"1h30m", 5400, true}, {"90s", 90, true}, {"-5", -5, true},
		{"1.5s", 0, false}, {"500ms", 0, false}, {"soon", 0, false}, {"", 0, false},
	} {
		got, err := parseDelay(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseDelay(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFlagsGoAnywhere(t *testing.T) {
	var g globals
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	status := fs.String("status", "", "")
	g.register(fs)
	got, err := parseInterspersed(fs, []string{"--status", "scheduled", "team/a", "-o", "table", "--", "-not-a-flag"})
	if err != nil || !slices.Equal(got, []string{"team/a", "-not-a-flag"}) || *status != "scheduled" || g.output != "table" {
		t.Errorf("parseInterspersed: %v %v, status %q, output %q", got, err, *status, g.output)
	}
}

func TestRegionOfAnExecuteAPIURL(t *testing.T) {
	m := executeAPI.FindStringSubmatch("abc123def4.execute-api.eu-west-1.amazonaws.com")
	if m == nil || m[1] != "eu-west-1" {
		t.Errorf("execute-api host: %v", m)
	}
	if executeAPI.MatchString("followups.example.com") {
		t.Error("a custom domain matched as an execute-api host")
	}
}
