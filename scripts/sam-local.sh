#!/usr/bin/env bash
# make sam-local: the AWS side of Followups on the real SAM CLI, on this
# machine (README, "Try the AWS version locally"). It installs and starts
# what it needs, says what it is doing, and stops everything on Ctrl-C:
#
#   1. the pinned SAM CLI (scripts/aws-tools.sh)
#   2. Docker (scripts/docker.sh: Debian's docker.io and dockerd; qemu for
#      arm64 images on another host)
#   3. the stand-in Lambda base images (scripts/lambda-image.sh)
#   4. moto's server on loopback (scripts/moto.sh)
#   5. bin/sam-local (e2e/samlocal/cmd/sam-local): sam build, the local
#      stack of events/env.json in moto, a thread API that prints what it
#      receives, sam local start-api on 127.0.0.1:3000 and start-lambda on
#      127.0.0.1:3001, and EventBridge Scheduler and the queues' event
#      source mappings played against start-lambda
#
# SAM_LOCAL_ARCH=arm64 runs the deployed architecture (emulated on an
# x86_64 host, about ten times slower); the default is this machine's.
# Arguments go to bin/sam-local (bin/sam-local -h lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
say() { printf 'sam-local.sh: %s\n' "$*"; }

arch=${SAM_LOCAL_ARCH:-}
if [ -z "$arch" ]; then
	case $(uname -m) in
	aarch64 | arm64) arch=arm64 ;;
	*) arch=x86_64 ;;
	esac
fi
case $arch in
x86_64 | arm64) ;;
*)
	say "SAM_LOCAL_ARCH=$arch: want x86_64 or arm64"
	exit 2
	;;
esac

say "the SAM CLI (scripts/aws-tools.sh)"
. scripts/aws-tools.sh
say "Docker (scripts/docker.sh)"
. scripts/docker.sh
trap docker_stop EXIT
say "the stand-in Lambda base images (scripts/lambda-image.sh; arm64 too, for sam local invoke of a plain sam build)"
bash scripts/lambda-image.sh
say "moto (scripts/moto.sh)"
# moto's EventBridge Scheduler otherwise asks the instance metadata address
# for credentials.
export AWS_EC2_METADATA_DISABLED=true
. scripts/moto.sh
mkdir -p bin
go build -o bin/sam-local ./e2e/samlocal/cmd/sam-local
say "set up in $(($(date +%s) - started)) s; running bin/sam-local"
bin/sam-local -arch "$arch" -moto "$FOLLOWUPS_TEST_AWS_ENDPOINT" -bridge "$FOLLOWUPS_DOCKER_BRIDGE" "$@"
