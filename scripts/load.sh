#!/usr/bin/env bash
# Builds bin/followupd and bin/followups-load, then measures followupd on
# this machine: creates/s, a burst of followups due in the same second, and
# 100,000 pending (memory, store size, restart). Everything runs on
# loopback, against a child followupd with its own temporary data directory.
#
#   bash scripts/load.sh                     # every scenario once
#   bash scripts/load.sh -repeat 3           # three times, with the spread
#   bash scripts/load.sh -burst 20000 burst  # one scenario, other sizes
#
# Flags are followups-load's (bin/followups-load -h). Exits non-zero only on
# a correctness failure (an error answer, a duplicate or missing delivery, a
# lost followup); a missed speed target is printed, not fatal.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

go=${GO:-go}
echo "load: building bin/followupd and bin/followups-load ($($go version))"
$go build -o bin/followupd ./cmd/followupd
$go build -o bin/followups-load ./cmd/followups-load

args=("$@")
last=${*: -1}
case "${last:-}" in
creates | burst | pending | abuse | all) ;;
*) args+=(all) ;;
esac
echo "load: bin/followups-load ${args[*]}"
exec bin/followups-load "${args[@]}"
