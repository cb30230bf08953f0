#!/bin/bash
# tests/ci_loaded.sh - issue 7's robustness check: .ci/run on fresh clones of one commit, N times in a
# row, while two busy loops hold both cores; stops at the first failure.
# Usage: tests/ci_loaded.sh [COMMIT] [N]   (default HEAD, 5). Results: /tmp/ciloop/summary (one line
# per run: rc, seconds, the run's last line) and /tmp/ciloop/runK.log. One run takes ~20-26 min here.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=$(git -C "$REPO" rev-parse --short "${1:-HEAD}")
N=${2:-5}
OUT=/tmp/ciloop
mkdir -p "$OUT"
( while :; do :; done ) & B1=$!
( while :; do :; done ) & B2=$!
trap 'kill $B1 $B2 2>/dev/null' EXIT
for i in $(seq 1 "$N"); do
	rm -rf "/tmp/ci$i"
	git clone -q "$REPO" "/tmp/ci$i" && git -C "/tmp/ci$i" checkout -q "$COMMIT" || exit 1
	s=$(date +%s)
	(cd "/tmp/ci$i" && .ci/run >"$OUT/run$i.log" 2>&1)
	rc=$?
	echo "run $i commit $COMMIT rc=$rc $(($(date +%s) - s)) s: $(tail -n 1 "$OUT/run$i.log")" >>"$OUT/summary"
	[ "$rc" -ne 0 ] && break
	rm -rf "/tmp/ci$i"
done
