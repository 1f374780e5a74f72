package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/followups/followups/shared/followup"
)

// command is one subcommand.
type command struct {
	name string
	// args name the positional arguments.
	args    []string
	summary string
	// about is the help's description; examples follow it.
	about    string
	examples []string
	// setup defines the command's own flags on fs and returns what runs it.
	setup func(fs *flag.FlagSet) runner
	run   runner
}

type runner func(ctx context.Context, c *client, e env, args []string) int

var commands = []command{
	{
		name: "create", summary: "schedule a followup",
		about: "Schedules a followup of a thread: when it is due, the thread receives a synthetic user turn with the prompt.\n" +
			"Give exactly one of --delay and --at; the delay must lie within the deployment's bounds (60s to 24h by default).\n" +
			"Prints the new followup (with replaced_previous when it replaced its run's pending one).",
		examples: []string{
			`followups create --thread t-123 --prompt "Check whether the nightly build finished." --delay 1h --reason "waiting on CI"`,
			`followups create --thread t-123 --prompt "Good morning check-in." --at 2026-12-01T09:00:00 --timezone Europe/Paris`,
			`echo "Ask how the deploy went." | followups create --thread t-123 --prompt - --delay 900 --run run-42`,
		},
		setup: setupCreate,
	},
	{
		name: "get", args: []string{"ID"}, summary: "show a followup",
		about:    "Prints the followup with its attempts (runs), last_error and drop_reason.",
		examples: []string{"followups get fu_06h1vea9wwnbf72mdcw07nyvvw", "followups get fu_06h1vea9wwnbf72mdcw07nyvvw -o table"},
		setup:    func(*flag.FlagSet) runner { return runGet },
	},
	{
		name: "list", args: []string{"THREAD"}, summary: "list a thread's followups",
		about: "Lists the thread's followups by run_at, a page at a time; --all follows next_cursor to the end.\n" +
			"THREAD is the thread id as is (the command escapes it).",
		examples: []string{"followups list t-123 --status scheduled", "followups list 'team/a b' --all -o table"},
		setup:    setupList,
	},
	{
		name: "cancel", args: []string{"ID"}, summary: "cancel a scheduled followup",
		about:    "Cancels a scheduled followup, which then never fires. One that is dispatching or settled is a conflict.",
		examples: []string{"followups cancel fu_06h1vea9wwnbf72mdcw07nyvvw"},
		setup:    func(*flag.FlagSet) runner { return runCancel },
	},
	{
		name: "cancel-thread", args: []string{"THREAD"}, summary: "cancel every scheduled followup of a thread",
		about:    "Cancels every scheduled followup of the thread (one that was deleted or stopped) and prints how many, and which.",
		examples: []string{"followups cancel-thread t-123"},
		setup:    func(*flag.FlagSet) runner { return runCancelThread },
	},
	{
		name: "rearm", args: []string{"ID"}, summary: "schedule a new followup from a dropped one",
		about: "Schedules a new followup from a failed_dropped one, once the cause is fixed (a thread API that was down,\n" +
			"a token that was wrong): the same thread, prompt, reason, run and metadata, a fresh attempt budget, and\n" +
			"rearmed_from set. Without --delay or --at it is due after the minimum delay. Only a failed_dropped followup\n" +
			"can be re-armed; the dropped one is unchanged.",
		examples: []string{"followups rearm fu_06h1vea9wwnbf72mdcw07nyvvw", "followups rearm fu_06h1vea9wwnbf72mdcw07nyvvw --delay 10m --idempotency-key retry-1"},
		setup:    setupRearm,
	},
	{
		name: "wait", args: []string{"ID"}, summary: "wait until a followup settles; exit 0 when delivered",
		about: "Polls the followup until it is delivered, failed_dropped or cancelled, then prints it.\n" +
			"Exit status: 0 delivered, 3 failed_dropped or cancelled, 4 not settled within --timeout, 1 the API refused.\n" +
			"A 5xx or a network error while polling is retried until --timeout.",
		examples: []string{"followups wait fu_06h1vea9wwnbf72mdcw07nyvvw --timeout 2h && echo delivered"},
		setup:    setupWait,
	},
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return &c
		}
	}
	return nil
}

