// Command followups-compare runs one workload against followupd, asynq on
// Redis (called in-process, and behind a thin HTTP front) and River on
// PostgreSQL, in interleaved rounds, and prints the medians side by side
// and followupd's ratios to each.
//
//	followups-compare                       # 3 rounds of 10,000 followups
//	followups-compare -rounds 5 -n 20000
//	followups-compare -systems followupd,river
//
// It builds followupd from the repository, starts its own Redis and
// PostgreSQL on loopback in temporary directories (bench/setup.sh installs
// them), serves a null thread API on loopback, and stops everything it
// started at the end, on failure and on Ctrl-C. It exits 1 when a create
// fails or a followup is delivered twice or not at all, 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The comparison starts its own binary again in two roles.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case roleDriver:
			os.Exit(runDriver(ctx, os.Args[2:]))
		case roleFront:
			os.Exit(runFront(ctx, os.Args[2:]))
		}
	}
	os.Exit(runCompare(ctx, os.Args))
}

// roleArgs is the command line, after the binary, that starts a role
// with its settings.
func roleArgs(role string, settings any) []string {
	b, err := json.Marshal(settings)
	if err != nil {
		panic(err) // plain structs of strings and numbers
	}
	return []string{role, string(b)}
}

// roleSettings decodes a role's settings from its command line.
func roleSettings(args []string, settings any) error {
	if len(args) != 1 {
		return fmt.Errorf("want one argument, the settings as JSON; got %d", len(args))
	}
	return json.Unmarshal([]byte(args[0]), settings)
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // a correctness failure, or a system could not be run
	exitUsage  = 2
)

func runCompare(ctx context.Context, args []string) int {
	o, err := parseFlags(args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "followups-compare: %v\n", err)
		return exitUsage
	}
	o.commandLine = commandLine(args)
	c, err := newComparison(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "followups-compare: %v\n", err)
		if c != nil {
			c.close()
		}
		return exitFailed
	}
	ok := c.run(ctx)
	c.close()
	if !ok {
		return exitFailed
	}
	return exitOK
}
