package telemetry_test

import (
	"os"
	"time"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/telemetry"
)

func ExampleNewEMF() {
	clock := fixedClock{time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)}
	metrics := telemetry.NewEMF(os.Stdout, telemetry.DefaultNamespace, clock)

	f := &followup.Followup{ID: "fu_01", ThreadID: "th_01", Status: followup.StatusFailedDropped,
		DropReason: followup.DropThreadNotFound, Attempts: 1}
	metrics.Settled(f, 0)
	// Output:
	// {"_aws":{"Timestamp":1904281689000,"CloudWatchMetrics":[{"Namespace":"Followups","Dimensions":[[],["DropReason"]],"Metrics":[{"Name":"FollowupDropped","Unit":"Count"}]}]},"level":"FATAL","FollowupDropped":1,"DropReason":"thread_not_found","followup_id":"fu_01","thread_id":"th_01","attempts":1}
}
