#!/usr/bin/env bash
# A private Docker engine for the deployment tests, and the local stand-ins
# for the base images no registry can give us here.
#
#   scripts/docker.sh start   start dockerd (host networking only) unless ours runs
#   scripts/docker.sh bases   build the stand-in base images unless present
#   scripts/docker.sh stop    stop the dockerd that start started, by its PID
#   scripts/docker.sh env     print the DOCKER_HOST line to eval
#   scripts/docker.sh running succeed when our dockerd answers
#
# dockerd runs with --bridge=none --iptables=false: containers use the host
# network and listen on 127.0.0.1 only. Its data (images, build cache) and
# the debootstrap tarball live under $MCPCERT_CACHE, so warm runs rebuild
# nothing that has not changed.
#
# Stand-ins (names in deploy/images.go):
#   mcpcert-local/builder:bookworm  debootstrap'd Debian bookworm + this machine's Go
#   mcpcert-local/static:nonroot    scratch + CA certificates + /etc/passwd with
#                                   nonroot (65532), like distroless/static:nonroot
#   mcpcert-local/busybox:latest    the static one plus busybox, like the
#                                   quay.io/prometheus/busybox base of prom/* images
set -Eeuo pipefail
trap 'printf "docker.sh: error: %s failed (exit %d)\n" "$BASH_COMMAND" "$?" >&2' ERR

CACHE=${MCPCERT_CACHE:-$HOME/.cache/mcp_cert_exporter}
DATA_ROOT=$CACHE/docker
# Runtime state stays out of the cache: a socket path must be short and a
# stale pid file must not survive a reboot.
RUN_DIR=/run/mcp_cert_exporter-docker
SOCK=$RUN_DIR/docker.sock
PID_FILE=$RUN_DIR/dockerd.pid
LOG=$CACHE/dockerd.log
DOCKER=${DOCKER:-/usr/bin/docker}
SUITE=bookworm
ROOTFS_TAR=$CACHE/debootstrap-$SUITE-minbase.tar
# Packages inside the builder: HTTPS to the Go module proxy needs the CA
# certificates; busybox-static is copied into the busybox stand-in.
ROOTFS_INCLUDE=ca-certificates,busybox-static
BUILDER=mcpcert-local/builder:$SUITE
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
STATIC=mcpcert-local/static:nonroot
BUSYBOX=mcpcert-local/busybox:latest

log() { printf 'docker.sh: %s\n' "$*"; }
die() { printf 'docker.sh: error: %s\n' "$*" >&2; exit 1; }

export DOCKER_HOST=unix://$SOCK
# The legacy builder: BuildKit would want the buildx plugin, which Debian's
# docker.io does not ship.
export DOCKER_BUILDKIT=0

running() { [[ -r $PID_FILE ]] && kill -0 "$(<"$PID_FILE")" 2>/dev/null; }

start() {
	[[ $EUID -eq 0 ]] || die "dockerd needs root"
	if running && "$DOCKER" info >/dev/null 2>&1; then
		log "dockerd already running (pid $(<"$PID_FILE"))"
		return
	fi
	mkdir -p "$RUN_DIR" "$DATA_ROOT"
	log "starting dockerd (data in $DATA_ROOT, log in $LOG)"
	# setsid: the engine must not get the test run's terminal signals.
	setsid dockerd --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
		--data-root="$DATA_ROOT" --exec-root="$RUN_DIR/exec" --pidfile="$PID_FILE" \
		--host="$DOCKER_HOST" \
		>"$LOG" 2>&1 </dev/null &
	local i
	for ((i = 0; i < 120; i++)); do
		"$DOCKER" info >/dev/null 2>&1 && { log "dockerd up (pid $(<"$PID_FILE"))"; return; }
		sleep 0.5
	done
	tail -20 "$LOG" >&2
	die "dockerd did not answer within 60s"
}

stop() {
	running || { log "no dockerd of ours running"; return; }
	local pid i
	pid=$(<"$PID_FILE")
	# Each source change leaves a ~700 MB build stage behind: keep the last
	# day's as layer cache, drop older ones and stopped containers (a failed
	# legacy build leaves its container).
	"$DOCKER" container prune -f >/dev/null 2>&1 || true
	"$DOCKER" image prune -f --filter until=24h >/dev/null 2>&1 || true
	log "stopping dockerd (pid $pid)"
	kill -TERM "$pid"
	for ((i = 0; i < 60; i++)); do
		kill -0 "$pid" 2>/dev/null || { log "dockerd stopped"; return; }
		sleep 0.5
	done
	die "dockerd (pid $pid) still running 30s after SIGTERM"
}

