#!/usr/bin/env bash
# Installs the tools for the AWS side of the repository, pinned, under the
# repository root (both folders are git-ignored):
#
#   .venv/        Python venv with the SAM CLI and cfn-lint
#   .tools/bin/   aws-lambda-rie, the Lambda Runtime Interface Emulator
#
# Idempotent: what is already there at the pinned version is left alone.
# Run it (scripts/aws-tools.sh) or source it (. scripts/aws-tools.sh); when
# sourced it also puts .venv/bin and .tools/bin first on PATH and turns off
# SAM CLI telemetry. Needs python3 (3.10 or later), go, and access to PyPI
# and the Go module proxy the first time.

AWS_TOOLS_SAM_CLI_VERSION=1.161.1
AWS_TOOLS_CFN_LINT_VERSION=1.51.0
AWS_TOOLS_RIE_MODULE=github.com/aws/aws-lambda-runtime-interface-emulator
AWS_TOOLS_RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d

# _aws_tools_install runs in a subshell, so its strict mode and cd never
# reach a shell that sources this file.
_aws_tools_install() (
	set -euo pipefail
	root=$1
	cd "$root"
	say() { printf 'aws-tools: %s\n' "$*" >&2; }

	mkdir -p .tools/bin
	# One installer at a time: concurrent test runs share .venv and .tools.
	if command -v flock >/dev/null 2>&1; then
		exec 9>.tools/aws-tools.lock
		flock 9
	fi

	# Python tools. A venv of its own: the system site-packages (and any
	# moto installed there) are neither used nor changed.
	venv=$root/.venv
	if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
		python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || {
			say "python3 3.10 or later is needed for aws-sam-cli $AWS_TOOLS_SAM_CLI_VERSION"
			exit 1
		}
		say "creating .venv"
		rm -rf "$venv"
		python3 -m venv "$venv"
	fi
	installed=$("$venv/bin/python" - <<-'EOF' 2>/dev/null || true
		from importlib import metadata
		out = []
		for name in ("aws-sam-cli", "cfn-lint"):
		    try:
		        out.append(metadata.version(name))
		    except metadata.PackageNotFoundError:
		        out.append("none")
		print(" ".join(out))
	EOF
	)
	want="$AWS_TOOLS_SAM_CLI_VERSION $AWS_TOOLS_CFN_LINT_VERSION"
	if [ "$installed" = "$want" ]; then
		say "aws-sam-cli $AWS_TOOLS_SAM_CLI_VERSION and cfn-lint $AWS_TOOLS_CFN_LINT_VERSION already in .venv"
	else
		say "installing aws-sam-cli==$AWS_TOOLS_SAM_CLI_VERSION cfn-lint==$AWS_TOOLS_CFN_LINT_VERSION into .venv (had: ${installed:-none})"
		"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
			"aws-sam-cli==$AWS_TOOLS_SAM_CLI_VERSION" "cfn-lint==$AWS_TOOLS_CFN_LINT_VERSION"
		say "installed $("$venv/bin/sam" --version), $("$venv/bin/cfn-lint" --version)"
	fi

	# The Runtime Interface Emulator, built from source at the pinned
	# version. `go install pkg@version` ignores this repository's go.mod.
	rie=$root/.tools/bin/aws-lambda-rie
	have=$(go version -m "$rie" 2>/dev/null | awk -v m="$AWS_TOOLS_RIE_MODULE" '$1 == "mod" && $2 == m { print $3 }' || true)
	if [ "$have" = "$AWS_TOOLS_RIE_VERSION" ]; then
		say "aws-lambda-rie $AWS_TOOLS_RIE_VERSION already in .tools/bin"
	else
		say "building aws-lambda-rie $AWS_TOOLS_RIE_VERSION into .tools/bin (had: ${have:-none})"
		GOBIN=$root/.tools/bin GOFLAGS= CGO_ENABLED=0 \
			go install "$AWS_TOOLS_RIE_MODULE/cmd/aws-lambda-rie@$AWS_TOOLS_RIE_VERSION"
	fi
)

_aws_tools_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if (return 0 2>/dev/null); then
	# Sourced: install, then set up the caller's environment.
	if _aws_tools_install "$_aws_tools_root"; then
		case ":$PATH:" in
		*":$_aws_tools_root/.venv/bin:"*) ;;
		*) PATH=$_aws_tools_root/.venv/bin:$_aws_tools_root/.tools/bin:$PATH ;;
		esac
		export PATH
		export SAM_CLI_TELEMETRY=0
		unset _aws_tools_root
	else
		unset _aws_tools_root
		return 1
	fi
else
	_aws_tools_install "$_aws_tools_root"
fi
