package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/followups/followups/e2e/scenario"
)

// cli is the followups command TestMain built.
func cli() string { return filepath.Join(binDir, "followups") }

// ran is one run of the command.
type ran struct {
	code           int
	stdout, stderr string
}

// JSON decodes the command's output.
func (r ran) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("output is not JSON (exit %d): %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	return m
}

// runCLI runs the command with env (KEY=value) and args, stdin from stdin.
func runCLI(t *testing.T, env []string, stdin string, args ...string) ran {
	t.Helper()
	cmd := exec.Command(cli(), args...)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "FOLLOWUPS_") && !strings.HasPrefix(e, "AWS_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := ran{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run followups %v: %v", args, err)
	}
	return r
}

// gateway stands in front of followupd for the command: every response
// passes through checked (openapi.json), and, as API Gateway's IAM
// authorization does, a request signed with SigV4 has its signature
// verified, by the AWS SDK's own signer computing it again from the
// secret of the access key it names, before it goes on with followupd's
// token. A bad signature gets API Gateway's 403.
type gateway struct {
	*httptest.Server
	token            string
	secrets          map[string]string // access key id → secret
	verified, forged atomic.Int64
}

// authorization reads a SigV4 Authorization header.
var authorization = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$`)

func newGateway(t *testing.T, d *daemon, secrets map[string]string) *gateway {
	t.Helper()
	g := &gateway{token: d.token, secrets: secrets}
	target, _ := url.Parse(d.base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = checked
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		t.Errorf("gateway: %s %s: %v", r.Method, r.URL, err)
		w.WriteHeader(http.StatusBadGateway)
	}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
			if err := g.verify(r); err != nil {
				g.forged.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprintf(w, `{"message":%q}`, err.Error())
				return
			}
			g.verified.Add(1)
			r.Header.Set("Authorization", "Bearer "+g.token)
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// verify checks r's signature: it signs a copy of r, with only the headers
// r says it signed, at the time r says, and compares.
func (g *gateway) verify(r *http.Request) error {
	m := authorization.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return errors.New("malformed Authorization header")
	}
	key, region, service, signed := m[1], m[3], m[4], strings.Split(m[5], ";")
	secret, ok := g.secrets[key]
	if !ok {
		return errors.New("the security token included in the request is invalid")
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return errors.New("missing or malformed X-Amz-Date")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	again, err := http.NewRequest(r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	again.Host = r.Host
	for _, h := range signed {
		if h != "host" && h != "content-length" {
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		hash = sha256Hex(body)
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hash, service, region, at); err != nil {
		return err
	}
	if again.Header.Get("Authorization") != r.Header.Get("Authorization") {
		return errors.New("The request signature we calculated does not match the signature you provided.")
	}
	if service != "execute-api" {
		return fmt.Errorf("signed for %s, not execute-api", service)
	}
	return nil
}

func TestCLI(t *testing.T) {
	t.Parallel()
	var outage scenario.Outage
	th := newThread(t, func(thread string, _ int) (int, http.Header, string) { return outage.Status(thread), nil, `{}` })
	d := startDaemon(t, th, "", "FOLLOWUPS_API_TOKEN=cli-token")
	gw := newGateway(t, d, map[string]string{"AKIDCLITEST": "cli-test-secret"})
	env := []string{"FOLLOWUPS_URL=" + gw.URL, "FOLLOWUPS_API_TOKEN=" + d.token}
	create := func(t *testing.T, args ...string) string {
		t.Helper()
		r := runCLI(t, env, "", append([]string{"create", "--prompt", "Check the build."}, args...)...)
		if r.code != 0 {
			t.Fatalf("create %v: exit %d: %s", args, r.code, r.stderr)
		}
		return str(r.JSON(t)["id"])
	}

	t.Run("create and get", func(t *testing.T) {
		t.Parallel()
		args := []string{"create", "--thread", "t-cli/one", "--prompt", "-", "--delay", "1h", "--reason", "waiting on CI",
			"--run", "run-1", "--metadata", `{"channel":"ops"}`, "--idempotency-key", "cli-create-1"}
		r := runCLI(t, env, "Check whether the nightly build finished.\n", args...)
		f := r.JSON(t)
		if r.code != 0 || f["thread_id"] != "t-cli/one" || f["prompt"] != "Check whether the nightly build finished." ||
			num(f["delay_seconds_requested"]) != 3600 || f["reason"] != "waiting on CI" || f["originating_run_id"] != "run-1" ||
			f["metadata"].(map[string]any)["channel"] != "ops" {
			t.Fatalf("create: exit %d %v %s", r.code, f, r.stderr)
		}
		if again := runCLI(t, env, "Check whether the nightly build finished.\n", args...); again.code != 0 || again.JSON(t)["id"] != f["id"] {
			t.Errorf("create with the same key again: exit %d %s %s", again.code, again.stdout, again.stderr)
		}
		if g := runCLI(t, env, "", "get", str(f["id"])); g.code != 0 || g.JSON(t)["status"] != "scheduled" {
			t.Errorf("get: exit %d %s %s", g.code, g.stdout, g.stderr)
		}
		if g := runCLI(t, env, "", "get", "-o", "table", str(f["id"])); g.code != 0 || !strings.HasPrefix(g.stdout, "ID ") ||
			!regexp.MustCompile(str(f["id"])+`\s+"t-cli/one"\s+scheduled\s`).MatchString(g.stdout) {
			t.Errorf("get -o table: exit %d %q", g.code, g.stdout)
		}
	})

	t.Run("list", func(t *testing.T) {
		t.Parallel()
		a := create(t, "--thread", "t cli list", "--delay", "3600")
		b := create(t, "--thread", "t cli list", "--delay", "7200")
		r := runCLI(t, env, "", "list", "t cli list")
		if items, _ := r.JSON(t)["followups"].([]any); r.code != 0 || len(items) != 2 || items[0].(map[string]any)["id"] != a {
			t.Errorf("list: exit %d %s", r.code, r.stdout)
		}
		r = runCLI(t, env, "", "list", "--limit", "1", "-o", "table", "t cli list", "--status", "scheduled")
		if r.code != 0 || !strings.Contains(r.stdout, a) || strings.Contains(r.stdout, b) || !strings.Contains(r.stdout, "more: --cursor ") {
			t.Errorf("list --limit 1 -o table: exit %d %q", r.code, r.stdout)
		}
		r = runCLI(t, env, "", "list", "--limit", "1", "--all", "t cli list")
		if items, _ := r.JSON(t)["followups"].([]any); r.code != 0 || len(items) != 2 {
			t.Errorf("list --all: exit %d %s", r.code, r.stdout)
		}
	})

	t.Run("cancel and cancel-thread", func(t *testing.T) {
		t.Parallel()
		ids := []string{create(t, "--thread", "t-cli-cancel", "--delay", "600"), create(t, "--thread", "t-cli-cancel", "--delay", "700"),
			create(t, "--thread", "t-cli-cancel", "--delay", "800")}
		if r := runCLI(t, env, "", "cancel", ids[0]); r.code != 0 || r.JSON(t)["status"] != "cancelled" {
			t.Errorf("cancel: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		if r := runCLI(t, env, "", "cancel", ids[0]); r.code != 1 || !strings.HasPrefix(r.stderr, "followups: conflict: followup "+ids[0]+" is cancelled") {
			t.Errorf("cancel again: exit %d %q", r.code, r.stderr)
		}
		r := runCLI(t, env, "", "cancel-thread", "t-cli-cancel")
		if got := r.JSON(t); r.code != 0 || num(got["cancelled"]) != 2 {
			t.Errorf("cancel-thread: exit %d %s", r.code, r.stdout)
		}
		if r := runCLI(t, env, "", "cancel-thread", "-o", "table", "t-cli-cancel"); r.code != 0 || r.stdout != "cancelled 0\n" {
			t.Errorf("cancel-thread again: exit %d %q", r.code, r.stdout)
		}
	})

	t.Run("wait for a delivered, a dropped and a re-armed followup", func(t *testing.T) {
		t.Parallel()
		delivered := create(t, "--thread", "t-cli-wait", "--delay", "1")
		if r := runCLI(t, env, "", "wait", "--interval", "100ms", delivered); r.code != 0 || r.JSON(t)["status"] != "delivered" {
			t.Errorf("wait on a delivered followup: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		outage.Down("t-cli-gone")
		dropped := create(t, "--thread", "t-cli-gone", "--delay", "1")
		r := runCLI(t, env, "", "wait", "--interval", "100ms", dropped)
		if r.code != 3 || r.JSON(t)["status"] != "failed_dropped" || !strings.Contains(r.stderr, "settled failed_dropped (thread_not_found: ") {
			t.Errorf("wait on a dropped followup: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		outage.Restore("t-cli-gone")
		r = runCLI(t, env, "", "rearm", dropped, "--delay", "1s")
		re := r.JSON(t)
		if r.code != 0 || re["rearmed_from"] != dropped || re["status"] != "scheduled" {
			t.Fatalf("rearm: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		if r := runCLI(t, env, "", "wait", "--interval", "100ms", "-o", "table", str(re["id"])); r.code != 0 || !strings.Contains(r.stdout, "delivered") ||
			!strings.Contains(r.stdout, "re-arms "+dropped) {
			t.Errorf("wait on the re-armed followup: exit %d %q %s", r.code, r.stdout, r.stderr)
		}
		if r := runCLI(t, env, "", "rearm", delivered); r.code != 1 || !strings.Contains(r.stderr, "conflict: ") {
			t.Errorf("rearm of a delivered followup: exit %d %q", r.code, r.stderr)
		}
		later := create(t, "--thread", "t-cli-wait", "--delay", "3600")
		if r := runCLI(t, env, "", "wait", "--timeout", "300ms", "--interval", "100ms", later); r.code != 4 || r.JSON(t)["status"] != "scheduled" {
			t.Errorf("wait past its timeout: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("errors", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name   string
			env    []string
			args   []string
			code   int
			stderr string
		}{
			{"unknown id", env, []string{"get", "fu_nope"}, 1, "followups: not_found: followup \"fu_nope\" not found\n"},
			{"wrong token", env, []string{"--token", "wrong", "get", "fu_nope"}, 1, "followups: unauthorized: missing or invalid bearer token\n"},
			{"no thread", env, []string{"create", "--prompt", "p", "--delay", "60"}, 1, "followups: invalid_argument (thread_id): thread_id is required\n"},
			{"out of range", env, []string{"create", "--thread", "t", "--prompt", "p", "--delay", "48h"}, 1,
				"followups: out_of_range (delay_seconds): delay_seconds out of range: must be in 1..86400, got 172800\n"},
			{"nothing listening", []string{"FOLLOWUPS_URL=http://127.0.0.1:1"}, []string{"get", "fu_1"}, 1, "followups: Get "},
			{"a bad URL", nil, []string{"--url", "ftp://x", "get", "fu_1"}, 2, "followups: --url \"ftp://x\": want an http or https URL"},
			{"no argument", env, []string{"get"}, 2, "followups: get takes one argument, ID\n"},
			{"an unknown command", env, []string{"schedule"}, 2, "followups: no command \"schedule\"\n"},
		} {
			r := runCLI(t, tc.env, "", tc.args...)
			if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.stderr) || r.stdout != "" {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, stderr %q…", tc.name, r.code, r.stdout, r.stderr, tc.code, tc.stderr)
			}
		}
	})

	t.Run("sigv4", func(t *testing.T) {
		t.Parallel()
		aws := []string{"FOLLOWUPS_URL=" + gw.URL, "AWS_ACCESS_KEY_ID=AKIDCLITEST", "AWS_SECRET_ACCESS_KEY=cli-test-secret", "AWS_REGION=eu-west-1",
			"AWS_CONFIG_FILE=" + filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(t.TempDir(), "none"),
			"AWS_EC2_METADATA_DISABLED=true"}
		r := runCLI(t, aws, "", "--sigv4", "create", "--thread", "team/signed one", "--prompt", "Signed.", "--delay", "600", "--idempotency-key", "signed-1")
		if r.code != 0 || r.JSON(t)["thread_id"] != "team/signed one" {
			t.Fatalf("a signed create: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		if r := runCLI(t, aws, "", "list", "--sigv4", "team/signed one", "--status", "scheduled"); r.code != 0 {
			t.Errorf("a signed list: exit %d %s", r.code, r.stderr)
		}
		if r := runCLI(t, aws, "", "--sigv4", "rearm", "fu_nope"); r.code != 1 || r.stderr != "followups: not_found: followup \"fu_nope\" not found\n" {
			t.Errorf("a signed rearm without a body: exit %d %q", r.code, r.stderr)
		}
		if n := gw.verified.Load(); n != 3 || gw.forged.Load() != 0 {
			t.Errorf("the gateway verified %d signatures and refused %d, want 3 and 0", n, gw.forged.Load())
		}
		wrong := append(aws, "AWS_SECRET_ACCESS_KEY=not-the-secret")
		if r := runCLI(t, wrong, "", "--sigv4", "get", "fu_1"); r.code != 1 ||
			r.stderr != "followups: HTTP 403: The request signature we calculated does not match the signature you provided.\n" {
			t.Errorf("a request signed with the wrong secret: exit %d %q", r.code, r.stderr)
		}
		if r := runCLI(t, []string{"AWS_ACCESS_KEY_ID=AKIDCLITEST", "AWS_SECRET_ACCESS_KEY=s", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"},
			"", "--url", gw.URL, "--sigv4", "get", "fu_1"); r.code != 2 || !strings.HasPrefix(r.stderr, "followups: no AWS region to sign for") {
			t.Errorf("no region: exit %d %q", r.code, r.stderr)
		}
	})

	t.Run("help", func(t *testing.T) {
		t.Parallel()
		r := runCLI(t, env, "", "--help")
		for _, c := range []string{"create", "get ID", "list THREAD", "cancel ID", "cancel-thread THREAD", "rearm ID", "wait ID"} {
			if !strings.Contains(r.stdout, "\n  "+c+" ") {
				t.Errorf("followups --help does not list %q", c)
			}
		}
		if r.code != 0 || strings.Contains(r.stdout, d.token) {
			t.Errorf("followups --help: exit %d, or it shows the token", r.code)
		}
	})
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
