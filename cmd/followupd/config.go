package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/telemetry"
)

// config is every setting of DESIGN §6 that followupd takes, validated.
type config struct {
	ThreadAPIURL    *url.URL // nil: none configured
	ThreadAPIToken  string
	SigningSecret   string
	Limits          followup.Limits
	Retry           followup.RetryPolicy
	DispatchTimeout time.Duration
	APIToken        string
	Addr            string
	DataDir         string
	Retention       time.Duration
	LogLevel        slog.Level
	Workers         int
	Demo            bool
	// dataDirGiven is true when FOLLOWUPS_DATA_DIR was set: the demo then
	// keeps its data there instead of in a temporary directory.
	dataDirGiven bool
}

// defaultDataDir is FOLLOWUPS_DATA_DIR's default.
const defaultDataDir = "./followups-data"

// flagHelp is returned for -h: usage was printed and that is all.
var flagHelp = flag.ErrHelp

// setting is one configuration value: an environment variable and the flag
// that overrides it.
type setting struct {
	env, flag, def, usage string
	// parse checks and stores the value; it is called for every setting,
	// with the default when neither the flag nor the variable is given.
	parse func(c *config, v string) error
}

// flagName derives a flag from its variable as DESIGN §6 says: lower case,
// without FOLLOWUPS_, "-" for "_".
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(env, "FOLLOWUPS_")), "_", "-")
}

func settings() []setting {
	return []setting{
		{env: "THREAD_API_URL", usage: "base URL of the thread API (required unless --demo)", parse: func(c *config, v string) error {
			if v == "" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				return fmt.Errorf("%q is not an http(s) base URL such as https://threads.example.com/api", v)
			}
			c.ThreadAPIURL = u
			return nil
		}},
		{env: "THREAD_API_TOKEN", usage: "bearer token sent to the thread API", parse: func(c *config, v string) error {
			c.ThreadAPIToken = v
			return nil
		}},
		{env: "FOLLOWUPS_SIGNING_SECRET", usage: "HMAC secret for X-Followup-Signature", parse: func(c *config, v string) error {
			c.SigningSecret = v
			return nil
		}},
		{env: "FOLLOWUPS_MIN_DELAY", def: "60s", usage: "shortest delay a followup may ask for", parse: func(c *config, v string) error {
			return duration(v, time.Second, followup.MaxDelayLimit, &c.Limits.MinDelay)
		}},
		{env: "FOLLOWUPS_MAX_DELAY", def: "24h", usage: "longest delay a followup may ask for (at most 8760h)", parse: func(c *config, v string) error {
			return duration(v, time.Second, followup.MaxDelayLimit, &c.Limits.MaxDelay)
		}},
		{env: "FOLLOWUPS_MAX_RETRIES", def: "3", usage: "retries after the first attempt", parse: func(c *config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 {
				return fmt.Errorf("%q is not a whole number from 0 to 100", v)
			}
			c.Retry.MaxRetries = n
			return nil
		}},
		{env: "FOLLOWUPS_RETRY_BASE", def: "2s", usage: "wait before the first retry", parse: func(c *config, v string) error {
			return duration(v, time.Millisecond, followup.MaxRetryAfter, &c.Retry.Base)
		}},
		{env: "FOLLOWUPS_RETRY_MAX", def: "5m", usage: "longest wait between retries (a Retry-After may exceed it)", parse: func(c *config, v string) error {
			return duration(v, time.Millisecond, followup.MaxRetryAfter, &c.Retry.Max)
		}},
		{env: "FOLLOWUPS_DISPATCH_TIMEOUT", def: "10s", usage: "timeout of one attempt", parse: func(c *config, v string) error {
			return duration(v, time.Millisecond, 15*time.Minute, &c.DispatchTimeout)
		}},
		{env: "FOLLOWUPS_API_TOKEN", usage: "bearer token required on every API route", parse: func(c *config, v string) error {
			c.APIToken = v
			return nil
		}},
		{env: "FOLLOWUPS_ADDR", def: "127.0.0.1:8080", usage: "address to listen on", parse: func(c *config, v string) error {
			if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
				return fmt.Errorf("%q is not a host:port address", v)
			}
			c.Addr = v
			return nil
		}},
		{env: "FOLLOWUPS_DATA_DIR", def: defaultDataDir, usage: "directory of the durable store", parse: func(c *config, v string) error {
			c.DataDir = v
			return nil
		}},
		{env: "FOLLOWUPS_RETENTION", def: "168h", usage: "how long settled followups are kept", parse: func(c *config, v string) error {
			return duration(v, time.Minute, 100*365*24*time.Hour, &c.Retention)
		}},
		{env: "FOLLOWUPS_LOG_LEVEL", def: "info", usage: "debug, info, warn or error", parse: func(c *config, v string) error {
			l, err := telemetry.ParseLevel(v)
			c.LogLevel = l
			return err
		}},
		{env: "FOLLOWUPS_WORKERS", def: "256", usage: "concurrent dispatch attempts", parse: func(c *config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 4096 {
				return fmt.Errorf("%q is not a whole number from 1 to 4096", v)
			}
			c.Workers = n
			return nil
		}},
	}
}

