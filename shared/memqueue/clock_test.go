package memqueue_test

import (
	"time"

	"github.com/followups/followups/shared/clocktest"
	"github.com/followups/followups/shared/memqueue"
)

// clockStart is where every manual clock starts.
var clockStart = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type manualClock = clocktest.Clock

var _ memqueue.Clock = (*manualClock)(nil)

func newManualClock() *manualClock { return clocktest.New(clockStart) }
