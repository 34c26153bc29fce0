#!/usr/bin/env bash
# The one test command: installs the tools the tests need, then runs vet, the
# gofmt check, the race-enabled test suite and short fuzz runs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Packages whose Fuzz* targets get a short run.
FUZZ_PKGS=(./config/... ./probe/... ./certfile/... ./collector/...)

# fuzz_execs is how many inputs a target runs: about 10 s each on two cores.
# A count, not a duration: Go 1.26's fuzz coordinator can fail a run that
# ends on its -fuzztime deadline with "context deadline exceeded" and no
# failing input (go.dev/issue/75804, fixed in Go 1.27); a count has no
# deadline. FUZZ_EXECS overrides it for every target.
fuzz_execs() {
	if [[ -n ${FUZZ_EXECS:-} ]]; then
		echo "$FUZZ_EXECS"
		return
	fi
	case $1 in
	FuzzFileNamesAndContents) echo 2000 ;; # real files and a collector per input
	*) echo 40000 ;;
	esac
}

step() { printf '\n=== %s\n' "$*"; }

# fuzz_targets prints the Fuzz* functions of one package; a package that does
# not compile fails here rather than being passed over.
fuzz_targets() {
	local out
	out=$(go test -list '^Fuzz' "$1") || return 1
	grep '^Fuzz' <<<"$out" || true
}

step "install tools"
bash scripts/install-tools.sh
# .tools/bin first so the pinned builds win; sbin for nginx when not root.
export PATH="$PWD/.tools/bin:$PATH:/usr/local/sbin:/usr/sbin:/sbin"
# Tests fail instead of skipping when a tool they need is missing.
export MCPCERT_REQUIRE_TOOLS=1

step "docker engine and base images (deploy/)"
# A private dockerd for the image and compose tests, stopped by its PID at
# the end unless it was already running before this run.
if ! bash scripts/docker.sh running; then
	bash scripts/docker.sh start
	trap 'bash scripts/docker.sh stop' EXIT
fi
eval "$(bash scripts/docker.sh env)"
bash scripts/docker.sh bases

step "go vet"
go vet ./...

step "gofmt"
unformatted=$(gofmt -l .)
if [[ -n $unformatted ]]; then
	printf 'gofmt: these files need formatting:\n%s\n' "$unformatted" >&2
	exit 1
fi
echo "gofmt: clean"

step "go test -race"
go test -race -count=1 ./...

step "fuzz (a fixed number of inputs per target)"
pkgs=$(go list "${FUZZ_PKGS[@]}")
fuzzed=0
for pkg in $pkgs; do
	targets=$(fuzz_targets "$pkg")
	for target in $targets; do
		execs=$(fuzz_execs "$target")
		echo "--- $target ($pkg, $execs inputs)"
		# Minimizing a new interesting input may take 60s by default, which
		# would eat a short run whole: bound it so the run keeps fuzzing.
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="${execs}x" -fuzzminimizetime=2s "$pkg"
		fuzzed=$((fuzzed + 1))
	done
done
echo "fuzz: $fuzzed targets run"
