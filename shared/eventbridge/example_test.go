package eventbridge_test

import (
	"fmt"
	"time"

	"github.com/followups/followups/shared/eventbridge"
)

// A followup due a quarter second past a whole second is scheduled for the
// next whole second: never early.
func ExampleAt() {
	due := time.Date(2030, 1, 2, 3, 4, 5, 250_000_000, time.UTC)
	fmt.Println(eventbridge.At(due))
	at, _ := eventbridge.ParseAt(eventbridge.At(due))
	fmt.Println(at.Sub(due))
	// Output:
	// at(2030-01-02T03:04:06)
	// 750ms
}
