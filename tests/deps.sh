#!/bin/sh
# tests/deps.sh - install what building, testing and the demo need (Debian 12; run as root),
# and unpack the newest Pebble (Debian unstable) into build-pebble/ for the integration tests.
set -eu
PKGS="build-essential pkg-config meson ninja-build
 libevent-dev libssl-dev libcurl4-openssl-dev libyaml-dev libsystemd-dev libjansson-dev
 libcmocka-dev clang libclang-rt-14-dev valgrind
 pebble openssl ca-certificates curl
 python3 python3-pytest python3-cryptography python3-dbusmock dbus
 faketime uacme certbot haproxy
 libldns-dev knot knot-dnsutils unbound
 debhelper dpkg-dev fakeroot lintian"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# The newest Pebble, from Debian unstable, for the integration tests to run against besides the
# system's Pebble 2.4 (bookworm's). It is downloaded and unpacked into build-pebble/ at the
# repository's root (ignored by git), never installed: a private apt configuration (sources,
# lists and caches in a temporary directory) leaves the system's apt state and packages alone.
# It fails loudly: CI must not run without it. ACMED_PEBBLE_NEW_DIR moves it elsewhere.
# --no-newest-pebble (demo.sh): the system's Pebble is all the demo needs.
[ "${1:-}" = "--no-newest-pebble" ] && exit 0
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${ACMED_PEBBLE_NEW_DIR:-$ROOT/build-pebble}
die() { echo "deps.sh: newest Pebble (Debian unstable): $*" >&2; exit 1; }

# The mirror and keyring of the machine's own Debian sources (deb822 or one-line format).
MIRROR=""; KEYRING=""
if [ -r /etc/apt/sources.list.d/debian.sources ]; then
	MIRROR=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
	KEYRING=$(awk '/^Signed-By:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$MIRROR" ] && [ -r /etc/apt/sources.list ]; then
	MIRROR=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
		/etc/apt/sources.list)
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}
KEYRING=${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
[ -r "$KEYRING" ] || die "no archive keyring at $KEYRING"

TMP=$(mktemp -d /tmp/acmed-pebble-apt.XXXXXX) || die "mktemp failed"
trap 'rm -rf "$TMP"' EXIT
chmod 0755 "$TMP"
mkdir -p "$TMP/lists/partial" "$TMP/cache/archives/partial" "$TMP/dl"
# apt downloads as the unprivileged _apt user when run as root: let it write there
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
	chown _apt "$TMP/lists/partial" "$TMP/cache/archives/partial" "$TMP/dl"
fi
echo "deb [signed-by=$KEYRING] $MIRROR unstable main" > "$TMP/sources.list"
# Read after the system's configuration: only the sources, lists and caches are replaced, and the
# hooks that would refresh other tools' caches after an update are not run.
cat > "$TMP/apt.conf" <<CONF
Dir::Etc::sourcelist "$TMP/sources.list";
Dir::Etc::sourceparts "-";
Dir::State::Lists "$TMP/lists";
Dir::Cache "$TMP/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
CONF
APT="-c $TMP/apt.conf"
echo "newest Pebble: looking up 'pebble' in $MIRROR unstable"
# shellcheck disable=SC2086
apt-get $APT -q update >"$TMP/update.log" 2>&1 || { cat "$TMP/update.log" >&2; die "apt-get update failed"; }
# apt-get update exits 0 on some fetch failures: the version found is what counts
# shellcheck disable=SC2086
VERSION=$(apt-cache $APT madison pebble 2>/dev/null |
	awk -F' [|] ' '$3 ~ / unstable\/main / { print $2; exit }')
[ -n "$VERSION" ] || { cat "$TMP/update.log" >&2; die "no 'pebble' package found in $MIRROR unstable"; }

if [ -x "$DEST/usr/bin/pebble" ] && [ -x "$DEST/usr/bin/pebble-challtestsrv" ] &&
	[ "$(cat "$DEST/VERSION" 2>/dev/null)" = "$VERSION" ]; then
	echo "newest Pebble: $VERSION already unpacked in $DEST"
	exit 0
fi
# shellcheck disable=SC2086
(cd "$TMP/dl" && apt-get $APT -q download "pebble=$VERSION") >"$TMP/download.log" 2>&1 ||
	{ cat "$TMP/download.log" >&2; die "apt-get download pebble=$VERSION failed"; }
DEB=$(ls "$TMP"/dl/pebble_*.deb 2>/dev/null | head -n 1)
[ -n "$DEB" ] || die "apt-get download left no .deb"
rm -rf "$DEST.new"
dpkg-deb -x "$DEB" "$DEST.new" || die "dpkg-deb -x $DEB failed"
[ -x "$DEST.new/usr/bin/pebble" ] && [ -x "$DEST.new/usr/bin/pebble-challtestsrv" ] ||
	die "$DEB holds no usr/bin/pebble and usr/bin/pebble-challtestsrv"
"$DEST.new/usr/bin/pebble" -version >/dev/null 2>&1 || die "the unpacked pebble does not run on this machine"
echo "$VERSION" > "$DEST.new/VERSION"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
echo "newest Pebble: $VERSION unpacked in $DEST ($("$DEST/usr/bin/pebble" -version))"
