// Package samlocal runs the AWS side of Followups on the real SAM CLI, with
// Docker, against moto's server: sam local invoke on the sample events,
// sam local start-api for the HTTP API and sam local start-lambda for the
// functions behind the queues. The tests in this folder use it, and so
// does make sam-local (cmd/sam-local).
//
// What SAM CLI does not emulate is played as in e2e/aws: EventBridge
// Scheduler and the SQS event source mappings (harness.Scheduler and
// harness.Poller), the pollers invoking the functions through the Lambda
// Invoke API that start-lambda serves. The functions run in containers on
// Docker's default bridge and reach moto and the thread API at the
// bridge's address, where Forward relays to the servers on loopback. Every
// container gets 127.0.0.1 as its DNS server, so a name that is not an
// address (a real AWS endpoint, say) fails inside the container instead of
// being looked up elsewhere.
//
// events/env.json is used as the README tells users to use it: it names
// the local stack (table followups-local and so on) that Stack creates in
// moto, and the template's parameters LocalAwsEndpoint and ThreadApiUrl
// point the functions at moto and the thread API.
//
// The tests need Docker (scripts/docker.sh, which exports
// FOLLOWUPS_DOCKER_BRIDGE), moto (scripts/moto.sh) and the SAM CLI
// (scripts/aws-tools.sh); without them they skip, unless
// FOLLOWUPS_REQUIRE_SAM_LOCAL=1 (set by scripts/test.sh), when they fail.
// FOLLOWUPS_SAMLOCAL_REPORT=<path> writes the timings as markdown.
package samlocal
