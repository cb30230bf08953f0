#!/bin/sh
# tests/fuzz/run.sh - build the libFuzzer targets (clang) and run each for SECONDS (default 60) from its seed corpus.
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]   (targets: ari config http_request jws problem timeparse acme_obj control certbot_conf dns_reply)
# New inputs found go to build-fuzz/corpus/<target>/ (the seeds in tests/fuzz/corpus/ are not modified);
# a crash leaves crash-* files in build-fuzz/ and makes the script exit 1: copy them to
# tests/fuzz/regressions/<target>/ so that `meson test --suite fuzz` replays them from then on.
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"ari config http_request jws problem timeparse acme_obj control certbot_conf dns_reply"}
[ -d build-fuzz ] || CC=clang meson setup build-fuzz -Dfuzz=true >/dev/null
ninja -C build-fuzz >/dev/null
rc=0
for t in $targets; do
	mkdir -p "build-fuzz/corpus/$t"
	regr=; [ -d "tests/fuzz/regressions/$t" ] && regr="../tests/fuzz/regressions/$t"
	if (cd build-fuzz && "./tests/fuzz/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=4096 \
		"corpus/$t" "../tests/fuzz/corpus/$t" $regr >"fuzz_$t.log" 2>&1); then
		echo "fuzz_$t: ok, $(grep -E '^#[0-9]+.*DONE' "build-fuzz/fuzz_$t.log" | tail -1)"
	else
		echo "fuzz_$t: FAILED (build-fuzz/fuzz_$t.log)"; tail -n 30 "build-fuzz/fuzz_$t.log"; rc=1
	fi
done
exit $rc
