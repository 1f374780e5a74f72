// Package awstest connects tests to an AWS-compatible endpoint: moto's
// server, started by scripts/moto.sh, which exports the endpoint in
// FOLLOWUPS_TEST_AWS_ENDPOINT.
//
// A test that needs the endpoint calls Endpoint or Config first. Without
// the endpoint the test is skipped, unless FOLLOWUPS_REQUIRE_AWS=1 (set by
// the full test command), in which case it fails: a run that is meant to
// cover the AWS side must not pass by skipping it.
//
// Tests share one endpoint and may run in parallel, so each creates its own
// resources under names from Name.
package awstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// The environment variables this package reads.
const (
	// EndpointEnv holds the endpoint's base URL, e.g. http://127.0.0.1:5000.
	EndpointEnv = "FOLLOWUPS_TEST_AWS_ENDPOINT"
	// RequireEnv set to 1 turns a missing endpoint from a skip into a failure.
	RequireEnv = "FOLLOWUPS_REQUIRE_AWS"
)

// Region is the region every test client uses.
const Region = "us-east-1"

// SkipMessage is why a test is skipped when there is no endpoint.
const SkipMessage = "needs moto: run make test, or start moto_server and set " + EndpointEnv

// Endpoint returns the endpoint's base URL, or skips (or fails, under
// FOLLOWUPS_REQUIRE_AWS=1) the test when there is none.
func Endpoint(t testing.TB) string {
	t.Helper()
	if e := os.Getenv(EndpointEnv); e != "" {
		return e
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s=1 but %s is not set: %s", RequireEnv, EndpointEnv, SkipMessage)
	}
	t.Skip(SkipMessage)
	return ""
}

// Config returns an SDK configuration for the endpoint: static dummy
// credentials, region us-east-1, and the endpoint as every client's base
// URL. Nothing is read from the shared AWS config files, so a developer's
// real credentials are never used by a test.
func Config(t testing.TB) aws.Config {
	t.Helper()
	endpoint := Endpoint(t)
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

// Name returns prefix followed by a dash and 12 random hex digits: a name
// for a table, queue or schedule group that no other test uses.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return prefix + "-" + hex.EncodeToString(b[:])
}
