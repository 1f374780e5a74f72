package awse2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/followups/followups/e2e/aws/harness"
)

// setup is shared by every test: the emulator and the bootstraps, built
// once for the test binary.
var setup *harness.Setup

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	setup = harness.Prepare(ctx)
	cancel()
	code := m.Run()
	if testing.Verbose() && setup.Bootstraps != nil {
		for _, fn := range harness.Functions {
			if lo, med, hi, n := setup.Report.ColdStartSummary(fn); n > 0 {
				fmt.Printf("cold start %-8s over %2d environments: min %6.1f ms, median %6.1f ms, max %6.1f ms\n", fn, n, lo, med, hi)
			}
		}
	}
	if path := os.Getenv(harness.ReportEnv); path != "" && setup.Bootstraps != nil {
		if err := setup.Report.Write(path); err != nil {
			fmt.Fprintf(os.Stderr, "write %s: %v\n", path, err)
			code = 1
		}
	}
	setup.Close()
	os.Exit(code)
}
