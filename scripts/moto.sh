# shellcheck shell=bash
# Starts moto's server (an AWS-compatible endpoint for DynamoDB, SQS and
# EventBridge Scheduler) for the tests of the AWS adapters. Source it:
#
#   . scripts/moto.sh && FOLLOWUPS_REQUIRE_AWS=1 go test ./...
#
# It finds moto_server on PATH (or python3 with moto installed), or else
# installs moto[server] at the pinned version into .venv-moto at the
# repository root; starts moto_server in the background on a free loopback
# port; waits until it answers; and exports
#
#   FOLLOWUPS_TEST_AWS_ENDPOINT=http://127.0.0.1:PORT
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (dummies), AWS_REGION=us-east-1
#
# The server stops when the sourcing shell exits (an EXIT trap, chained
# before any trap already set) or when moto_stop is called. Its log is in
# $MOTO_LOG. Returns non-zero, with a message, when moto cannot start.
#
# One change to moto: DynamoDB requests are served one at a time. moto
# evaluates a condition and applies the write in separate steps, and rolls
# a failed transaction back by restoring a copy of the whole table, so
# concurrent requests could both pass one condition or lose each other's
# writes. DynamoDB itself never does either, and the contract tests race
# writers on purpose. Other services stay concurrent (SQS long polls must
# not block everyone).

MOTO_VERSION=5.2.1

# _MOTO_LAUNCHER runs moto_server's main with DynamoDB requests serialized.
_MOTO_LAUNCHER='
import sys, threading
from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_dynamodb = threading.Lock()
_serve = DomainDispatcherApplication.__call__

def _call(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with _dynamodb:
            return _serve(self, environ, start_response)
    return _serve(self, environ, start_response)

DomainDispatcherApplication.__call__ = _call
server.main(sys.argv[1:])
'

# _moto_python prints a Python interpreter that has moto's server,
# installing one into .venv-moto when there is none.
_moto_python() (
	set -euo pipefail
	has_moto() { "$1" -c 'import moto.server, flask, werkzeug' >/dev/null 2>&1; }
	candidates=()
	if script=$(command -v moto_server 2>/dev/null); then
		# pyenv puts a shell shim on PATH; ask pyenv for the real script.
		if command -v pyenv >/dev/null 2>&1 && real=$(pyenv which moto_server 2>/dev/null); then
			script=$real
		fi
		shebang=$(head -n 1 "$script" 2>/dev/null || true)
		case $shebang in
		'#!'*python*) candidates+=("${shebang#\#!}") ;;
		esac
	fi
	candidates+=(python3)
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	venv=$root/.venv-moto
	candidates+=("$venv/bin/python")
	for py in "${candidates[@]}"; do
		# A shebang may carry arguments ("/usr/bin/env python3").
		read -r -a cmd <<<"$py"
		if has_moto "${cmd[@]}"; then
			printf '%s\n' "$py"
			return
		fi
	done
	echo "moto.sh: installing moto[server]==$MOTO_VERSION into .venv-moto" >&2
	python3 -m venv "$venv"
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
	has_moto "$venv/bin/python"
	echo "$venv/bin/python"
)

# _moto_free_port prints a TCP port nothing listens on at 127.0.0.1.
_moto_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# moto_stop stops the server this script started, if it runs.
moto_stop() {
	if [ -n "${MOTO_PID:-}" ]; then
		kill "$MOTO_PID" 2>/dev/null || true
		wait "$MOTO_PID" 2>/dev/null || true
		unset MOTO_PID
	fi
	return 0
}

# _moto_trap runs moto_stop on exit, before whatever EXIT trap was set.
_moto_trap() {
	local prev
	prev=$(trap -p EXIT)
	case $prev in
	*moto_stop*) return ;;
	"") trap moto_stop EXIT ;;
	*)
		# trap -p prints: trap -- 'command' EXIT
		eval "set -- $prev"
		trap -- "moto_stop; $3" EXIT
		;;
	esac
}

_moto_start() {
	local py port
	local -a cmd
	py=$(_moto_python) || {
		echo "moto.sh: no moto server found, and it could not be installed" >&2
		return 1
	}
	read -r -a cmd <<<"$py"
	MOTO_LOG=${MOTO_LOG:-${TMPDIR:-/tmp}/followups-moto.$$.log}
	export MOTO_LOG
	for _ in 1 2 3; do
		port=$(_moto_free_port) || return 1
		"${cmd[@]}" -c "$_MOTO_LAUNCHER" -H 127.0.0.1 -p "$port" >"$MOTO_LOG" 2>&1 &
		MOTO_PID=$!
		for _ in $(seq 1 150); do
			if ! kill -0 "$MOTO_PID" 2>/dev/null; then
				break # it died (the port was taken after all): try another
			fi
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				export FOLLOWUPS_TEST_AWS_ENDPOINT=http://127.0.0.1:$port
				export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
				_moto_trap
				echo "moto.sh: moto $("${cmd[@]}" -c 'import moto; print(moto.__version__)') (pid $MOTO_PID) at $FOLLOWUPS_TEST_AWS_ENDPOINT, log $MOTO_LOG" >&2
				return 0
			fi
			sleep 0.1
		done
		moto_stop
	done
	echo "moto.sh: moto_server did not start; see $MOTO_LOG" >&2
	return 1
}

_moto_start
