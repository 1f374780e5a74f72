// Package awse2e holds the end-to-end tests of the AWS side: the three
// Lambda functions' real bootstraps run under the Lambda Runtime Interface
// Emulator against moto's server, with the harness package playing API
// Gateway, EventBridge Scheduler and the SQS event source mappings, so a
// followup goes API Gateway event → schedule → fire queue → fire → thread
// API → dead-letter queue → dlq with no AWS account and no Docker.
//
// The tests need FOLLOWUPS_TEST_AWS_ENDPOINT (scripts/moto.sh) and
// aws-lambda-rie (scripts/aws-tools.sh); without them they skip, unless
// FOLLOWUPS_REQUIRE_AWS=1, when they fail. FOLLOWUPS_E2E_REPORT=<path>
// writes the measurements (bootstrap sizes, cold starts, AWS calls per
// lifecycle step, fire batch timing) to a JSON (.json) or markdown file.
package awse2e
