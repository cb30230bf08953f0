# acmed against what only the newest Pebble has: its own ARI (renewalInfo, replaces, alreadyReplaced) and its shipped defaults.
"""Pebble 2.4 (Debian 12) has no ARI; the newest Pebble (Debian unstable, tests/deps.sh) answers
renewalInfo itself (RFC 9773: a window around 1/3 of the lifetime before notAfter, Retry-After
6 h), checks `replaces` on new orders (the certificate must be one of the account's, and not
replaced already: 409 alreadyReplaced) and lets a test set a certificate's answer through its
management API.  Nothing here is emulated by the fault proxy: it only counts and passes through.
"""
import datetime
import json
import re
import time

import pytest

import pebble_env as pe
from faultproxy import ari_cert_id
from test_renewal import fmt, renewal_times, restore_previous_generation, utc_epoch

pytestmark = [pytest.mark.acmed,
              pytest.mark.pebble_builds("pebble-new", reason="Pebble 2.4 has no ARI, profiles or shipped "
                                                             "example config of this kind")]

DAY = 86400
RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$")


def rfc3339_epoch(s):
    """Pebble's RFC 3339 UTC time (Go's RFC3339Nano: fractional seconds optional) -> epoch seconds."""
    m = RFC3339.match(s)
    assert m, f"not an RFC 3339 UTC time: {s!r}"
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + float(m.group(2) or 0)


def leaf_of(acmed, name):
    return pe.read_pem_certs((acmed.outputs[name] / "cert.pem").read_bytes())[0]


def cert_epoch(dt):
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def one(name):
    return {"name": name, "key_type": "ecdsa-p256", "domains": [f"{name}.new.example.com", f"www.{name}.new.example.com"]}


@pytest.mark.pebble(nonce_reject=0)
def test_real_ari_window_sets_the_renewal_time(acmed, proxy, pebble):
    """The daemon issues a certificate, then asks the newest Pebble's renewalInfo for it (GET on
    Pebble's own path, the RFC 9773 CertID of the new certificate), logs the window Pebble gave and
    schedules the renewal inside it; status agrees; a restart within Pebble's Retry-After (6 h)
    asks nothing again and keeps the same instant."""
    certs = [one("real")]
    acmed.write_config(certs)
    d = acmed.spawn("run", env={"TZ": "UTC"})
    m = d.wait_for_stderr(r"\[real\] certificate valid until \S+ \S+; renewal at (\S+ \S+) \(ARI\)", timeout=60)
    text = d.stderr
    chosen = utc_epoch(m.group(1))
    # the daemon says the certificate was issued, although its renewal time waits for the CA's window
    assert re.search(r"\[real\] certificate issued for real\.new\.example\.com, valid until ", text), text[-3000:]
    leaf = pe.verify_output_dir(acmed.outputs["real"], certs[0]["domains"], "ecdsa-p256", pebble.root_path)
    cid = ari_cert_id(leaf)

    ari = proxy.log.select(kind="renewalInfo")
    assert [(e["method"], e["path"], e["status"], e["upstream_status"]) for e in ari] == \
        [("GET", f"{pebble.build.renewal_info_path}/{cid}", 200, 200)], ari
    assert not proxy.ari_enabled and not proxy.ari_hits, "the proxy answered renewalInfo itself"
    orders = proxy.log.select(kind="newOrder", status=201)
    assert len(orders) == 1 and "replaces" not in orders[0]["payload"], orders
    assert ari[0]["mono"] > proxy.log.select(kind="cert", status=200)[-1]["mono"]

    # what Pebble answers for this certificate, asked of Pebble directly
    status, retry_after, body = pebble.renewal_info(cid)
    assert status == 200 and retry_after == str(6 * 3600), (status, retry_after, body)
    start = rfc3339_epoch(body["suggestedWindow"]["start"])
    end = rfc3339_epoch(body["suggestedWindow"]["end"])
    nb, na = cert_epoch(leaf.not_valid_before), cert_epoch(leaf.not_valid_after)
    assert nb <= start < end <= na + 1, (body, nb, na)
    w = re.search(r"\[real\] ARI window (\S+ \S+) \.\. (\S+ \S+)$", text, re.M)
    assert w, f"no '[real] ARI window ... .. ...' line:\n{text[-3000:]}"
    assert (utc_epoch(w.group(1)), utc_epoch(w.group(2))) == (int(start), int(end)), \
        f"acmed logged the window {w.group(0)!r}, Pebble gives {body['suggestedWindow']}"
    assert int(start) <= chosen <= end, f"renewal at {fmt(chosen)} outside Pebble's window {fmt(start)} .. {fmt(end)}"

    r = acmed.run("status", "--json")
    assert r.rc == 0, r.describe()
    st = {c["name"]: c for c in json.loads(r.stdout)["certificates"]}["real"]
    assert st["ari"], st
    assert (rfc3339_epoch(st["ari"]["window_start"]), rfc3339_epoch(st["ari"]["window_end"])) == (int(start), int(end))
    assert st["next_at"] == st["ari"]["chosen"] and rfc3339_epoch(st["next_at"]) == chosen, st
    assert d.stop() == 0

    mark = proxy.log.mark()
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    assert proxy.log.count(kind="renewalInfo", since=mark) == 0, "renewalInfo asked again before Retry-After"
    assert proxy.log.count(kind="newOrder", since=mark) == 0
    again = renewal_times(r.stderr, "real")
    assert again and again[-1] == chosen, f"renewal time moved: {fmt(chosen)} -> {[fmt(t) for t in again]}"


