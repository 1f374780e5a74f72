#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it:
#   1. gofmt and go vet
#   2. the tools: strace from Debian's packages when missing; pinned, moto's
#      server, the SAM CLI and cfn-lint (in .venv), aws-lambda-rie (in
#      .tools/bin); Docker (scripts/docker.sh installs Debian's docker.io,
#      mmdebstrap and qemu, starts dockerd, and stops it at the end)
#   3. go test -race ./...: unit tests, the store contract suite on bbolt and
#      on DynamoDB (moto), the adapters against moto, end to end against the
#      real followupd binary, against the Lambda bootstraps under the
#      Runtime Interface Emulator, and on the SAM CLI itself (sam local
#      invoke, start-api, start-lambda: e2e/samlocal). FOLLOWUPS_REQUIRE_AWS=1
#      makes any test that would skip for want of moto or the emulator fail
#      instead, FOLLOWUPS_REQUIRE_SAM_LOCAL=1 any that would skip for want of
#      Docker or the SAM CLI.
#   4. the template: cfn-lint, sam validate --lint, sam build
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(($(date +%s) - started))"; }

step "gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files -co --exclude-standard '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted"
	exit 1
fi
go vet ./...

step "tools"
# strace: e2e/outage_test.go fails followupd's disk writes with it.
. scripts/debian.sh
debian_need strace
. scripts/aws-tools.sh
. scripts/docker.sh
trap docker_stop EXIT
# moto's EventBridge Scheduler otherwise asks the instance metadata address
# for credentials: test traffic stays on this machine.
export AWS_EC2_METADATA_DISABLED=true
. scripts/moto.sh
export FOLLOWUPS_REQUIRE_AWS=1 FOLLOWUPS_REQUIRE_SAM_LOCAL=1
export FOLLOWUPS_RIE="$PWD/.tools/bin/aws-lambda-rie"
mkdir -p bin
export FOLLOWUPS_E2E_REPORT="$PWD/bin/e2e-aws.md"
export FOLLOWUPS_SAMLOCAL_REPORT="$PWD/bin/sam-local.md"
rm -f bin/sam-local.md

step "go test -race ./..."
go test -race -count=1 -timeout 20m ./...

step "template: cfn-lint, sam validate --lint, sam build"
bash scripts/lint-template.sh
CGO_ENABLED=0 GOFLAGS=-tags=lambda.norpc sam build --parallel >/dev/null
echo "sam build: ok ($(ls .aws-sam/build | tr '\n' ' '))"

if [ -f bin/e2e-aws.md ]; then
	step "AWS end-to-end figures (bin/e2e-aws.md)"
	cat bin/e2e-aws.md
fi
if [ -f bin/sam-local.md ]; then
	step "sam local figures (bin/sam-local.md)"
	cat bin/sam-local.md
fi
step "done"
