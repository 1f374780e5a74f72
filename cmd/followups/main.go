// Command followups operates Followups from the shell: it creates, reads,
// lists, cancels and re-arms followups, and waits for one to settle,
// against followupd (a bearer token) or the HTTP API on AWS (IAM, with an
// AWS Signature Version 4). It prints the API's JSON, or a table for people.
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

// The exit statuses.
const (
	exitOK = 0
	// exitFailed: the API refused the request, or it could not be made.
	exitFailed = 1
	// exitUsage: the command line is wrong.
	exitUsage = 2
	// exitNotDelivered: wait saw the followup settle failed_dropped or
	// cancelled.
	exitNotDelivered = 3
	// exitTimeout: wait gave up before the followup settled.
	exitTimeout = 4
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// env is what the command reads from its environment.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
}

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr, lookup: lookup}
	var g globals
	top := flag.NewFlagSet("followups", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.register(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return exitOK
		}
		return usageError(stderr, "", err)
	}
	rest := top.Args()
	if len(rest) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		if len(rest) == 0 {
			printUsage(stdout)
			return exitOK
		}
		if c := lookupCommand(rest[0]); c != nil {
			c.printHelp(stdout)
			return exitOK
		}
		return usageError(stderr, "", fmt.Errorf("no command %q", rest[0]))
	}
	c := lookupCommand(name)
	if c == nil {
		return usageError(stderr, "", fmt.Errorf("no command %q", name))
	}
	var after globals
	fs := c.flags(&after)
	positional, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(stdout)
		return exitOK
	}
	g = g.overlay(after)
	if err == nil && len(positional) != len(c.args) {
		err = fmt.Errorf("%s takes %s", c.name, c.argsText())
	}
	if err != nil {
		return usageError(stderr, c.name, err)
	}
	cl, err := g.client(ctx, e)
	if err != nil {
		return usageError(stderr, c.name, err)
	}
	return c.run(ctx, cl, e, positional)
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments, which it returns; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func usageError(stderr io.Writer, command string, err error) int {
	see := "followups --help"
	if command != "" {
		see = "followups " + command + " --help"
	}
	fmt.Fprintf(stderr, "followups: %v\n(see %s)\n", err, see)
	return exitUsage
}