image_exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# rootfs_tar debootstraps Debian once; the tarball is the cache.
rootfs_tar() {
	[[ -s $ROOTFS_TAR ]] && return
	command -v debootstrap >/dev/null || die "debootstrap not installed (scripts/install-tools.sh installs it)"
	local mirror dir
	mirror=$(apt_mirror)
	dir=$(mktemp -d "$CACHE/rootfs.XXXXXX")
	log "debootstrap --variant=minbase $SUITE from $mirror"
	debootstrap --variant=minbase --include="$ROOTFS_INCLUDE" "$SUITE" "$dir" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
	rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
	tar -C "$dir" -cf "$ROOTFS_TAR.tmp" . && mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
	rm -rf "$dir"
}

# apt_mirror is the Debian mirror this machine's apt uses.
apt_mirror() {
	local m
	m=$(grep -hs -m1 -E '^URIs: .*/debian/?$' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true)
	[[ -n $m ]] || m=$(grep -hs -m1 -E '^deb .*/debian/? ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
		awk '{print $2}' || true)
	printf '%s\n' "${m:-http://deb.debian.org/debian}"
}

# builder_recipe names what the builder is made of: this machine's Go and
# its trust store.
builder_recipe() {
	local sum=none
	[[ -r $HOST_CA_BUNDLE ]] && sum=$(sha256sum "$HOST_CA_BUNDLE" | cut -c1-16)
	printf '%s-ca-%s' "$(go env GOVERSION)" "$sum"
}

builder_current() {
	image_exists "$BUILDER" &&
		[[ $("$DOCKER" image inspect -f '{{index .Config.Labels "stand-in.recipe"}}' "$BUILDER") == "$(builder_recipe)" ]]
}

# builder: the Debian rootfs plus $(go env GOROOT) at /usr/local/go. It
# trusts what this machine trusts, so that the Go module proxy is reachable
# where egress goes through a TLS-inspecting proxy with its own CA.
builder() {
	local goroot dir
	builder_current && return
	goroot=$(go env GOROOT)
	log "importing $BUILDER ($(builder_recipe))"
	dir=$(mktemp -d)
	tar -C "$dir" -xf "$ROOTFS_TAR"
	mkdir -p "$dir/usr/local"
	cp -a "$goroot" "$dir/usr/local/go"
	[[ -r $HOST_CA_BUNDLE ]] && cp "$HOST_CA_BUNDLE" "$dir/etc/ssl/certs/ca-certificates.crt"
	tar -C "$dir" -c . | "$DOCKER" import \
		--change 'ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change "LABEL stand-in.recipe=$(builder_recipe)" \
		--change 'CMD ["/bin/bash"]' - "$BUILDER" >/dev/null
	rm -rf "$dir"
}

# static writes the scratch-style root: CA certificates, passwd and group
# with root and nonroot (65532) as distroless has them, and a writable /tmp.
static_root() {
	local dir=$1 rootfs=$2
	mkdir -p "$dir"/etc/ssl/certs "$dir"/tmp "$dir"/home/nonroot
	cp "$rootfs"/etc/ssl/certs/ca-certificates.crt "$dir"/etc/ssl/certs/
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$dir"/etc/passwd
	printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$dir"/etc/group
	chmod 1777 "$dir"/tmp
	chown 65532:65532 "$dir"/home/nonroot
}

runtime_bases() {
	image_exists "$STATIC" && image_exists "$BUSYBOX" && return
	local rootfs dir
	rootfs=$(mktemp -d)
	tar -C "$rootfs" -xf "$ROOTFS_TAR" ./etc/ssl/certs/ca-certificates.crt ./usr/bin/busybox
	dir=$(mktemp -d)
	static_root "$dir" "$rootfs"
	log "importing $STATIC"
	tar -C "$dir" -c . | "$DOCKER" import --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' - "$STATIC" >/dev/null
	mkdir -p "$dir/bin"
	cp "$rootfs/usr/bin/busybox" "$dir/bin/busybox"
	for tool in sh wget; do ln -s busybox "$dir/bin/$tool"; done
	log "importing $BUSYBOX"
	tar -C "$dir" -c . | "$DOCKER" import --change 'ENV PATH=/bin' - "$BUSYBOX" >/dev/null
	rm -rf "$rootfs" "$dir"
}

bases() {
	mkdir -p "$CACHE"
	"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine at $DOCKER_HOST: run scripts/docker.sh start"
	if builder_current && image_exists "$STATIC" && image_exists "$BUSYBOX"; then
		log "base images present: skipped"
		return
	fi
	rootfs_tar
	builder
	runtime_bases
}

case ${1:-} in
start) start ;;
stop) stop ;;
bases) bases ;;
running) running && "$DOCKER" info >/dev/null 2>&1 ;;
env) printf 'export DOCKER_HOST=%s DOCKER_BUILDKIT=0\n' "$DOCKER_HOST" ;;
*) die "usage: $0 start|bases|stop|env|running" ;;
esac
