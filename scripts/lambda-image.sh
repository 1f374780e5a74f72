#!/usr/bin/env bash
# Builds stand-ins for the Lambda base images sam local runs a
# provided.al2023 function on, from Debian's packages, because no image
# registry can be reached here:
#
#   bash scripts/lambda-image.sh [x86_64|arm64]...   (default: both)
#
# tags public.ecr.aws/lambda/provided:al2023-<arch>. SAM CLI builds its own
# image on top (FROM that tag, ADD its Runtime Interface Emulator, RUN mv
# and chmod), replaces the entrypoint with the emulator and mounts the
# function's build folder read-only at /var/task; pass --skip-pull-image
# to sam local, or it asks a registry for the base image's digest.
#
# The stand-in is mmdebstrap --variant=extract of busybox-static,
# ca-certificates and tzdata for the target architecture (extract only
# unpacks, so nothing of the other architecture runs), plus what the real
# image has that the functions or SAM use: /bin/sh, mv and chmod, the
# Lambda directories, the CA bundle (also at Amazon Linux's path), UTC as
# /etc/localtime, passwd and group, and the real image's ENV, WORKDIR and
# ENTRYPOINT. It is not Amazon Linux 2023: a pure Go bootstrap built with
# CGO_ENABLED=0 needs none of its libraries.
#
# Idempotent: an image of the same recipe (a label holds this script's
# hash) is kept, and so is an image of that tag that is not a stand-in (the
# real one, pulled where a registry can be reached). Needs a running Docker
# daemon (scripts/docker.sh) and mmdebstrap.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'lambda-image: %s\n' "$*" >&2; }

recipe=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
label=org.followups.lambda-stand-in

archs=("$@")
if [ "${#archs[@]}" -eq 0 ]; then
	archs=(x86_64 arm64)
fi

# The host's Debian sources, so a mirror configured here is used; stdin
# would be read for sources otherwise when it is not a terminal.
mirror=http://deb.debian.org/debian
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	mirror=/etc/apt/sources.list.d/debian.sources
fi
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")

work=$(mktemp -d "${TMPDIR:-/tmp}/lambda-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

build() {
	local arch=$1 debarch platform tag have dir start out rapid try
	case $arch in
	x86_64) debarch=amd64 platform=linux/amd64 ;;
	arm64) debarch=arm64 platform=linux/arm64 ;;
	*)
		say "unknown architecture $arch (x86_64 or arm64)"
		return 1
		;;
	esac
	tag=public.ecr.aws/lambda/provided:al2023-$arch
	if have=$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$tag" 2>/dev/null); then
		case $have in
		"$recipe")
			say "$tag: stand-in up to date"
			return 0
			;;
		"" | "<no value>")
			say "$tag: an image that is not a stand-in is there; keeping it"
			return 0
			;;
		esac
	fi
	start=$(date +%s.%N)
	dir=$work/$arch
	mkdir -p "$dir"
	# What mmdebstrap's unpacked packages lack, added on this host.
	cat >"$dir/customize.sh" <<-'EOF'
		set -eu
		r=$1
		for a in sh mv chmod cp rm ls cat mkdir ln env echo; do
			ln -sf busybox "$r/bin/$a"
		done
		mkdir -p "$r/var/task" "$r/var/runtime" "$r/opt" "$r/tmp" "$r/root" "$r/etc/ssl/certs" "$r/etc/pki/tls/certs"
		chmod 1777 "$r/tmp"
		# update-ca-certificates would make the bundle; extract runs no
		# maintainer script.
		cat "$r"/usr/share/ca-certificates/mozilla/*.crt >"$r/etc/ssl/certs/ca-certificates.crt"
		ln -sf ../../../ssl/certs/ca-certificates.crt "$r/etc/pki/tls/certs/ca-bundle.crt"
		ln -sf ../usr/share/zoneinfo/UTC "$r/etc/localtime"
		printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin\n' >"$r/etc/passwd"
		printf 'root:x:0:\nnobody:x:65534:\n' >"$r/etc/group"
		cat >"$r/lambda-entrypoint.sh" <<-'END'
			#!/bin/sh
			# The stand-in's entrypoint; sam local replaces it with its emulator.
			export _HANDLER="$1"
			if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
				echo "lambda-entrypoint.sh: this stand-in has no emulator of its own; run it with sam local" >&2
				exit 142
			fi
			for b in /var/runtime/bootstrap /var/task/bootstrap /opt/bootstrap; do
				[ -x "$b" ] && exec "$b"
			done
			echo "lambda-entrypoint.sh: no bootstrap" >&2
			exit 127
		END
		chmod 755 "$r/lambda-entrypoint.sh"
	EOF
	say "$tag: mmdebstrap $suite $debarch (busybox-static, ca-certificates, tzdata)"
	# Three tries: a mirror that is being updated fails apt-get update now
	# and then.
	for try in 1 2 3; do
		rm -f "$dir/rootfs.tar"
		if mmdebstrap --quiet --variant=extract --architectures="$debarch" \
			--include=busybox-static,ca-certificates,tzdata \
			--extract-hook="sh '$dir/customize.sh' \"\$1\"" \
			"$suite" "$dir/rootfs.tar" "$mirror" </dev/null; then
			break
		fi
		if [ "$try" = 3 ]; then
			say "$tag: mmdebstrap failed three times"
			return 1
		fi
		say "$tag: mmdebstrap failed (try $try of 3); trying again in 5 s"
		sleep 5
	done
	cat >"$dir/Dockerfile" <<-EOF
		FROM scratch
		ADD rootfs.tar /
		ENV LANG=en_US.UTF-8
		ENV TZ=:/etc/localtime
		ENV PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin
		ENV LD_LIBRARY_PATH=/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib
		ENV LAMBDA_TASK_ROOT=/var/task
		ENV LAMBDA_RUNTIME_DIR=/var/runtime
		WORKDIR /var/task
		ENTRYPOINT ["/lambda-entrypoint.sh"]
		LABEL $label=$recipe
	EOF
	# The classic builder: it sets the platform of a FROM scratch image
	# (docker import ignores --platform on this daemon).
	if ! out=$(DOCKER_BUILDKIT=0 docker build --quiet --platform "$platform" --tag "$tag" "$dir" 2>&1); then
		printf '%s\n' "$out" >&2
		say "$tag: docker build failed"
		return 1
	fi
	# SAM CLI's image on the previous stand-in would still be used: untag
	# it (sam local builds it anew; a container still running on it keeps
	# it), and remove the previous stand-in if nothing uses it.
	rapid=public.ecr.aws/lambda/provided:al2023-rapid-$arch
	if docker image inspect "$rapid" >/dev/null 2>&1; then
		docker image rm --force "$rapid" >/dev/null || say "$rapid: could not remove it; remove it by hand"
	fi
	docker image prune --force --filter "label=$label" >/dev/null || true
	say "$tag: built in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s, $(docker image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }') ($platform)"
}

for a in "${archs[@]}"; do
	build "$a"
done
