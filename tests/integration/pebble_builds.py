# Which Pebbles the integration tests run against (Debian 12's 2.4, Debian unstable's newest) and what differs between them.
"""The newest Pebble is Debian unstable's package, unpacked by tests/deps.sh into build-pebble/
(ACMED_PEBBLE_NEW_DIR moves it), never installed; ACMED_PEBBLES picks the ones a run uses."""

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PEBBLE_BIN = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV_BIN = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"
PEBBLE_NEW_DIR = Path(os.environ.get("ACMED_PEBBLE_NEW_DIR") or REPO / "build-pebble")


class PebbleBuild:
    """One Pebble the tests run against, and what differs from one version to the other.

    id:             the pytest id ("pebble2.4", "pebble-new")
    version:        the Debian package version (for messages)
    newest:         Debian unstable's Pebble (2.10 when this was written): renewalInfo (ARI,
                    RFC 9773; since 2.6) in the directory, real `replaces` checks (alreadyReplaced),
                    profiles (2.7), certificates of 90 days by default, a User-Agent required on
                    every request and a token-less dns-persist-01 challenge offered (2.10)
    """

    def __init__(self, ident, pebble_bin, challtestsrv_bin, newest, where):
        self.id = ident
        self.pebble_bin = str(pebble_bin)
        self.challtestsrv_bin = str(challtestsrv_bin)
        self.newest = newest
        self.where = where          # how to get it, for the failure message
        self._version = None

    def installed(self):
        return os.access(self.pebble_bin, os.X_OK) and os.access(self.challtestsrv_bin, os.X_OK)

    @property
    def version(self):
        if self._version is None:
            if self.newest:
                try:
                    self._version = (PEBBLE_NEW_DIR / "VERSION").read_text().strip()
                except OSError:
                    self._version = "?"
            else:
                p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "pebble"], capture_output=True, text=True)
                self._version = p.stdout.strip() or "?"
        return self._version

    @property
    def has_ari(self):
        """Its directory lists renewalInfo (ARI) and it answers it."""
        return self.newest

    @property
    def renewal_info_path(self):
        """Path prefix of its renewalInfo resource (wfe.go renewalInfoPath), None without ARI."""
        return "/draft-ietf-acme-ari-03/renewalInfo" if self.newest else None

    @property
    def default_validity(self):
        """Lifetime (seconds) of its certificates when the config sets none (ca.go defaultValidityPeriod)."""
        return 7776000 if self.newest else 157766400

    @property
    def challtestsrv_dns_flag(self):
        """2.4's challtestsrv takes -dns01 ADDR; the newer one -dnsserver ADDR."""
        return "-dnsserver" if self.newest else "-dns01"

    def example_config(self):
        """The JSON config its package ships (usr/share/doc/pebble/examples/pebble-config.json), or None."""
        root = PEBBLE_NEW_DIR if self.newest else Path("/")
        path = root / "usr/share/doc/pebble/examples/pebble-config.json"
        try:
            return json.loads(path.read_text())["pebble"]
        except (OSError, ValueError, KeyError):
            return None

    def config(self, base, extra):
        """Pebble's JSON config: `extra` keys added to `base`.  certificateValidityPeriod is read by
        2.4 only (the newest one ignores it: a profile's validityPeriod counts), so for the newest it
        becomes the validityPeriod of its only profile, "default"."""
        cfg = dict(base)
        extra = dict(extra)
        if self.newest and "certificateValidityPeriod" in extra and "profiles" not in extra:
            cfg["profiles"] = {"default": {"description": "acmed tests",
                                           "validityPeriod": int(extra.pop("certificateValidityPeriod"))}}
        cfg.update(extra)
        return cfg

    def __repr__(self):
        return f"PebbleBuild({self.id} {self.version})"


PEBBLE_24 = PebbleBuild("pebble2.4", PEBBLE_BIN, CHALLTESTSRV_BIN, False,
                        "Debian 12's package 'pebble' (tests/deps.sh)")
PEBBLE_NEW = PebbleBuild("pebble-new", PEBBLE_NEW_DIR / "usr" / "bin" / "pebble",
                         PEBBLE_NEW_DIR / "usr" / "bin" / "pebble-challtestsrv", True,
                         f"Debian unstable's package 'pebble' unpacked in {PEBBLE_NEW_DIR} (tests/deps.sh)")
PEBBLE_BUILDS = {b.id: b for b in (PEBBLE_24, PEBBLE_NEW)}


def pebble_builds_selected():
    """The Pebbles the integration tests run against: $ACMED_PEBBLES (comma-separated ids,
    e.g. "pebble-new"), else both."""
    want = [x.strip() for x in (os.environ.get("ACMED_PEBBLES") or "").split(",") if x.strip()]
    if not want:
        return list(PEBBLE_BUILDS.values())
    unknown = [w for w in want if w not in PEBBLE_BUILDS]
    if unknown:
        raise ValueError(f"ACMED_PEBBLES: unknown {unknown}; known: {sorted(PEBBLE_BUILDS)}")
    return [PEBBLE_BUILDS[w] for w in want]
