#!/usr/bin/env bash
# Side-by-side run: the load harness, then blackbox_exporter from Debian's
# package against the same listeners, with the bare-handshake floor
# measured in the same run. Usage: loadtest/blackbox.sh [N] [extra flags]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
shift || true
bin=/usr/bin/prometheus-blackbox-exporter
if [[ ! -x "$bin" ]]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-blackbox-exporter
fi
"$bin" --version 2>&1 | head -1
exec go run ./loadtest -n "$n" -blackbox "$bin" "$@"
