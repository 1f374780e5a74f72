package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/followups/followups/shared/config"
)

// settings are the settings followupd reads, each also a flag.
var settings = append(append([]config.Setting{}, config.Common...), config.MaxReceiveCount, config.APIToken, config.Addr, config.DataDir, config.Workers, config.DebugAddr)

// options is followupd's configuration.
type options struct {
	*config.Config
	Demo bool
}

// flagHelp is returned for -h: usage was printed and that is all.
var flagHelp = flag.ErrHelp

// loadConfig reads flags, then the environment, then defaults, in that
// order of precedence, and checks every value. The error names the setting.
func loadConfig(args []string, getenv func(string) (string, bool), stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("followupd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	values := map[string]*string{}
	for _, s := range settings {
		help := fmt.Sprintf("%s (env %s)", s.Usage, s.Env)
		if s.Default != "" {
			help += fmt.Sprintf(" (default %s)", s.Default)
		}
		values[s.Env] = fs.String(config.FlagName(s.Env), "", help)
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
	lookup := func(env string) (string, bool) {
		if given[config.FlagName(env)] {
			return *values[env], true
		}
		return getenv(env)
	}
	c, err := config.Load(lookup, settings...)
	if err != nil {
		return nil, err
	}
	o := &options{Config: c, Demo: *demo}
	if o.Demo {
		// The demo shows deliveries within seconds; an explicit setting wins.
		if !c.Given[config.MinDelay.Env] {
			c.Limits.MinDelay = time.Second
		}
		if !c.Given[config.RetryBase.Env] {
			c.Retry.Base = 500 * time.Millisecond
		}
		// The demo narrates on stdout; the log adds its warnings (every
		// drop is one) without burying the story.
		if !c.Given[config.LogLevel.Env] {
			c.LogLevel = slog.LevelWarn
		}
		if c.ThreadAPIURL != nil {
			return nil, fmt.Errorf("%s: the demo runs its own thread API; unset it or drop --demo", config.ThreadAPIURL)
		}
		return o, nil
	}
	if c.ThreadAPIURL == nil {
		return nil, fmt.Errorf("%s is required: the base URL of the thread API (or run with --demo)", config.ThreadAPIURL)
	}
	return o, nil
}

// lookupEnv is os.LookupEnv; tests pass their own.
var lookupEnv = os.LookupEnv
