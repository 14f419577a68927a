#!/usr/bin/env bash
# Runs every benchmark against the release build; results are pasted into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
bin="$(swift build -c release --show-bin-path)"
echo "## plan and apply of N files"; echo
python3 bench/plan_apply.py "$bin/tend" "$@"
echo; echo "## Git: deciding nothing changed"; echo
python3 bench/git_fetch.py "$bin/tend" "$bin/tend-fetch-loop"
echo; echo "## Packages"; echo
python3 bench/packages.py "$bin/tend"
echo; echo "## Converging new files durably"; echo
python3 bench/durable.py "$bin/tend"
echo; echo "## The agent"; echo
python3 bench/agent.py "$bin/tend" "$bin/tend-agent-loop"
echo; echo "## Issue 9: the periodic check with the stat cache"; echo
python3 bench/check.py "$bin/tend-check-loop"
echo; echo "## Issue 9: drift repaired by watches"; echo
python3 bench/drift.py "$bin/tend"
echo; echo "## Hostile manifests"; echo
python3 bench/hostile.py "$bin/tend"
echo; echo "## Issue 13: a fleet pulling one Git server"; echo
python3 bench/fleet.py "$bin/tend"
