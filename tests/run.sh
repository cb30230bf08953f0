#!/bin/sh
# tests/run.sh - the test command: builds, runs unit tests and the fuzz corpus replays (plain and
# ASan+UBSan) and the Pebble integration tests, then prints "N passed, N failed, N skipped" as its
# last line. The integration tests run against two Pebbles, Debian 12's (2.4) and the newest
# (Debian unstable's, unpacked into build-pebble/ by tests/deps.sh): each test once per Pebble.
# Options (environment): ACMED_TESTS_NO_ASAN=1 skips the sanitizer build;
# PYTEST_ARGS="-k name" narrows the integration tests; ACMED_PEBBLES=pebble-new (or
# pebble2.4) runs them against one Pebble only; ACMED_TESTS_NO_PACKAGE=1 skips the Debian
# package (built, lintian, installed and purged: as root only); ACMED_TESTS_NO_README=1 skips
# following README's service and certbot sections word for word (as root only: it installs).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=/usr/bin/python3
OUT="$ROOT/build-tests"
mkdir -p "$OUT"
rm -f "$OUT"/*.count	# the summary counts this run only
status=0

build() { # dir, extra meson options...
	dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" -Dwerror=true "$@" >"$OUT/$(basename "$dir")-setup.log" 2>&1 ||
			{ cat "$OUT/$(basename "$dir")-setup.log"; return 1; }
	else	# warnings are errors here, whatever the tree was set up with
		meson configure "$dir" -Dwerror=true "$@" >"$OUT/$(basename "$dir")-setup.log" 2>&1 ||
			{ cat "$OUT/$(basename "$dir")-setup.log"; return 1; }
	fi
	ninja -C "$dir" >"$OUT/$(basename "$dir")-build.log" 2>&1 ||
		{ cat "$OUT/$(basename "$dir")-build.log"; return 1; }
}

echo "== build"
build build || { echo "0 passed, 1 failed"; exit 1; }

echo "== unit tests"
meson test -C build --suite unit --print-errorlogs --logbase unit >/dev/null 2>&1
$PY tests/summarize.py meson build/meson-logs/unit.json unit > "$OUT/unit.count" || status=1
cat "$OUT/unit.count"

echo "== fuzz corpus replay"
meson test -C build --suite fuzz --print-errorlogs --logbase fuzz >/dev/null 2>&1
$PY tests/summarize.py meson build/meson-logs/fuzz.json fuzz > "$OUT/fuzz.count" || status=1
cat "$OUT/fuzz.count"

if [ "${ACMED_TESTS_NO_ASAN:-0}" != 1 ]; then
	echo "== unit tests and fuzz corpus replay under ASan+UBSan"
	if build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug; then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			meson test -C build-asan --suite unit --print-errorlogs --logbase unit >/dev/null 2>&1
		$PY tests/summarize.py meson build-asan/meson-logs/unit.json unit-asan > "$OUT/asan.count" || status=1
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			meson test -C build-asan --suite fuzz --print-errorlogs --logbase fuzz >/dev/null 2>&1
		$PY tests/summarize.py meson build-asan/meson-logs/fuzz.json fuzz-asan > "$OUT/fuzz-asan.count" || status=1
	else
		echo "1 failed unit-asan: build" > "$OUT/asan.count"; status=1
		echo "0 passed, 1 failed, 0 skipped fuzz-asan: build" > "$OUT/fuzz-asan.count"
	fi
	cat "$OUT/asan.count"
	[ -f "$OUT/fuzz-asan.count" ] && cat "$OUT/fuzz-asan.count"
fi

pebbles=$(cd tests/integration && $PY -c 'import pebble_env as pe; print(", ".join(f"{b.id} {b.version}" for b in pe.pebble_builds_selected()))' 2>&1)
echo "== integration tests (Pebble: $pebbles)"
ACMED_BIN="$ROOT/build/acmed" $PY -m pytest tests/integration -q -p no:cacheprovider \
	--junitxml="$OUT/integration.xml" ${PYTEST_ARGS:-} 2>&1 | tail -n 40
$PY tests/summarize.py junit "$OUT/integration.xml" integration > "$OUT/integration.count" || status=1
cat "$OUT/integration.count"

if [ "${ACMED_TESTS_NO_ASAN:-0}" != 1 ] && [ -x build-asan/acmed ]; then
	echo "== integration tests with acmed built with ASan+UBSan (the quick ones)"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	ACMED_BIN="$ROOT/build-asan/acmed" $PY -m pytest tests/integration -q -p no:cacheprovider \
		-m "acmed and not slow" --junitxml="$OUT/integration-asan.xml" ${PYTEST_ARGS:-} 2>&1 | tail -n 40
	$PY tests/summarize.py junit "$OUT/integration-asan.xml" integration-asan > "$OUT/integration-asan.count" || status=1
	cat "$OUT/integration-asan.count"
fi

# The Debian package: built, lintian, installed and purged (root only: it installs it).
if [ "${ACMED_TESTS_NO_PACKAGE:-0}" != 1 ] && [ "$(id -u)" -eq 0 ] && command -v dpkg-buildpackage >/dev/null; then
	echo "== Debian package (tests/package.sh)"
	tests/package.sh >"$OUT/package.log" 2>&1
	grep "FAILED" -A 20 "$OUT/package.log" | head -n 60
	tail -n 1 "$OUT/package.log" >"$OUT/package.count"
	cat "$OUT/package.count"
fi

# README's "Install as a service" and "Moving from certbot", followed word for word: it installs
# acmed into /usr and /etc and removes it again (root only, after the package is purged).
if [ "${ACMED_TESTS_NO_README:-0}" != 1 ] && [ "$(id -u)" -eq 0 ]; then
	echo "== README followed word for word (tests/readme)"
	ACMED_README_TEST=1 $PY -m pytest tests/readme -q -p no:cacheprovider \
		--junitxml="$OUT/readme.xml" 2>&1 | tail -n 40
	$PY tests/summarize.py junit "$OUT/readme.xml" readme > "$OUT/readme.count" || status=1
	cat "$OUT/readme.count"
fi

$PY tests/summarize.py total "$OUT"/*.count || status=1
exit $status
