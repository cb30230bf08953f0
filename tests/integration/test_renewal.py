# acmed's renewal timing, counted at the fault proxy: ARI (RFC 9773) windows and `replaces`, and renewal at 2/3 of life under a faked clock.
"""Renewal time (DESIGN.md "Errors and backoff", last item):

- with ARI (the proxy adds renewalInfo to Pebble's directory and answers it): a uniformly random
  instant inside suggestedWindow, kept while the window is unchanged; `replaces` on the new
  order, dropped once after 409 alreadyReplaced;
- without ARI: when 1/3 of the lifetime is left (minus a spread of at most 1 h), tested on real
  Pebble certificates (5 years on 2.4, 90 days on the newest) with libfaketime shifting acmed's
  wall clock.

Each runs against both Pebbles; the newest one's own ARI is hidden by the proxy until a test turns
the proxy's on (its real ARI is tested in test_pebble_new.py).

The proxy's ARI support and CertID arithmetic are checked first (marker harness).
"""
import collections
import datetime
import http.client
import json
import math
import os
import re
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import pebble_env as pe
import waits
from faultproxy import PROBLEM_JSON, Request, Response, Rule, ari_cert_id, b64u

DAY = 86400
LOG_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)?(?:[+-]\d{4})? acmed ")


def utc_epoch(s):
    """'YYYY-MM-DD HH:MM:SS' (acmed's log format, run with TZ=UTC) -> epoch seconds."""
    return datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()


