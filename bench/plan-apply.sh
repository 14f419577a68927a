#!/usr/bin/env bash
# Runs bench/plan_apply.py against the release build of tend.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
exec python3 bench/plan_apply.py "$(swift build -c release --show-bin-path)/tend" "$@"
