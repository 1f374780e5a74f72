# shellcheck shell=bash
# Debian packages the tests need, installed when missing. Source it:
#
#   . scripts/debian.sh && debian_need strace
#
# debian_need installs the packages of its arguments that are not
# installed (apt-get update first, once per shell), and returns non-zero,
# with a message, when it cannot: not root, or apt-get failed.

_debian_updated=

_debian_missing() {
	local p
	for p in "$@"; do
		if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
			printf '%s\n' "$p"
		fi
	done
}

debian_need() {
	local -a missing
	mapfile -t missing < <(_debian_missing "$@")
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		printf 'debian.sh: missing Debian packages %s, and installing them needs root\n' "${missing[*]}" >&2
		return 1
	fi
	printf 'debian.sh: installing %s\n' "${missing[*]}" >&2
	if [ -z "$_debian_updated" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
		_debian_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