def cert_epoch(dt):
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def renewal_times(stderr, name):
    """Every 'renewal at YYYY-MM-DD HH:MM:SS' acmed logged for certificate NAME, as epoch seconds (TZ=UTC)."""
    rx = re.compile(r"\[" + re.escape(name) + r"\] .*renewal at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
    return [utc_epoch(m.group(1)) for m in map(rx.search, stderr.splitlines()) if m]


def fmt(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def issue_one(acmed, proxy, name, key_type="ecdsa-p256"):
    """Issue one certificate while the CA offers no ARI (the newest Pebble's own is hidden until the
    test's enable_ari()); returns (certs, leaf)."""
    proxy.hide_ari()
    certs = [{"name": name, "key_type": key_type,
              "domains": [f"{name}.renew.example.com", f"www.{name}.renew.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    return certs, leaf(acmed, name)


def leaf(acmed, name):
    return pe.read_pem_certs((acmed.outputs[name] / "cert.pem").read_bytes())[0]


# ---------------------------------------------------------------- proxy self-checks (ARI)

def _cert_with(serial, aki, issuer_key=None, days=90):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.utcnow()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ari.example")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
            .sign(issuer_key or key, hashes.SHA256()))


@pytest.mark.harness
def test_ari_cert_id_rfc9773_vector():
    """RFC 9773 appendix A: AKI 69:88:5B:..:C8:D4, serial 0x87654321 (DER 00 87 65 43 21)."""
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    c = _cert_with(0x87654321, aki)
    assert ari_cert_id(c) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    pem = c.public_bytes(serialization.Encoding.PEM)
    assert ari_cert_id(pem) == ari_cert_id(pem.decode()) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    # high bit clear: no leading zero byte; 0x80 needs one
    assert ari_cert_id(_cert_with(0x7F0102, aki)).endswith("." + b64u(bytes.fromhex("7F0102")))
    assert ari_cert_id(_cert_with(0x80, aki)).endswith("." + b64u(b"\x00\x80"))


@pytest.mark.harness
def test_proxy_serves_renewal_info(pebble, proxy):
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=10, context=pebble.tls_ca.client_context())

    def get(path, method="GET"):
        conn.request(method, path, body=b"{}" if method == "POST" else None, headers=pe.UA)
        r = conn.getresponse()
        return r, r.read()

    r, body = get("/dir")
    if pebble.build.has_ari:      # the newest Pebble's own renewalInfo passes through (Host kept)
        own = f"https://127.0.0.1:{proxy.port}{pebble.build.renewal_info_path}"
        assert json.loads(body)["renewalInfo"] == own
        proxy.hide_ari()
        assert "renewalInfo" not in json.loads(get("/dir")[1])     # a CA without ARI, for a while
    else:
        assert "renewalInfo" not in json.loads(body)           # off by default: Pebble 2.4 has none
    proxy.enable_ari()
    r, body = get("/dir")
    assert json.loads(body)["renewalInfo"] == f"https://127.0.0.1:{proxy.port}/renewalInfo"
    r, _ = get("/renewalInfo/AA.BB")
    if pebble.build.has_ari:
        # a CertID without a window of the proxy's goes to Pebble's own renewalInfo, which knows no
        # such issuer key ("AA" is no SKID of its intermediate): 400 malformed
        assert r.status == 400
    else:
        assert r.status == 404                                  # unknown certificate
    start = datetime.datetime(2031, 1, 2, 3, 4, 5)
    proxy.set_ari_window("AA.BB", start, start + datetime.timedelta(days=2),
                         explanation_url="https://ca.example/why", retry_after=3600)
    r, body = get("/renewalInfo/AA.BB")
    assert r.status == 200 and r.getheader("Retry-After") == "3600"
    assert r.getheader("Content-Type") == "application/json"
    assert json.loads(body) == {"suggestedWindow": {"start": "2031-01-02T03:04:05Z", "end": "2031-01-04T03:04:05Z"},
                                "explanationURL": "https://ca.example/why"}
    proxy.set_ari_window("*", 1900000000, 1900086400)
    r, body = get("/renewalInfo/CC.DD")
    assert json.loads(body)["suggestedWindow"] == {"start": "2030-03-17T17:46:40Z", "end": "2030-03-18T17:46:40Z"}
    assert get("/renewalInfo/AA.BB", "POST")[0].status == 405   # RFC 9773: an unauthenticated GET
    ents = proxy.log.select(kind="renewalInfo")
    first = 400 if pebble.build.has_ari else 404
    assert [(e["method"], e["status"]) for e in ents] == [("GET", first), ("GET", 200), ("GET", 200), ("POST", 405)]
    assert all(e["upstream_status"] is None for e in ents[1:]) and proxy.ari_hits["AA.BB"] == 2
    if pebble.build.has_ari:
        assert ents[0]["upstream_status"] == 400
        assert ents[0]["upstream_path"] == f"{pebble.build.renewal_info_path}/AA.BB"
    else:
        assert ents[0]["upstream_status"] is None

    # a certificate downloaded through the proxy gets a window derived from its lifetime (when the
    # CA has no renewalInfo of its own to ask)
    proxy.clear_ari_windows()
    c = _cert_with(0x1234, b"\x01" * 20, days=90)
    cid = ari_cert_id(c)
    req = Request("POST", "/certZ/1234", {"Host": f"127.0.0.1:{proxy.port}"}, b"", None, 0)
    proxy._observe_upstream(req, Response(200, [], c.public_bytes(serialization.Encoding.PEM)))
    r, body = get(f"/renewalInfo/{cid}")
    if pebble.build.has_ari:
        assert r.status == 400 and proxy.log.select(kind="renewalInfo")[-1]["upstream_status"] == 400
    else:
        w = json.loads(body)["suggestedWindow"]
        nb = cert_epoch(c.not_valid_before)
        assert w["start"] == fmt(nb + 60 * DAY).replace(" ", "T") + "Z"


@pytest.mark.harness
def test_proxy_already_replaced_once(pebble, proxy):
    rule = proxy.already_replaced()
    conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=10, context=pebble.tls_ca.client_context())

    def order(payload):
        prot = b64u(json.dumps({"alg": "ES256", "kid": "k", "nonce": "n", "url": "u"}).encode())
        body = json.dumps({"protected": prot, "payload": b64u(json.dumps(payload).encode()), "signature": "AA"})
        conn.request("POST", "/order-plz", body=body, headers={**pe.UA, "Content-Type": "application/jose+json"})
        r = conn.getresponse()
        return r, r.read()

    r, _ = order({"identifiers": []})                                    # no "replaces": not matched
    assert r.status != 409
    r, body = order({"identifiers": [], "replaces": "AA.BB"})
    assert r.status == 409 and json.loads(body)["type"] == "urn:ietf:params:acme:error:alreadyReplaced"
    assert r.getheader("Replay-Nonce")
    r, _ = order({"identifiers": [], "replaces": "AA.BB"})              # once only
    assert r.status != 409
    assert rule.hits == 1 and rule.matches == 2


# ---------------------------------------------------------------- acmed: ARI

@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
def test_ari_window_in_the_past_renews_now_with_replaces(acmed, proxy):
    certs, old = issue_one(acmed, proxy, "arip")
    cid = ari_cert_id(old)
    now = time.time()
    proxy.enable_ari()
    proxy.set_ari_window(cid, now - 2 * DAY, now - DAY, explanation_url="https://ca.example/incident/42")
    mark = proxy.log.mark()
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    ari = proxy.log.select(kind="renewalInfo", since=mark)
    assert ari, f"acmed never fetched renewalInfo: {proxy.log.by_kind(since=mark)}"
    assert all(e["method"] == "GET" for e in ari), [e["method"] for e in ari]
    assert ari[0]["path"] == f"/renewalInfo/{cid}"
    orders = proxy.log.select(kind="newOrder", since=mark)
    assert [e["status"] for e in orders] == [201], [(e["status"], e["payload"]) for e in orders]
    assert orders[0]["payload"].get("replaces") == cid, orders[0]["payload"]
    assert ari[0]["mono"] < orders[0]["mono"]
    new = leaf(acmed, "arip")
    assert new.serial_number != old.serial_number


@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
def test_ari_already_replaced_retries_without_replaces(acmed, proxy):
    certs, old = issue_one(acmed, proxy, "arir")
    cid = ari_cert_id(old)
    now = time.time()
    proxy.enable_ari()
    proxy.set_ari_window(cid, now - 2 * DAY, now - DAY)
    rule = proxy.already_replaced()
    mark = proxy.log.mark()
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    orders = proxy.log.select(kind="newOrder", since=mark)
    assert [e["status"] for e in orders] == [409, 201], [(e["status"], e["payload"]) for e in orders]
    assert orders[0]["payload"].get("replaces") == cid
    assert "replaces" not in orders[1]["payload"], orders[1]["payload"]
    assert rule.hits == 1
    assert leaf(acmed, "arir").serial_number != old.serial_number


@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
def test_ari_server_internal_on_replaces_orders_without_it(acmed, proxy):
    """Pebble 2.10's answer when it cannot look the replaced certificate up (a serial whose DER
    starts with 0x00, about one in 256): a plain 500 serverInternal to the newOrder carrying
    `replaces`. The certificate still renews: the same run orders again without `replaces`."""
    certs, old = issue_one(acmed, proxy, "arie")
    cid = ari_cert_id(old)
    now = time.time()
    proxy.enable_ari()
    proxy.set_ari_window(cid, now - 2 * DAY, now - DAY)
    body = {"type": "urn:ietf:params:acme:error:serverInternal",
            "detail": "could not find an order for the given certificate: could not find order resulting in "
                      "the given certificate serial number"}
    rule = proxy.add_rule(Rule("respond", kind="newOrder", method="POST", payload_has="replaces", count=1,
                               status=500, headers={"Content-Type": PROBLEM_JSON}, body=body, nonce=True,
                               name="pebble-serial"))
    mark = proxy.log.mark()
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    orders = proxy.log.select(kind="newOrder", since=mark)
    assert [e["status"] for e in orders] == [500, 201], [(e["status"], e["payload"]) for e in orders]
    assert orders[0]["payload"].get("replaces") == cid
    assert "replaces" not in orders[1]["payload"], orders[1]["payload"]
    assert rule.hits == 1
    assert re.search(r"\[arie\] the CA refuses \"replaces\" \(POST \S+/order-plz: HTTP 500 "
                     r"urn:ietf:params:acme:error:serverInternal: could not find an order.*\); ordering without it",
                     r.stderr), r.stderr[-2000:]
    # a failure taken in stride: no CA outage, no backoff
    assert "unavailable" not in r.stderr, r.stderr[-2000:]
    assert leaf(acmed, "arie").serial_number != old.serial_number


def restore_previous_generation(out):
    """Point output_dir/current back at the generation before it (an old backup restored, say)."""
    cur = Path(os.readlink(out / "current")).name
    gens = sorted((p.name for p in out.iterdir() if p.name.startswith(".gen-") and p.is_dir()),
                  key=lambda n: int(n.split("-")[-1]))
    prev = [g for g in gens if g != cur]
    assert prev, f"no generation before {cur} in {out}: {gens}"
    tmp = out / ".current.test"
    os.symlink(prev[-1], tmp)
    os.replace(tmp, out / "current")
    return prev[-1]


@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
def test_ari_window_kept_across_a_restart_still_sends_replaces(acmed, proxy, pebble):
    """A window that asks for a replacement, kept in state_dir, makes the first order after a start:
    before the directory is loaded.  That order names the certificate in `replaces` all the same
    (it once went without: the CA's ARI was only known from its directory).  Here the certificate
    is an old one restored after its replacement: Pebble 2.4 ignores `replaces`; the newest Pebble
    checks it and answers 409 alreadyReplaced, and acmed orders once more without it."""
    certs, old = issue_one(acmed, proxy, "arik")
    cid = ari_cert_id(old)
    now = time.time()
    proxy.enable_ari()
    proxy.set_ari_window(cid, now - 2 * DAY, now - DAY)
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    orders = proxy.log.select(kind="newOrder")
    assert orders[-1]["status"] == 201 and orders[-1]["payload"].get("replaces") == cid
    restore_previous_generation(acmed.outputs["arik"])
    assert leaf(acmed, "arik").serial_number == old.serial_number

    mark = proxy.log.mark()
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    # the window was kept (fetched < 6 h ago): no renewalInfo request, so no directory before the order
    assert proxy.log.count(kind="renewalInfo", since=mark) == 0, proxy.log.by_kind(since=mark)
    orders = proxy.log.select(kind="newOrder", since=mark)
    assert orders and orders[0]["payload"].get("replaces") == cid, [(e["status"], e["payload"]) for e in orders]
    if pebble.build.has_ari:
        assert [e["status"] for e in orders] == [409, 201], [(e["status"], e["resp_body"]) for e in orders]
        assert orders[0]["resp_body"]["type"] == "urn:ietf:params:acme:error:alreadyReplaced"
        assert "replaces" not in orders[1]["payload"]
    else:
        assert [e["status"] for e in orders] == [201], [(e["status"], e["resp_body"]) for e in orders]
    assert leaf(acmed, "arik").serial_number != old.serial_number


@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
def test_ari_window_next_week_no_renewal_time_inside_window(acmed, proxy):
    certs, old = issue_one(acmed, proxy, "ariw")
    before = pe.snapshot_files(acmed.outputs["ariw"])
    cid = ari_cert_id(old)
    start = int(time.time()) + 7 * DAY
    end = start + DAY
    proxy.enable_ari()
    proxy.set_ari_window(cid, start, end)
    mark = proxy.log.mark()
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    assert proxy.log.count(kind="newOrder", since=mark) == 0, proxy.log.by_kind(since=mark)
    assert proxy.log.count(kind="renewalInfo", since=mark) >= 1, "acmed never fetched renewalInfo"
    assert pe.snapshot_files(acmed.outputs["ariw"]) == before
    times = renewal_times(r.stderr, "ariw")
    assert times, f"no '[ariw] ... renewal at ...' line:\n{r.stderr[-3000:]}"
    chosen = times[-1]
    assert start <= chosen <= end, f"renewal at {fmt(chosen)} is outside the window {fmt(start)} .. {fmt(end)}"

    # a restart keeps the chosen instant (window unchanged, no Retry-After: next fetch in 6 h)
    mark = proxy.log.mark()
    r = acmed.run_once(env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    assert proxy.log.count(kind="newOrder", since=mark) == 0
    assert proxy.log.count(kind="renewalInfo", since=mark) == 0, "renewalInfo fetched again long before 6 h"
    again = renewal_times(r.stderr, "ariw")
    assert again and again[-1] == chosen, f"renewal time moved: {fmt(chosen)} -> {[fmt(t) for t in again]}"


# ---------------------------------------------------------------- acmed: 2/3 of life, faked clock

@pytest.mark.acmed
@pytest.mark.slow
@pytest.mark.pebble(nonce_reject=0)
def test_renewal_at_two_thirds_of_life_faketime(acmed, proxy, pebble):
    """Without renew_before and ARI acmed renews when 1/3 of the lifetime is left (minus at most 1 h
    of spread), on Pebble's own certificates: 5 years on Pebble 2.4 (not at +1202 d, at +1233 d),
    90 days on the newest (not at +51 d, at +69 d).  The newest Pebble's ARI stays hidden (issue_one):
    this is the rule for a CA without ARI (with it, acmed follows the CA's window: test_pebble_new.py)."""
    if pe.faketime_library() is None:
        pytest.skip("libfaketime not installed (Debian package 'faketime')")
    certs, old = issue_one(acmed, proxy, "life")
    nb, na = cert_epoch(old.not_valid_before), cert_epoch(old.not_valid_after)
    life = na - nb
    want = pebble.build.default_validity
    assert abs(life - want) <= DAY, (
        f"{pebble.build.id} certificate lifetime {life / DAY:.2f} days, expected its default {want / DAY:.2f}")
    due = na - life / 3
    margin = min(15 * DAY, life / 10)
    real = time.time()
    before_days = math.floor((due - margin - real) / DAY)
    after_days = math.ceil((due + margin - real) / DAY)
    assert real + after_days * DAY < na - DAY

    mark = proxy.log.mark()
    r = acmed.run_once(env={**pe.faketime_env(f"+{before_days}d"), "TZ": "UTC"})
    assert r.rc == 0, r.describe()
    stamps = [utc_epoch(m.group(1)) for m in map(LOG_STAMP.match, r.stderr.splitlines()) if m]
    assert stamps and abs(stamps[0] - (real + before_days * DAY)) < DAY, "libfaketime did not shift acmed's clock"
    assert proxy.log.count(kind="newOrder", since=mark) == 0, \
        f"renewed ~{margin / DAY:.0f} days before 2/3 of the lifetime"
    assert proxy.log.count(kind="renewalInfo", since=mark) == 0, "renewalInfo asked of a CA that lists none"
    times = renewal_times(r.stderr, "life")
    assert times, f"no '[life] ... renewal at ...' line:\n{r.stderr[-3000:]}"
    assert due - 3600 - 2 <= times[-1] <= due + 2, (
        f"renewal at {fmt(times[-1])}, expected 1/3 of the lifetime before notAfter: {fmt(due)} (- <= 1 h)")

    mark = proxy.log.mark()
    r = acmed.run_once(env={**pe.faketime_env(f"+{after_days}d"), "TZ": "UTC"})
    assert r.rc == 0, r.describe()
    orders = proxy.log.select(kind="newOrder", since=mark)
    assert [e["status"] for e in orders] == [201], [(e["status"], e["payload"]) for e in orders]
    acmed.verify(certs)
    assert leaf(acmed, "life").serial_number != old.serial_number


# ---------------------------------------------------------------- acmed: a fleet's renewalInfo checks
#
# The daemon states (at -v) the one-second slot each certificate's renewalInfo check is scheduled
# for: "[NAME] renewalInfo check scheduled for EPOCH".  acmed allows at most 10 checks a second per
# CA (scheduler_internal.h SCHED_ARI_RATE); the tests count checks per slot, and match what the proxy
# saw against the slots, rather than measuring how the requests happened to be spread in time.

ARI_RATE = 10
SLOT_RX = r"^renewalInfo check scheduled for (\d+)$"


def ari_slots(stderr):
    """{certificate name: [slot, ...]} from acmed's debug lines."""
    out = {}
    for x in waits.grep(stderr, SLOT_RX):
        out.setdefault(x.cert, []).append(int(re.match(SLOT_RX, x.msg).group(1)))
    return out


def fleet(acmed, proxy, tag, n):
    """n certificates issued by a CA without ARI yet (the newest Pebble's own hidden until the test
    makes the CA offer it); returns {name: CertID}."""
    certs = [{"name": f"{tag}{i}", "key_type": "ecdsa-p256", "domains": [f"{tag}{i}.fleet.example.com"]}
             for i in range(n)]
    acmed.write_config(certs)
    proxy.hide_ari()
    r = acmed.run_once(timeout=300)
    assert r.rc == 0, r.describe()
    return {c["name"]: ari_cert_id(leaf(acmed, c["name"])) for c in certs}


@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
def test_ari_checks_at_daemon_start_are_spread(acmed, proxy):
    """35 valid certificates, a CA that starts offering ARI, the daemon started: every certificate's
    renewalInfo is fetched once, scheduled at most 10 to a second (not 35 in one burst), and none
    reaches the CA before its slot; the windows are a week away, so nothing is renewed; a restart
    schedules no check at all (next check in 6 h) and keeps every renewal time."""
    n = 35
    ids = fleet(acmed, proxy, "fl", n)
    start = int(time.time()) + 7 * DAY
    proxy.enable_ari()
    proxy.set_ari_window("*", start, start + DAY)
    mark = proxy.log.mark()
    d = acmed.spawn("run", "-v", env={"TZ": "UTC"})
    # every answer taken in: acmed logs each certificate's new ARI window
    waits.wait_log(d, r"^ARI window ", count=n, what=f"{n} ARI windows taken in")
    slots = ari_slots(d.stderr)
    assert sorted(slots) == sorted(ids), f"checks scheduled for {sorted(slots)}"
    assert all(len(v) == 1 for v in slots.values()), f"a check scheduled twice: {slots}"
    per_slot = collections.Counter(v[0] for v in slots.values())
    assert max(per_slot.values()) <= ARI_RATE, f"more than {ARI_RATE} checks in one second: {sorted(per_slot.items())}"
    assert len(per_slot) >= math.ceil(n / ARI_RATE), f"{n} checks in {len(per_slot)} slots: {sorted(per_slot.items())}"

    got = proxy.log.select(kind="renewalInfo", since=mark)
    name_of = {f"/renewalInfo/{cid}": name for name, cid in ids.items()}
    assert sorted(e["path"] for e in got) == sorted(name_of), \
        f"renewalInfo requests {[e['path'] for e in got]} for {n} certificates (each once)"
    assert all(e["method"] == "GET" and e["status"] == 200 for e in got)
    early = [(name_of[e["path"]], e["t"], slots[name_of[e["path"]]][0]) for e in got
             if e["t"] < slots[name_of[e["path"]]][0]]
    assert not early, f"renewalInfo requests that reached the CA before their slot (name, arrival, slot): {early}"
    assert proxy.log.count(kind="newOrder", since=mark) == 0, proxy.log.by_kind(since=mark)
    chosen = {x.cert: x.times()[-1] for x in waits.grep(d.stderr, r"renewal at .* \(ARI\)$")}
    assert sorted(chosen) == sorted(ids) and all(start <= t <= start + DAY for t in chosen.values()), chosen
    d.stop()

    mark = proxy.log.mark()
    d2 = acmed.spawn("run", "-v", env={"TZ": "UTC"})
    # start-up scheduling is over once every certificate's renewal time is logged (the control
    # socket answers before that: under load the 2nd loaded CI run read the log too early)
    waits.wait_log(d2, r"renewal at .* \(ARI\)$", count=n, what=f"{n} ARI renewal times after the restart")
    waits.daemon_status(acmed, d2)
    assert not ari_slots(d2.stderr), "renewalInfo checks scheduled again after a restart"
    assert proxy.log.count(kind="renewalInfo", since=mark) == 0, "renewalInfo fetched again after a restart"
    again = {x.cert: x.times()[-1] for x in waits.grep(d2.stderr, r"renewal at .* \(ARI\)$")}
    assert again == chosen, "the ARI renewal times moved over a restart"
    d2.stop()


@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
def test_ari_checks_pause_while_renewalinfo_is_unavailable(acmed, proxy):
    """renewalInfo answers the maintenance 503 for everyone: once acmed has taken in the first failed
    check, the other certificates' checks wait (6 h) instead of each knocking at the CA: every
    request the CA sees is a check whose slot had come before that; no order, no warning per
    certificate."""
    n = 35
    ids = fleet(acmed, proxy, "un", n)
    proxy.enable_ari()
    proxy.set_ari_window("*", status=503, body={
        "type": "urn:acme:error:serverInternal",
        "detail": "The service is down for maintenance or had an internal error. "
                  "Check https://letsencrypt.status.io/ for more details."})
    mark = proxy.log.mark()
    d = acmed.spawn("run", "-v", env={"TZ": "UTC"})
    failed_rx = r"^renewalInfo: .*; asking again in 6 h$"
    first_failure = waits.wait_log(d, failed_rx, what="the first failed renewalInfo check taken in")[0]
    slots = ari_slots(d.stderr)
    assert sorted(slots) == sorted(ids) and all(len(v) == 1 for v in slots.values()), slots
    per_slot = collections.Counter(v[0] for v in slots.values())
    assert max(per_slot.values()) <= ARI_RATE, sorted(per_slot.items())
    # Every check acmed had scheduled is now due: a daemon that did not pause would have sent them
    # all once its loop has run past the last slot (the status round trip shows that it has).
    waits.wait_wall(max(per_slot) + 2)
    waits.daemon_status(acmed, d)
    # and every check that did go out has been answered and taken in
    pe.wait_until(lambda: len(waits.grep(d.stderr, failed_rx)) >= proxy.log.count(kind="renewalInfo", since=mark)
                  or not d.alive(), 120, what="every renewalInfo answer taken in")
    assert d.alive(), d.stderr[-3000:]
    got = proxy.log.select(kind="renewalInfo", since=mark)
    assert got and all(e["status"] == 503 for e in got), [(e["path"], e["status"]) for e in got]
    name_of = {f"/renewalInfo/{cid}": name for name, cid in ids.items()}
    assert len({e["path"] for e in got}) == len(got), "a certificate's renewalInfo fetched twice"
    late = [(name_of[e["path"]], slots[name_of[e["path"]]][0]) for e in got
            if slots[name_of[e["path"]]][0] > first_failure.stamp]
    assert not late, (f"checks sent after acmed knew renewalInfo was unavailable (at {first_failure.stamp:.3f}; "
                      f"name, slot): {late}")
    assert proxy.log.count(kind="newOrder", since=mark) == 0
    warnings = [line for line in d.stderr.splitlines() if "renewalInfo" in line and " warning" in line]
    assert not warnings, "a CA outage logged per certificate:\n" + "\n".join(warnings[:5])
    d.stop()
