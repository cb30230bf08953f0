# ACME profiles: `profile:` sent in newOrder, checked against the directory's meta.profiles; a 6-day certificate scheduled on time.
"""Issue 10, "Profiles".

The newest Pebble offers `default` (90 days) and `shortlived` (6 days), as Let's Encrypt offers
`classic`, `tlsserver` and `shortlived`. A certificate with `profile: shortlived` is ordered with it,
lives 6 days, and its renewal is due within that life (half of it, or the CA's ARI window). A profile
the CA does not list fails that certificate with the CA's profiles named, before any newOrder is sent;
Pebble 2.4 lists none, and says so.
"""
import datetime
import json

import pytest

import pebble_env as pe

PROFILES = {"default": {"description": "90 days", "validityPeriod": 7776000},
            "shortlived": {"description": "6 days", "validityPeriod": 518400}}
pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0, config={"profiles": PROFILES})]

ISSUE_TIMEOUT = 180
DAY = 86400


def test_shortlived_profile_six_days_and_renewal_within(acmed, proxy, pebble):
    if not pebble.build.newest:
        pytest.skip("Pebble 2.4 has no profiles (test_unknown_profile covers it)")
    certs = [{"name": "short", "key_type": "ecdsa-p256", "domains": ["short.profile.example.com"],
              "profile": "shortlived"}]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    orders = proxy.log.select(kind="newOrder", method="POST", status=201)
    assert len(orders) == 1 and orders[0]["payload"]["profile"] == "shortlived", orders
    cert = pe.read_pem_certs((acmed.outputs["short"] / "cert.pem").read_bytes())[0]
    nb, na = cert.not_valid_before.timestamp(), cert.not_valid_after.timestamp()
    assert 6 * DAY - 60 <= na - nb <= 6 * DAY + 60, (nb, na)
    st = {c["name"]: c for c in json.loads(acmed.run("status", "--json").stdout)["certificates"]}["short"]
    # due within the 6 days, not at the 30 days before expiry a 90-day rule would say
    assert st["state"] == "valid", st
    assert st["next_action"] == "renew", st
    due = datetime.datetime.fromisoformat(st["next_at"].replace("Z", "+00:00")).timestamp()
    assert nb + DAY <= due <= na - DAY, (nb, st["next_at"], na)


def test_unknown_profile_names_the_cas_profiles(acmed, proxy, pebble):
    certs = [{"name": "nope", "key_type": "ecdsa-p256", "domains": ["nope.profile.example.com"],
              "profile": "tlsserver"}]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=60)
    assert r.rc == 1, r.describe()
    if pebble.build.newest:
        assert 'CA pebble has no profile "tlsserver"; its profiles: ' in r.stderr, r.stderr
        assert "default" in r.stderr and "shortlived" in r.stderr, r.stderr
    else:
        assert "CA pebble offers no profiles (its directory lists none): remove profile: tlsserver" in r.stderr, \
            r.stderr
    assert proxy.log.count(kind="newOrder", method="POST") == 0, proxy.log.by_kind()
    st = {c["name"]: c for c in json.loads(acmed.run("status", "--json").stdout)["certificates"]}["nope"]
    assert "tlsserver" in (st["last_error"] or ""), st