// flags returns the command's flag set, with the global flags in g, and
// readies c.run.
func (c *command) flags(g *globals) *flag.FlagSet {
	fs := flag.NewFlagSet("followups "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.run = c.setup(fs)
	g.register(fs)
	return fs
}

func (c *command) argsText() string {
	switch len(c.args) {
	case 0:
		return "no arguments"
	case 1:
		return "one argument, " + c.args[0]
	}
	return strings.Join(c.args, " ")
}

func (c *command) printHelp(w io.Writer) {
	fmt.Fprintf(w, "followups %s: %s\n\nUsage:\n  followups %s [flags]", c.name, c.summary, c.name)
	for _, a := range c.args {
		fmt.Fprintf(w, " %s", a)
	}
	fmt.Fprintf(w, "\n\n%s\n", c.about)
	own := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.setup(own)
	if hasFlags(own) {
		fmt.Fprintln(w, "\nFlags:")
		own.SetOutput(w)
		own.PrintDefaults()
	}
	fmt.Fprintln(w, "\nGlobal flags (before or after the command):")
	printGlobals(w)
	fmt.Fprintln(w, "\nExamples:")
	for _, ex := range c.examples {
		fmt.Fprintf(w, "  %s\n", ex)
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

func printGlobals(w io.Writer) {
	fs := flag.NewFlagSet("followups", flag.ContinueOnError)
	(&globals{}).register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `followups: operate Followups from the shell

Usage:
  followups [flags] <command> [flags] [arguments]
  followups help <command>

Commands:
`)
	for _, c := range commands {
		name := c.name
		if len(c.args) > 0 {
			name += " " + strings.Join(c.args, " ")
		}
		fmt.Fprintf(w, "  %-22s %s\n", name, c.summary)
	}
	fmt.Fprint(w, `
Flags (before or after the command):
`)
	printGlobals(w)
	fmt.Fprint(w, `
The API: followupd at its --addr (a bearer token when FOLLOWUPS_API_TOKEN is set there), or the
HTTP API on AWS (the stack's ApiUrl output; IAM authorization, signed with --sigv4).

Output: the API's JSON by default; -o table for people. An error prints the API's code and message
on standard error.

Exit status: 0 success; 1 the API refused the request or it could not be made; 2 bad usage;
wait: 3 settled but not delivered, 4 not settled in time.

Examples:
  export FOLLOWUPS_URL=http://127.0.0.1:8080 FOLLOWUPS_API_TOKEN=change-me
  id=$(followups create --thread t-123 --prompt "Check the build." --delay 1h | jq -r .id)
  followups wait "$id" --timeout 2h
  followups --url https://abc123.execute-api.eu-west-1.amazonaws.com list t-123 -o table
`)
}

func setupCreate(fs *flag.FlagSet) runner {
	thread := fs.String("thread", "", "the thread `ID` to post into (required)")
	prompt := fs.String("prompt", "", "the `text` of the synthetic user turn (required; - reads it from standard input)")
	w := whenFlags(fs)
	reason := fs.String("reason", "", "why it is scheduled, shown to the thread")
	run := fs.String("run", "", "the agent run `ID` (originating_run_id): a later followup of the same run replaces this one")
	metadata := fs.String("metadata", "", "a JSON `object` passed through to the thread")
	key := fs.String("idempotency-key", "", "makes a retried create safe: the same `key` and body return the original")
	return func(ctx context.Context, c *client, e env, _ []string) int {
		body := map[string]any{}
		set := func(name, v string) {
			if v != "" {
				body[name] = v
			}
		}
		text := *prompt
		if text == "-" {
			b, err := io.ReadAll(e.stdin)
			if err != nil {
				return fail(e, fmt.Errorf("read the prompt: %w", err))
			}
			text = strings.TrimSuffix(string(b), "\n")
		}
		set("thread_id", *thread)
		set("prompt", text)
		set("reason", *reason)
		set("originating_run_id", *run)
		if *metadata != "" {
			if !json.Valid([]byte(*metadata)) {
				return usageError(e.stderr, "create", fmt.Errorf("--metadata %q is not JSON", *metadata))
			}
			body["metadata"] = json.RawMessage(*metadata)
		}
		if err := w.into(body); err != nil {
			return usageError(e.stderr, "create", err)
		}
		return c.print(c.send(ctx, http.MethodPost, "/followups", body, *key))
	}
}

func setupRearm(fs *flag.FlagSet) runner {
	w := whenFlags(fs)
	key := fs.String("idempotency-key", "", "makes a retried re-arm safe: the same `key` and body return the original")
	return func(ctx context.Context, c *client, e env, args []string) int {
		body := map[string]any{}
		if err := w.into(body); err != nil {
			return usageError(e.stderr, "rearm", err)
		}
		if len(body) == 0 {
			body = nil // no body: after the minimum delay
		}
		return c.print(c.send(ctx, http.MethodPost, "/followups/"+url.PathEscape(args[0])+"/rearm", body, *key))
	}
}

// when are the flags that say when a followup is due.
type when struct{ delay, at, zone *string }

func whenFlags(fs *flag.FlagSet) when {
	return when{
		delay: fs.String("delay", "", "when, from now: a `duration` such as 90s or 1h30m, or seconds (3600)"),
		at:    fs.String("at", "", "when: an RFC 3339 `time` (2026-12-01T09:00:00Z), or a wall-clock time with --timezone"),
		zone:  fs.String("timezone", "", "the IANA time `zone` of a wall-clock --at, such as Europe/Paris"),
	}
}

// into adds delay_seconds, run_at and timezone to body, as given.
func (w when) into(body map[string]any) error {
	if *w.delay != "" {
		n, err := parseDelay(*w.delay)
		if err != nil {
			return err
		}
		body["delay_seconds"] = n
	}
	if *w.at != "" {
		body["run_at"] = *w.at
	}
	if *w.zone != "" {
		body["timezone"] = *w.zone
	}
	return nil
}

// parseDelay reads seconds (3600) or a Go duration of whole seconds (1h).
func parseDelay(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("--delay %q: want seconds (3600) or a duration (1h30m)", s)
	case d%time.Second != 0:
		return 0, fmt.Errorf("--delay %q: want whole seconds", s)
	}
	return int64(d / time.Second), nil
}

func runGet(ctx context.Context, c *client, e env, args []string) int {
	return c.print(c.do(ctx, http.MethodGet, "/followups/"+url.PathEscape(args[0]), nil, nil))
}

func runCancel(ctx context.Context, c *client, e env, args []string) int {
	return c.print(c.do(ctx, http.MethodDelete, "/followups/"+url.PathEscape(args[0]), nil, nil))
}

func runCancelThread(ctx context.Context, c *client, e env, args []string) int {
	return c.print(c.do(ctx, http.MethodDelete, "/threads/"+url.PathEscape(args[0])+"/followups", nil, nil))
}

func setupList(fs *flag.FlagSet) runner {
	status := fs.String("status", "", "only followups in this `status`: scheduled, dispatching, delivered, failed_dropped or cancelled")
	limit := fs.Int("limit", 0, "followups per page, 1 to 100 (default 50)")
	cursor := fs.String("cursor", "", "the next_cursor of the previous page")
	all := fs.Bool("all", false, "follow next_cursor to the last page and print every followup")
	return func(ctx context.Context, c *client, e env, args []string) int {
		q := url.Values{}
		if *status != "" {
			q.Set("status", *status)
		}
		if *limit != 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		if *cursor != "" {
			q.Set("cursor", *cursor)
		}
		path := "/threads/" + url.PathEscape(args[0]) + "/followups"
		var every []json.RawMessage
		for {
			target := path
			if len(q) > 0 {
				target += "?" + q.Encode()
			}
			r, err := c.do(ctx, http.MethodGet, target, nil, nil)
			if err != nil || !*all {
				return c.print(r, err)
			}
			var page struct {
				Followups  []json.RawMessage `json:"followups"`
				NextCursor string            `json:"next_cursor"`
			}
			if err := json.Unmarshal(r.body, &page); err != nil {
				return fail(e, fmt.Errorf("the API's answer is not a page of followups: %w", err))
			}
			every = append(every, page.Followups...)
			if page.NextCursor == "" {
				b, _ := json.Marshal(map[string]any{"followups": append([]json.RawMessage{}, every...)})
				return c.print(&reply{status: r.status, body: b}, nil)
			}
			q.Set("cursor", page.NextCursor)
		}
	}
}

func setupWait(fs *flag.FlagSet) runner {
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait before giving up (exit status 4)")
	interval := fs.Duration("interval", 2*time.Second, "how often to look")
	return func(ctx context.Context, c *client, e env, args []string) int {
		if *timeout <= 0 || *interval <= 0 {
			return usageError(e.stderr, "wait", errors.New("--timeout and --interval must be positive"))
		}
		deadline := time.Now().Add(*timeout)
		path := "/followups/" + url.PathEscape(args[0])
		var last *reply
		for {
			r, err := c.do(ctx, http.MethodGet, path, nil, nil)
			switch {
			case err == nil:
				last = r
				var f followup.Followup
				if err := json.Unmarshal(r.body, &f); err != nil {
					return fail(e, fmt.Errorf("the API's answer is not a followup: %w", err))
				}
				if f.Status.Terminal() {
					if code := c.print(r, nil); code != exitOK || f.Status == followup.StatusDelivered {
						return code
					}
					fmt.Fprintf(e.stderr, "followups: %s settled %s%s\n", f.ID, f.Status, dropText(&f))
					return exitNotDelivered
				}
			case !transient(err):
				return fail(e, err)
			}
			if time.Now().Add(*interval).After(deadline) {
				if last != nil {
					c.print(last, nil)
				}
				fmt.Fprintf(e.stderr, "followups: %s did not settle within %s\n", args[0], *timeout)
				return exitTimeout
			}
			select {
			case <-ctx.Done():
				return fail(e, ctx.Err())
			case <-time.After(*interval):
			}
		}
	}
}

func dropText(f *followup.Followup) string {
	if f.DropReason == "" {
		return ""
	}
	return fmt.Sprintf(" (%s: %s)", f.DropReason, f.LastError)
}

// transient reports whether polling may go on after err: a network error,
// or the API or its gateway failing for now.
func transient(err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status >= 500
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}

// send sends body as JSON (nil sends none), with an Idempotency-Key when
// key is set.
func (c *client) send(ctx context.Context, method, path string, body map[string]any, key string) (*reply, error) {
	header := http.Header{}
	if key != "" {
		header.Set("Idempotency-Key", key)
	}
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body) // strings, numbers and JSON always encode
	}
	return c.do(ctx, method, path, raw, header)
}

// fail prints err and returns the failure status.
func fail(e env, err error) int {
	fmt.Fprintf(e.stderr, "followups: %v\n", err)
	return exitFailed
}
