package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// options is the command line.
type options struct {
	scenario    string
	followupd   string
	target      string
	apiToken    string
	sinkAddr    string
	creates     int
	warmup      int
	concurrency int
	burst       int
	burstLead   time.Duration
	pending     int
	repeat      int
	timeout     time.Duration
	idempotency bool
	keep        bool
	childEnv    envList
	commandLine string
	// profile, when set, is where CPU profiles of the child go;
	// profileFor is how long each one samples.
	profile    string
	profileFor time.Duration
	// abuseClients and abuseFor size the abuse scenario.
	abuseClients int
	abuseFor     time.Duration
	abusePause   time.Duration
}

// scenarioNames are the scenarios in the order "all" runs them.
var scenarioNames = []string{"creates", "burst", "pending", "abuse"}

const usageHead = `Usage: followups-load [flags] {creates|burst|pending|abuse|all}

Measures followupd on this machine and prints figures. By default it starts
the followupd binary (-followupd) as a child process on a free loopback port
with its own temporary data directory and FOLLOWUPS_MIN_DELAY=1s, and runs a
null thread API on loopback (answering 201 at once, recording for each
followup id when it arrived and how many times) that the child dispatches
to. Every scenario run gets a fresh child. All traffic stays on loopback.

Scenarios:
  creates  -creates N creates from -concurrency C keep-alive clients, due in
           23 h so nothing fires: creates/s and latency p50/p99/max
           (targets: at least 5,000 creates/s, each durable before its
           201, at most 50 µs of followupd's CPU per create).
  burst    -burst N followups with one run_at a few seconds ahead, all due
           in the same second; waits until every one is delivered to the
           null thread API: deliveries/s, lateness p50/p99/max (arrival
           minus run_at; target p99 at most 300 ms), followupd's CPU per
           delivery (target at most 60 µs), duplicates and missing
           (both must be 0), and the status of every record (delivered,
           one attempt).
  pending  creates -pending N followups due in 23 h, then followupd's peak
           RSS (VmHWM; target at most 128 MiB) and store bytes per followup;
           then SIGTERM and a restart on the same data directory: time from
           process start until /healthz answers and a create is accepted
           (target at most 2 s), and until the timers are rebuilt.
  abuse    for each kind of bad request (deep: metadata nested 6,000
           levels; huge: a 10 MB body; garbage: 32 KiB of random bytes;
           trickle: a 60,000-byte body sent a byte every 100 ms; idle: a
           connection that sends nothing), a fresh followupd takes
           -abuse-clients of them at once for -abuse-for (each client one
           request at a time, -abuse-pause apart) while 8 clients
           make valid creates: followupd's peak RSS (target at most
           256 MiB), the valid creates' latency (target p99 at most
           100 ms), and the store holds exactly the valid creates.
  all      the four, in that order.

With -target, the scenarios run against a followupd that is already running
on loopback: nothing is started, restarted or measured in the process, and a
burst needs that followupd to dispatch to the null thread API at -sink-addr
(THREAD_API_URL=http://<sink-addr>) with FOLLOWUPS_MIN_DELAY=1s.

Exit status: 0 when every create was accepted and every due followup was
delivered exactly once; 1 on a correctness failure (an error answer, a
duplicate or missing delivery, a record not delivered, a followup lost
across the restart, an ERROR logged) or when followupd could not be run;
2 on bad usage. A missed speed target prints "target missed by ..." and does
not change the exit status.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("followups-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.followupd, "followupd", "bin/followupd", "path of the followupd binary to start")
	fs.StringVar(&o.target, "target", "", "base URL of a followupd already running on loopback (e.g. http://127.0.0.1:8080); nothing is started")
	fs.StringVar(&o.apiToken, "api-token", "", "bearer token for the API, when the followupd given by -target requires one")
	fs.StringVar(&o.sinkAddr, "sink-addr", "127.0.0.1:0", "loopback address of the null thread API (port 0 picks a free one)")
	fs.IntVar(&o.creates, "creates", 20_000, "creates measured by the creates scenario")
	fs.IntVar(&o.warmup, "warmup", 500, "creates made and not counted before the creates scenario measures")
	fs.IntVar(&o.concurrency, "concurrency", 64, "concurrent HTTP clients (keep-alive connections) making creates")
	fs.IntVar(&o.burst, "burst", 10_000, "followups due in the same second in the burst scenario")
	fs.DurationVar(&o.burstLead, "burst-lead", 0, "how far ahead of the burst's start its run_at lies; 0 means 3s + 1s per 1,000 followups")
	fs.IntVar(&o.pending, "pending", 100_000, "pending followups created by the pending scenario")
	fs.IntVar(&o.abuseClients, "abuse-clients", 2000, "bad clients at once in the abuse scenario, per kind")
	fs.DurationVar(&o.abuseFor, "abuse-for", 10*time.Second, "how long each kind of bad request runs in the abuse scenario")
	fs.DurationVar(&o.abusePause, "abuse-pause", time.Second, "the pause of each bad client between an answer and its next request (0: a flood, limited by this machine's CPU)")
	fs.IntVar(&o.repeat, "repeat", 1, "run each scenario this many times and print the spread of the figures")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "upper bound on one scenario run")
	fs.BoolVar(&o.idempotency, "idempotency-keys", false, "send a distinct Idempotency-Key with every create")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data directories and followupd logs)")
	fs.StringVar(&o.profile, "profile", "", "`DIR` to write a CPU profile of followupd into, per measured span (the creates, the burst's deliveries), from FOLLOWUPS_DEBUG_ADDR")
	fs.DurationVar(&o.profileFor, "profile-for", 2*time.Second, "how long each -profile samples, from the start of the span (whole seconds)")
	fs.Var(&o.childEnv, "child-env", "`KEY=VALUE` added to the child's environment (repeatable), e.g. FOLLOWUPS_WORKERS=1000, FOLLOWUPS_LOG_LEVEL=warn or GOGC=50; FOLLOWUPS_ADDR and FOLLOWUPS_DATA_DIR are the command's")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch fs.NArg() {
	case 0:
		return nil, fmt.Errorf("name a scenario: creates, burst, pending, abuse or all (-h for help)")
	case 1:
	default:
		return nil, fmt.Errorf("one scenario at a time, got %q", fs.Args())
	}
	o.scenario = fs.Arg(0)
	if o.scenario != "all" && !slices.Contains(scenarioNames, o.scenario) {
		return nil, fmt.Errorf("unknown scenario %q: want creates, burst, pending, abuse or all", o.scenario)
	}
	for name, v := range map[string]int{"creates": o.creates, "concurrency": o.concurrency, "burst": o.burst, "pending": o.pending, "repeat": o.repeat} {
		if v < 1 {
			return nil, fmt.Errorf("-%s %d: must be at least 1", name, v)
		}
	}
	switch {
	case o.warmup < 0:
		return nil, fmt.Errorf("-warmup %d: must not be negative", o.warmup)
	case o.burstLead < 0:
		return nil, fmt.Errorf("-burst-lead %s: must not be negative", o.burstLead)
	case o.timeout <= 0:
		return nil, fmt.Errorf("-timeout %s: must be positive", o.timeout)
	case o.profileFor < time.Second || o.profileFor%time.Second != 0:
		return nil, fmt.Errorf("-profile-for %s: must be whole seconds, at least 1s", o.profileFor)
	case o.profile != "" && o.target != "":
		return nil, fmt.Errorf("-profile needs a child followupd; it does not work with -target")
	}
	if err := checkLoopback("-sink-addr", o.sinkAddr); err != nil {
		return nil, err
	}
	if o.target != "" {
		u, err := url.Parse(o.target)
		if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("-target %q: want http://host:port", o.target)
		}
		if err := checkLoopback("-target", u.Host); err != nil {
			return nil, err
		}
		o.target = "http://" + u.Host
	}
	return o, nil
}

// checkLoopback refuses an address that is not on this machine's loopback:
// load traffic never leaves the machine.
func checkLoopback(name, hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%s %q: want host:port", name, hostport)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s %q: the host must be a loopback address such as 127.0.0.1", name, hostport)
	}
	return nil
}

// envList is a repeatable KEY=VALUE flag.
type envList []string

func (e *envList) String() string { return strings.Join(*e, " ") }

func (e *envList) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*e = append(*e, v)
	return nil
}

// shellQuote writes args as a command line that a shell reads back the same.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,@+") == "" {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