def issue_with_serial_pebble_finds(acmed, stem, tries=8):
    """Issue a certificate whose serial Pebble can look up for `replaces`.

    Pebble files an issued certificate under hex(serial.Bytes()) but looks a `replaces` CertID up
    by the hex of its serial bytes as sent, which RFC 9773 makes the DER content: a serial whose
    high bit is set keeps its leading 0x00 there, and Pebble answers 500 "could not find an order
    for the given certificate" (about one serial in 256; acmed's CertID is the RFC's, and Pebble's
    own renewalInfo finds it).  acmed then orders once more without `replaces` (order.c,
    replaces_refusal), which is not what these tests are about: a certificate with such a serial
    is set aside and another name issued; returns (certs, leaf)."""
    for i in range(tries):
        certs = [one(f"{stem}{i}" if i else stem)]
        acmed.write_config(certs)
        r = acmed.run_once(env={"TZ": "UTC"})
        assert r.rc == 0, r.describe()
        acmed.verify(certs)
        leaf = leaf_of(acmed, certs[0]["name"])
        if leaf.serial_number.bit_length() % 8:
            return certs, leaf
    pytest.fail(f"{tries} serials in a row with the high bit set")


@pytest.mark.pebble(nonce_reject=0)
def test_real_replaces_then_already_replaced(acmed, proxy, pebble):
    """Pebble is told (management API) to ask for the certificate's replacement now: acmed's next run
    fetches that window from Pebble, orders with `replaces` = the certificate's CertID, and Pebble
    accepts it.  Then the replaced certificate comes back (an old generation restored): acmed asks
    to replace it again, Pebble refuses (409 alreadyReplaced), and acmed orders without `replaces`."""
    certs, old = issue_with_serial_pebble_finds(acmed, "repl")
    name = certs[0]["name"]
    old_cid = ari_cert_id(old)
    old_pem = (acmed.outputs[name] / "cert.pem").read_bytes()
    now = time.time()
    window = {"suggestedWindow": {"start": datetime.datetime.utcfromtimestamp(now - 2 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  "end": datetime.datetime.utcfromtimestamp(now - DAY).strftime("%Y-%m-%dT%H:%M:%SZ")},
              "explanationURL": "https://pebble.example/incident/7"}
    assert pebble.set_renewal_info(old_pem, window) == 200
    assert pebble.renewal_info(old_cid)[2] == window

    mark = proxy.log.mark()
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    ari = proxy.log.select(kind="renewalInfo", since=mark)
    assert [(e["path"], e["upstream_status"]) for e in ari] == [(f"{pebble.build.renewal_info_path}/{old_cid}", 200)]
    assert "explanation: https://pebble.example/incident/7" in r.stderr, r.stderr[-3000:]
    orders = proxy.log.select(kind="newOrder", since=mark)
    assert [e["status"] for e in orders] == [201], [(e["status"], e["payload"], e["resp_body"]) for e in orders]
    assert orders[0]["payload"].get("replaces") == old_cid, orders[0]["payload"]
    new = leaf_of(acmed, name)
    assert new.serial_number != old.serial_number
    pe.wait_until(lambda: "has been marked as replaced" in pebble.pebble_log.read_text(errors="replace"), 10,
                  what="Pebble marking the old certificate replaced")

    gen = restore_previous_generation(acmed.outputs[name])
    assert leaf_of(acmed, name).serial_number == old.serial_number, gen
    mark = proxy.log.mark()
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    orders = proxy.log.select(kind="newOrder", since=mark)
    assert [e["status"] for e in orders] == [409, 201], [(e["status"], e["payload"]) for e in orders]
    assert orders[0]["payload"].get("replaces") == old_cid
    assert orders[0]["resp_body"]["type"] == "urn:ietf:params:acme:error:alreadyReplaced", orders[0]["resp_body"]
    assert orders[0]["upstream_status"] == 409, "the 409 is Pebble's own, not the proxy's"
    assert "replaces" not in orders[1]["payload"], orders[1]["payload"]
    newest = leaf_of(acmed, name)
    assert newest.serial_number not in (old.serial_number, new.serial_number)


@pytest.mark.slow
@pytest.mark.pebble(defaults=True)
def test_issue_with_the_newest_pebbles_defaults(acmed_direct, pebble):
    """The newest Pebble as its package ships it, no proxy in between: its example config (profiles
    "default" of 90 days and "shortlived" of 6 days, picked at random for an order that names none;
    ECDSA issuers; Retry-After 3 s on authorizations and 5 s on orders), random validation delays,
    5 % of good nonces rejected, authorizations reused half the time.  Every key type is issued and
    checked; a second run orders nothing and leaves every byte alone."""
    acmed = acmed_direct
    example = pebble.build.example_config()
    lifetimes = {p["validityPeriod"] for p in example["profiles"].values()}
    certs = [{"name": f"dflt-{kt}", "key_type": kt, "domains": [f"{kt}.dflt.example.com", f"www.{kt}.dflt.example.com"]}
             for kt in ("ecdsa-p256", "ecdsa-p384", "rsa-2048")]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=240)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert re.search(r"done: 3 issued, 0 failed", r.stderr), r.stderr[-3000:]
    for c in certs:
        leaf = leaf_of(acmed, c["name"])
        life = cert_epoch(leaf.not_valid_after) - cert_epoch(leaf.not_valid_before) + 1
        assert life in lifetimes, f"{c['name']}: lifetime {life} s is none of the profiles' {sorted(lifetimes)}"

    before = {c["name"]: pe.snapshot_files(acmed.outputs[c["name"]]) for c in certs}
    r = acmed.run_once(timeout=120)
    assert r.rc == 0, r.describe()
    assert re.search(r"done: 0 issued, 0 failed", r.stderr), r.stderr[-3000:]
    for c in certs:
        assert pe.snapshot_files(acmed.outputs[c["name"]]) == before[c["name"]], c["name"]
