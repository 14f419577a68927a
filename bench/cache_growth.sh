#!/usr/bin/env bash
# The Git cache's growth per push (issue 27): TEND_BINARY validates a repository of
# examples/webhost from a bare Git repository after each of PUSHES pushes (one line changed), so
# that each validate fetches; prints the cache's bytes and disk use after the first fetch and after
# the last. Run it with two builds to compare them.
# Usage: bench/cache_growth.sh TEND_BINARY   (PUSHES, default 100)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tend=$(realpath "$1")
pushes=${PUSHES:-100}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git init -q -b main "$work/clone"
cp -r "$here/../examples/webhost/"* "$work/clone/"
commit() { git -C "$work/clone" add -A && git -C "$work/clone" -c user.name=bench -c user.email=bench@example.com commit -qm "$1"; }
commit first
git clone -q --bare "$work/clone" "$work/bare.git"
git -C "$work/clone" remote add origin "$work/bare.git"
fetch() { "$tend" validate --repo "$work/bare.git" --state-dir "$work/state" --hostname bench >/dev/null; }
fetch
bytes=$(du -sb "$work/state/cache" | cut -f1); kib=$(du -sk "$work/state/cache" | cut -f1)
for index in $(seq 1 "$pushes"); do
    date +%s%N > "$work/clone/pushed.txt"
    commit "push $index"
    git -C "$work/clone" push -q origin main
    fetch
done
last=$(du -sb "$work/state/cache" | cut -f1); lastkib=$(du -sk "$work/state/cache" | cut -f1)
echo "$1: $bytes bytes ($kib KiB on disk) after the first fetch, $last bytes ($lastkib KiB) after $pushes pushes: $(( (last - bytes) / pushes )) bytes a push"
