#!/bin/sh
# tests/package.sh - the Debian package: built (dpkg-buildpackage, in a copy of the tree), lintian clean
# (no error or warning), installed on this machine and purged again. Prints "N passed, N failed, N skipped".
# Run as root (it installs the package); tests/run.sh runs it last.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/acmed-package-XXXXXX)
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "package: FAILED: $*"; }
check() { # description, command...
	what=$1
	shift
	if "$@" >"$WORK/check.log" 2>&1; then ok; else bad "$what"; sed 's/^/    /' "$WORK/check.log" | tail -n 20; fi
}
finish() {
	dpkg --purge acmed >/dev/null 2>&1 || true
	rm -rf "$WORK"
	echo "$pass passed, $fail failed, 0 skipped package"
	exit 0
}

# A copy of the tracked files: the build leaves obj-*/ and debian/acmed/ behind.
mkdir -p "$WORK/src"
(cd "$ROOT" && git ls-files -z | xargs -0 tar cf -) | tar xf - -C "$WORK/src"
if (cd "$WORK/src" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -b -us -uc) >"$WORK/build.log" 2>&1; then
	ok
else
	bad "dpkg-buildpackage"; tail -n 30 "$WORK/build.log"; finish
fi
DEB=$(ls "$WORK"/acmed_*_*.deb | head -n 1)
CHANGES=$(ls "$WORK"/acmed_*.changes | head -n 1)
check "lintian: no error or warning" lintian --fail-on error,warning "$CHANGES"

# Installed on this machine, as an admin would: dpkg -i.
check "dpkg -i" dpkg -i "$DEB"
check "the acmed user exists (sysusers.d), home /var/lib/acmed" \
	sh -c 'getent passwd acmed | cut -d: -f6 | grep -qx /var/lib/acmed'
check "/etc/acmed/acmed.yaml is a conffile" \
	sh -c 'dpkg-query -W -f="\${Conffiles}\n" acmed | grep -q "^ /etc/acmed/acmed.yaml "'
check "the installed configuration passes check-config" /usr/sbin/acmed -c /etc/acmed/acmed.yaml check-config
check "acmed.socket and acmed.service enabled" sh -c \
	'test -L /etc/systemd/system/sockets.target.wants/acmed.socket &&
	 test -L /etc/systemd/system/multi-user.target.wants/acmed.service'
check "acmed-tls-alpn.socket installed, not enabled (port 443 is usually a web server's)" sh -c \
	'test -f /lib/systemd/system/acmed-tls-alpn.socket &&
	 ! test -e /etc/systemd/system/sockets.target.wants/acmed-tls-alpn.socket'
check "the units name the installed binary and configuration" \
	grep -qx "ExecStart=/usr/sbin/acmed -c /etc/acmed/acmed.yaml run" /lib/systemd/system/acmed.service
check "man pages installed" test -f /usr/share/man/man8/acmed.8.gz -a -f /usr/share/man/man5/acmed.yaml.5.gz
check "polkit rule installed" test -f /usr/share/polkit-1/rules.d/50-acmed.rules
check "dpkg --purge" dpkg --purge acmed
check "purged: no binary, no unit links, no /etc/acmed" sh -c \
	'! test -e /usr/sbin/acmed && ! test -e /etc/systemd/system/multi-user.target.wants/acmed.service &&
	 ! test -e /etc/acmed/acmed.yaml'
finish
