// Command followups-load measures followupd under load on one machine and
// prints figures: how fast it accepts durable creates, how late a burst of
// followups due in the same second reaches the thread API, and what 100,000
// pending followups cost in memory, disk and restart time.
//
//	followups-load all
//	followups-load -creates 50000 -concurrency 128 creates
//	followups-load -repeat 3 burst
//	followups-load -target http://127.0.0.1:8080 -sink-addr 127.0.0.1:9090 burst
//
// By default it starts the followupd binary as a child process on a free
// loopback port with a temporary data directory, and serves a null thread
// API on loopback that answers 201 at once and records every delivery. It
// exits non-zero only when followupd answers an error, loses, duplicates or
// fails to deliver a followup, or cannot be run; a missed speed target is
// printed ("target missed by ...") and does not change the exit status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // a correctness failure, or followupd could not be run
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "followups-load: %v\n", err)
		return exitUsage
	}
	o.commandLine = shellQuote(args)
	r, err := newRunner(o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "followups-load: %v\n", err)
		return exitFailed
	}
	defer r.close()
	if !r.run(ctx) {
		return exitFailed
	}
	return exitOK
}
