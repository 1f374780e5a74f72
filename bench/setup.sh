#!/usr/bin/env bash
# Makes sure the comparison can run here: Redis 7 and PostgreSQL 15 server
# binaries (from Debian's packages when missing) and, when run as root, the
# unprivileged user PostgreSQL runs as (it refuses to run as root).
#
# It starts no service: followups-compare starts its own Redis and
# PostgreSQL on loopback, in temporary directories, and stops them.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
BENCH_USER=${BENCH_USER:-followups-bench}

say() { printf 'bench/setup.sh: %s\n' "$*"; }

missing=()
if command -v redis-server >/dev/null; then
	say "redis-server found: $(redis-server --version | cut -d' ' -f1-3)"
else
	missing+=(redis-server)
fi
if [[ -x $PG_BIN/postgres && -x $PG_BIN/initdb ]]; then
	say "PostgreSQL found: $("$PG_BIN/postgres" --version)"
else
	missing+=(postgresql-15)
fi

if ((${#missing[@]} > 0)); then
	if ((EUID != 0)); then
		say "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run this script as root"
		exit 1
	fi
	say "installing ${missing[*]} from Debian's packages (apt-get update, then apt-get install)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
	# Debian's packages may start a system-wide service; the comparison does
	# not use it. Nothing is stopped here: it is not ours to stop.
fi

if ((EUID == 0)); then
	if id -u "$BENCH_USER" >/dev/null 2>&1; then
		say "user $BENCH_USER found (PostgreSQL runs as it)"
	else
		say "creating the system user $BENCH_USER (no home, no login shell) for PostgreSQL, which refuses to run as root"
		useradd --system --no-create-home --shell /usr/sbin/nologin "$BENCH_USER"
	fi
fi
say "ready"
