#!/bin/sh
# tests/deps.sh - install what building, testing and the demo need (Debian 12; run as root).
set -eu
PKGS="build-essential pkg-config meson ninja-build
 libevent-dev libssl-dev libcurl4-openssl-dev libyaml-dev libsystemd-dev libjansson-dev
 libcmocka-dev clang libclang-rt-14-dev valgrind
 pebble openssl ca-certificates curl
 python3 python3-pytest python3-cryptography python3-dbusmock dbus
 faketime uacme"
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
