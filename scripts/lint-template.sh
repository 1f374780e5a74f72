#!/usr/bin/env bash
# Lints template.yaml with cfn-lint (errors, warnings and informational
# checks) and `sam validate --lint`, using the pinned tools from
# scripts/aws-tools.sh (installed on first use). Exits non-zero when either
# reports a finding. Needs no AWS account or credentials. To accept a
# finding, suppress that rule on the resource (Metadata: cfn-lint: config:
# ignore_checks) with a comment beside it saying why.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/aws-tools.sh
. "$root/scripts/aws-tools.sh"
cd "$root"

# SAM CLI wants a region even for a local check; no request is made.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}

status=0
echo "lint-template: cfn-lint $(cfn-lint --version | awk '{print $2}') template.yaml"
cfn-lint --include-checks I -- template.yaml || status=1
echo "lint-template: $(sam --version) validate --lint"
sam validate --lint --template template.yaml || status=1

if [ "$status" -eq 0 ]; then
	echo "lint-template: template.yaml is clean"
else
	echo "lint-template: findings above" >&2
fi
exit "$status"
