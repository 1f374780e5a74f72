# shellcheck shell=bash
# Docker for sam local (the SAM CLI tests of make test, and make sam-local).
# Source it:
#
#   . scripts/docker.sh && trap docker_stop EXIT
#
# It installs what is missing from Debian's packages (apt-get update
# first): docker.io, mmdebstrap (scripts/lambda-image.sh builds the Lambda
# base images with it), and on a host that is not arm64 qemu-user-static
# and binfmt-support, so arm64 images run. It enables qemu-aarch64 in
# binfmt_misc by hand (mounting it first: there is no systemd to do it),
# starts dockerd unless a daemon already answers on its socket, waits until
# it answers, and exports
#
#   FOLLOWUPS_DOCKER_BRIDGE   the address of Docker's default bridge
#                             (172.17.0.1 by default): what a container
#                             reaches a service on this machine at
#
# dockerd runs with its default bridge and iptables, as stock sam local
# needs, and --userland-proxy=false: with docker-proxy, SAM's readiness
# check connects before the emulator in the container listens, and a cold
# request intermittently fails with 502.
#
# docker_stop stops the dockerd this script started, when no other shell
# that sourced it is still using it (several test runs on one machine share
# one daemon: each registers its PID under $DOCKER_SH_STATE/users). A daemon
# it did not start is left alone. Its log is in $DOCKER_SH_STATE/dockerd.log.
# Returns non-zero, with a message, when Docker cannot be had.

DOCKER_SH_STATE=${DOCKER_SH_STATE:-/run/followups-docker}

# shellcheck source=scripts/debian.sh
. "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

_docker_say() { printf 'docker.sh: %s\n' "$*" >&2; }

# _docker_install installs what is missing of Debian's packages for
# Docker, the image builds and arm64 emulation (scripts/debian.sh).
_docker_install() {
	local -a want
	want=(docker.io mmdebstrap)
	if [ "$(uname -m)" != aarch64 ]; then
		want+=(qemu-user-static binfmt-support)
	fi
	debian_need "${want[@]}" || {
		_docker_say "could not install ${want[*]}"
		return 1
	}
}

# _docker_binfmt lets this kernel run arm64 binaries (and so arm64
# containers) through Debian's qemu-aarch64-static.
_docker_binfmt() {
	local reg=/proc/sys/fs/binfmt_misc
	if [ "$(uname -m)" = aarch64 ] || grep -qs '^enabled' "$reg/qemu-aarch64"; then
		return 0
	fi
	if [ ! -f "$reg/register" ]; then
		mount -t binfmt_misc binfmt_misc "$reg" || {
			_docker_say "cannot mount binfmt_misc at $reg: arm64 images will not run"
			return 1
		}
	fi
	update-binfmts --enable qemu-aarch64 >&2 || {
		_docker_say "update-binfmts --enable qemu-aarch64 failed: arm64 images will not run"
		return 1
	}
	_docker_say "enabled qemu-aarch64 in binfmt_misc (arm64 images run emulated)"
}

_docker_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# _docker_locked runs "$@" holding the state directory's lock, so that
# starts and stops of several shells do not interleave.
_docker_locked() {
	local _docker_lock_fd rc
	mkdir -p "$DOCKER_SH_STATE/users" || return 1
	exec {_docker_lock_fd}>"$DOCKER_SH_STATE/lock"
	flock "$_docker_lock_fd"
	"$@"
	rc=$?
	exec {_docker_lock_fd}>&-
	return "$rc"
}

_docker_start_locked() {
	local version pid
	: >"$DOCKER_SH_STATE/users/$$"
	if _docker_answers; then
		_docker_say "using the Docker daemon already running ($(docker version --format '{{.Server.Version}}'))"
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		_docker_say "no Docker daemon answers, and starting one needs root"
		return 1
	fi
	_docker_say "starting dockerd (default bridge, iptables, --userland-proxy=false), log $DOCKER_SH_STATE/dockerd.log"
	# In a session of its own, so that a Ctrl-C at the terminal does not
	# reach it (dockerd handles SIGINT by shutting down, before the sam
	# processes have removed their containers); without the lock's
	# descriptor, which would keep the lock taken. setsid may fork (in an
	# interactive shell), so the PID is dockerd's own pidfile's.
	rm -f "$DOCKER_SH_STATE/dockerd.pid"
	setsid dockerd --userland-proxy=false --pidfile "$DOCKER_SH_STATE/dockerd.pid" \
		>"$DOCKER_SH_STATE/dockerd.log" 2>&1 {_docker_lock_fd}>&- &
	for _ in $(seq 1 300); do
		if version=$(docker version --format '{{.Server.Version}}' 2>/dev/null); then
			_docker_say "dockerd $version (pid $(cat "$DOCKER_SH_STATE/dockerd.pid" 2>/dev/null)) answers"
			return 0
		fi
		sleep 0.1
	done
	_docker_say "dockerd did not answer within 30 s; the end of its log:"
	tail -n 20 "$DOCKER_SH_STATE/dockerd.log" >&2
	if pid=$(cat "$DOCKER_SH_STATE/dockerd.pid" 2>/dev/null); then
		kill "$pid" 2>/dev/null
	fi
	return 1
}

_docker_stop_locked() {
	local f pid left
	rm -f "$DOCKER_SH_STATE/users/$$"
	for f in "$DOCKER_SH_STATE"/users/*; do
		[ -e "$f" ] || continue
		if kill -0 "${f##*/}" 2>/dev/null; then
			_docker_say "leaving dockerd running: shell ${f##*/} still uses it"
			return 0
		fi
		rm -f "$f" # a shell that ended without docker_stop
	done
	# The pidfile in this folder is there only for a dockerd started here.
	pid=$(cat "$DOCKER_SH_STATE/dockerd.pid" 2>/dev/null) || return 0
	if ! kill -0 "$pid" 2>/dev/null; then
		rm -f "$DOCKER_SH_STATE/dockerd.pid"
		return 0
	fi
	# The last user is gone: what sam local containers are left on the
	# daemon were made by runs of these scripts (a sam that was killed
	# before it could remove them).
	left=$(docker ps --all --quiet --filter label=sam.cli.container.type=lambda 2>/dev/null) || true
	if [ -n "$left" ]; then
		_docker_say "removing $(echo "$left" | wc -l) container(s) sam local left behind"
		# shellcheck disable=SC2086
		docker rm --force $left >/dev/null || true
	fi
	_docker_say "stopping dockerd (pid $pid)"
	kill -TERM "$pid"
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	_docker_say "dockerd (pid $pid) did not stop within 30 s; killing it"
	kill -KILL "$pid" 2>/dev/null
	return 0
}

# docker_stop stops the daemon docker_start started, unless another shell
# still uses it.
docker_stop() {
	_docker_locked _docker_stop_locked
}

docker_start() {
	_docker_install || return 1
	# Without it only arm64 images fail (the tests say so); x86_64 ones run.
	_docker_binfmt || true
	_docker_locked _docker_start_locked || return 1
	FOLLOWUPS_DOCKER_BRIDGE=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null)
	if [ -z "$FOLLOWUPS_DOCKER_BRIDGE" ]; then
		FOLLOWUPS_DOCKER_BRIDGE=$(ip -4 -o addr show docker0 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
	fi
	if [ -z "$FOLLOWUPS_DOCKER_BRIDGE" ]; then
		_docker_say "Docker's default bridge network has no address"
		return 1
	fi
	export FOLLOWUPS_DOCKER_BRIDGE
	_docker_say "containers reach this machine at $FOLLOWUPS_DOCKER_BRIDGE (the bridge)"
}

docker_start