func duration(v string, lo, hi time.Duration, dst *time.Duration) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a Go duration such as 90s, 15m or 2h", v)
	}
	if d < lo || d > hi {
		return fmt.Errorf("%s is out of range: must be from %s to %s", v, lo, hi)
	}
	*dst = d
	return nil
}

// loadConfig reads flags, then the environment, then defaults, in that
// order of precedence, and checks every value. The error names the setting.
func loadConfig(args []string, getenv func(string) (string, bool), stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("followupd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := settings()
	values := make([]*string, len(all))
	for i, s := range all {
		help := fmt.Sprintf("%s (env %s)", s.usage, s.env)
		if s.def != "" {
			help += fmt.Sprintf(" (default %s)", s.def)
		}
		values[i] = fs.String(flagName(s.env), "", help)
	}
	demo := fs.Bool("demo", false, "run a demo: a built-in thread API, a few followups, and a short minimum delay")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: followupd [flags]\n\nEvery flag may also be given as its environment variable; a flag wins.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	c := &config{Demo: *demo}
	explicit := map[string]bool{}
	for i, s := range all {
		name := flagName(s.env)
		v, from := s.def, "default"
		if env, ok := getenv(s.env); ok {
			v, from = env, "env"
		}
		if given[name] {
			v, from = *values[i], "flag"
		}
		if from != "default" {
			explicit[s.env] = true
			if v == "" && s.def != "" {
				return nil, fmt.Errorf("%s (--%s) is set but empty", s.env, name)
			}
		}
		if err := s.parse(c, v); err != nil {
			return nil, fmt.Errorf("%s (--%s): %w", s.env, name, err)
		}
	}
	c.dataDirGiven = explicit["FOLLOWUPS_DATA_DIR"]
	if c.Demo {
		// The demo shows deliveries within seconds; an explicit setting wins.
		if !explicit["FOLLOWUPS_MIN_DELAY"] {
			c.Limits.MinDelay = time.Second
		}
		if !explicit["FOLLOWUPS_RETRY_BASE"] {
			c.Retry.Base = 500 * time.Millisecond
		}
		if c.ThreadAPIURL != nil {
			return nil, fmt.Errorf("THREAD_API_URL (--thread-api-url): the demo runs its own thread API; unset it or drop --demo")
		}
	}
	switch {
	case c.Limits.MinDelay > c.Limits.MaxDelay:
		return nil, fmt.Errorf("FOLLOWUPS_MIN_DELAY (--min-delay) %s is above FOLLOWUPS_MAX_DELAY (--max-delay) %s", c.Limits.MinDelay, c.Limits.MaxDelay)
	case c.Retry.Base > c.Retry.Max:
		return nil, fmt.Errorf("FOLLOWUPS_RETRY_BASE (--retry-base) %s is above FOLLOWUPS_RETRY_MAX (--retry-max) %s", c.Retry.Base, c.Retry.Max)
	case c.ThreadAPIURL == nil && !c.Demo:
		return nil, fmt.Errorf("THREAD_API_URL (--thread-api-url) is required: the base URL of the thread API (or run with --demo)")
	case c.DataDir == "":
		return nil, fmt.Errorf("FOLLOWUPS_DATA_DIR (--data-dir) is empty")
	}
	return c, nil
}

// lookupEnv is os.LookupEnv; tests pass their own.
var lookupEnv = os.LookupEnv
