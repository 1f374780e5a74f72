package awstest_test

import (
	"regexp"
	"testing"

	"github.com/followups/followups/shared/awstest"
)

func TestNameIsUniqueAndValid(t *testing.T) {
	// Valid as a DynamoDB table, an SQS queue and a schedule group name.
	valid := regexp.MustCompile(`^[A-Za-z0-9_.-]{3,64}$`)
	seen := map[string]bool{}
	for range 100 {
		n := awstest.Name("followups-test")
		if !valid.MatchString(n) {
			t.Fatalf("Name = %q, not a valid resource name", n)
		}
		if seen[n] {
			t.Fatalf("Name returned %q twice", n)
		}
		seen[n] = true
	}
}

func TestConfigPointsAtEndpoint(t *testing.T) {
	cfg := awstest.Config(t)
	if cfg.BaseEndpoint == nil || *cfg.BaseEndpoint != awstest.Endpoint(t) {
		t.Fatalf("BaseEndpoint = %v, want %s", cfg.BaseEndpoint, awstest.Endpoint(t))
	}
	if cfg.Region != awstest.Region {
		t.Fatalf("Region = %q, want %q", cfg.Region, awstest.Region)
	}
	creds, err := cfg.Credentials.Retrieve(t.Context())
	if err != nil || creds.AccessKeyID == "" {
		t.Fatalf("Credentials = %+v, %v; want static test credentials", creds, err)
	}
}
