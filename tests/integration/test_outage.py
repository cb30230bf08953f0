# acmed through CA trouble, counted at the fault proxy: maintenance 503s, connection refused, a slow CA, rateLimited, kill -9 mid-order, backoff across restarts.
"""What the CA sees while it is down, refusing or slow, and after acmed is killed.

DESIGN.md "Errors and backoff": CA unavailable is a state of the CA, not of each
certificate; one probe at a time (every 1/16 of the time the CA has been down, at least
40 s, at most 10 min, +-20 % jitter: sched_probe_delay); on
recovery the parked jobs resume; rateLimited waits for Retry-After; order URL,
failures and next attempt times survive restarts.  The proxy self-checks of the
new fault rules are here too (marker harness).
"""
import email.utils
import http.client
import json
import math
import re
import signal
import socket
import time

import pytest

import pebble_env as pe
from faultproxy import MAINTENANCE_BODY, PROBLEM_JSON, Rule, b64u, http_date

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? acmed (\w+): (?:\[([^\]]+)\] )?(.*)$")
# what a line about the CA being down, refusing or timing out says
OUTAGE_WORDS = re.compile(r"unavailable|maintenance|serverInternal|\b50[0-9]\b|refused|connect|timed? ?out",
                          re.I)
STAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?")


def certs_named(tag, n, key_type="ecdsa-p256"):
    return [{"name": f"{tag}{i}", "key_type": key_type, "domains": [f"{tag}{i}.{tag}.example.com"]}
            for i in range(n)]


def parse_log(stderr):
    """[(level, cert name or None, message)] of acmed's stderr lines."""
    out = []
    for line in stderr.splitlines():
        m = LOG_LINE.match(line)
        if m:
            out.append((m.group(2), m.group(3), m.group(4)))
    return out


def bursts(times, gap=2.0):
    """Group sorted instants into bursts (a new burst starts after `gap` seconds of silence)."""
    groups = []
    for t in sorted(times):
        if groups and t - groups[-1][-1] < gap:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


def summary(entries, t_ref=0.0):
    return [(round(e["mono"] - t_ref, 1), e["method"], e["kind"], e["status"]) for e in entries]


def check_state_change_log(stderr, ca, n_certs, max_down_lines, cause, max_parallel=4):
    """The outage is logged once per state change (and at most once per failed probe), with its
    cause (regex), the number of waiting certificates and the next probe time; recovery once;
    not per certificate.  Every line is printable ASCII (no bytes of a stale error buffer)."""
    junk = [line for line in stderr.splitlines() if any(not 32 <= ord(ch) < 127 for ch in line)]
    assert not junk, f"unprintable bytes in acmed's log: {junk[:3]}"
    lines = parse_log(stderr)
    down = [msg for _lvl, cert, msg in lines if cert is None and "unavailable" in msg.lower()]
    assert down, f"acmed never logged that CA {ca} is unavailable:\n{stderr[-3000:]}"
    assert re.search(cause, down[0], re.I), f"the cause ({cause}) is not in: {down[0]}"
    assert len(down) <= max_down_lines, (
        f"CA-down logged {len(down)} times for at most {max_down_lines} failed probes:\n" + "\n".join(down))
    assert ca in down[0], down[0]
    assert re.search(r"\b\d+\s+certificates?\b", down[0]), f"no count of waiting certificates in: {down[0]}"
    assert STAMP.search(down[0]), f"no next probe time in: {down[0]}"
    per_cert = [(cert, msg) for _lvl, cert, msg in lines if cert is not None and OUTAGE_WORDS.search(msg)]
    assert len(per_cert) <= max_parallel, (
        f"the outage was logged per certificate ({len(per_cert)} lines for {n_certs} certificates): {per_cert[:6]}")
    back = [msg for _lvl, cert, msg in lines if cert is None and re.search(rf"\b{re.escape(ca)}\b.*\bback\b", msg)]
    assert len(back) == 1, f"recovery of CA {ca} logged {len(back)} times (expected once): {back}"


def check_issued_after(proxy, n, t_end, within):
    issued = proxy.log.select(kind="cert", status=200)
    assert len(issued) >= n, proxy.log.by_kind()
    late = max(e["mono_done"] for e in issued) - t_end
    assert late <= within, f"last certificate downloaded {late:.1f} s after the CA came back (limit {within} s)"
    assert proxy.log.count(kind="newOrder", status=201) == n, proxy.log.by_kind()
    return late


# The long outage tests (40 s to 80 s each) run against the newest Pebble only: the fault is all the
# proxy's (503 maintenance answers, refused connections, slow answers, one 503), so the Pebble behind
# it only issues once the fault is over, which every other test checks on both Pebbles; a second
# run against Pebble 2.4 would add some 4 minutes and test nothing more.
PROXY_MADE_OUTAGE = pytest.mark.pebble_builds("pebble-new", reason="proxy-made outage: the Pebble behind it "
                                                                   "does not matter; ~1 min per run")


# ---------------------------------------------------------------- proxy self-checks (new rules)

def _conn(pebble, proxy, timeout=10):
    return http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=timeout,
                                       context=pebble.tls_ca.client_context())


def _req(conn, method, path, body=None):
    conn.request(method, path, body=body,
                 headers={**pe.UA, **({"Content-Type": "application/jose+json"} if body else {})})
    r = conn.getresponse()
    return r, r.read()


def _jws(payload, url="https://127.0.0.1/x"):
    """An unsigned flattened JWS (Pebble rejects it; the proxy decodes it all the same)."""
    prot = b64u(json.dumps({"alg": "ES256", "kid": "k", "nonce": "n", "url": url}).encode())
    pay = "" if payload == "" else b64u(json.dumps(payload).encode())
    return json.dumps({"protected": prot, "payload": pay, "signature": "AAAA"}).encode()


@pytest.mark.harness
def test_proxy_outage_exact_body_on_every_path(pebble, proxy):
    proxy.add_rule(Rule("status", kind="directory", status=299, name="older"))
    rule = proxy.outage(for_s=1.5)
    conn = _conn(pebble, proxy)
    for method, path in (("GET", "/dir"), ("HEAD", "/nonce-plz"), ("GET", "/nonce-plz"), ("POST", "/order-plz"),
                         ("POST", "/my-order/x"), ("GET", "/renewalInfo/abc.def"), ("GET", "/no-such-path")):
        r, body = _req(conn, method, path, body=_jws({}) if method == "POST" else None)
        assert r.status == 503, (method, path)
        assert r.getheader("Content-Type") == PROBLEM_JSON
        if method != "HEAD":
            assert body == MAINTENANCE_BODY, body
    assert json.loads(MAINTENANCE_BODY) == {
        "type": "urn:acme:error:serverInternal",
        "detail": "The service is down for maintenance or had an internal error. "
                  "Check https://letsencrypt.status.io/ for more details."}
    assert rule.hits == 7 and all(e["upstream_status"] is None for e in proxy.log.entries)
    start, end = rule.window_mono()
    assert abs((end - start) - 1.5) < 1e-6
    assert len(proxy.log.between(start, end)) == 7
    time.sleep(max(0.0, end - time.monotonic()) + 0.1)
    r, body = _req(conn, "GET", "/dir")
    assert r.status == 299 and json.loads(body)["newOrder"]          # Pebble again (and the older rule)
    assert rule.hits == 7
    stop = proxy.start_outage()
    assert _req(conn, "GET", "/dir")[0].status == 503
    proxy.stop_outage()
    assert _req(conn, "GET", "/dir")[0].status == 299
    assert stop.hits == 1 and stop.window_mono()[1] is not None


@pytest.mark.harness
def test_proxy_refuses_connections_then_rebinds_same_port(pebble, proxy):
    port = proxy.port
    conn = _conn(pebble, proxy)
    assert _req(conn, "GET", "/dir")[0].status == 200
    proxy.refuse_connections(for_s=1.0)
    assert proxy.refusing
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):   # open connections were closed too
        _req(conn, "GET", "/dir")
    conn.close()
    pe.wait_until(lambda: not proxy.refusing, 5, what="proxy listening again")
    assert proxy.port == port
    conn = _conn(pebble, proxy)
    r, body = _req(conn, "GET", "/dir")
    assert r.status == 200 and json.loads(body)["newNonce"].startswith(f"https://127.0.0.1:{port}/")
    (start, end), = proxy.refusals
    assert 0.9 <= end - start < 3.0


@pytest.mark.harness
def test_proxy_slow_rate_limited_and_payload_log(pebble, proxy):
    slow = proxy.slow(0.6, for_s=30, kind="directory")
    conn = _conn(pebble, proxy)
    t = time.monotonic()
    assert _req(conn, "GET", "/dir")[0].status == 200
    assert time.monotonic() - t >= 0.6 and slow.hits == 1
    slow.stop()

    rl = proxy.rate_limited("newOrder", retry_after=7)
    r, body = _req(conn, "POST", "/order-plz", body=_jws({"identifiers": [{"type": "dns", "value": "a.example"}],
                                                          "replaces": "AA.BB"}))
    assert r.status == 429 and r.getheader("Retry-After") == "7"
    assert json.loads(body)["type"] == "urn:ietf:params:acme:error:rateLimited"
    assert r.getheader("Replay-Nonce"), "a CA's error answer carries a fresh nonce"
    r, _ = _req(conn, "POST", "/order-plz", body=_jws({"identifiers": []}))
    assert r.status != 429 and rl.hits == 1          # count=1: the next one reaches Pebble
    e = proxy.log.select(kind="newOrder")[0]
    assert e["payload"] == {"identifiers": [{"type": "dns", "value": "a.example"}], "replaces": "AA.BB"}
    assert e["jws_url"] == "https://127.0.0.1/x" and e["retry_after"] == "7"
    _req(conn, "POST", "/my-order/x", body=_jws(""))
    assert proxy.log.select(kind="order")[-1]["payload"] == ""                 # POST-as-GET
    assert proxy.log.select(kind="directory")[-1]["payload"] is None           # GET

    when = math.floor(time.time()) + 9
    proxy.rate_limited("newOrder", retry_after=lambda: http_date(when), name="rl-date")
    r, _ = _req(conn, "POST", "/order-plz", body=_jws({"identifiers": []}))
    assert r.status == 429
    assert email.utils.parsedate_to_datetime(r.getheader("Retry-After")).timestamp() == when


# ---------------------------------------------------------------- acmed through outages

@PROXY_MADE_OUTAGE
@pytest.mark.acmed
@pytest.mark.slow
def test_maintenance_outage_60s_twenty_certificates(acmed, proxy):
    """20 certificates due while the CA answers the maintenance 503 for 60 s from before acmed starts:
    a handful of requests during the outage, everything issued within 60 s of its end."""
    certs = certs_named("mt", 20)
    acmed.write_config(certs)
    outage = proxy.outage(for_s=60)
    start, end = outage.window_mono()
    r = acmed.run_once(timeout=240)
    during = proxy.log.between(start, end)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert during, "acmed sent nothing while the CA was down (did it start at all?)"
    assert all(e["status"] == 503 for e in during)
    assert len(during) <= 8, f"{len(during)} requests during a 60 s outage: {summary(during, start)}"
    b = bursts([e["mono"] for e in during])
    for prev, nxt in zip(b, b[1:]):
        assert nxt[0] - prev[-1] >= 20.0, f"probes {nxt[0] - prev[-1]:.1f} s apart: {summary(during, start)}"
    check_issued_after(proxy, len(certs), end, within=60)
    check_state_change_log(r.stderr, "pebble", len(certs), max_down_lines=len(b),
                           cause=r"503.*down for maintenance|down for maintenance.*503")


@PROXY_MADE_OUTAGE
@pytest.mark.acmed
@pytest.mark.slow
def test_connection_refused_40s(acmed, proxy):
    """The CA's address refuses connections for 40 s from before acmed starts; all issued after."""
    certs = certs_named("cr", 10)
    acmed.write_config(certs)
    proxy.refuse_connections(for_s=40)
    r = acmed.run_once(timeout=240)
    (start, end), = proxy.refusals
    assert end is not None and 39 < end - start < 45
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    first = min(e["mono"] for e in proxy.log.entries)
    # probes at ~0 (connect retries may take a second), then 40 s +-20 % apart: the first one after
    # the end comes <= 1 + 48 + 48 - 40 = 57 s after it
    assert first - end <= 75, f"first request {first - end:.1f} s after the CA accepted connections again"
    check_issued_after(proxy, len(certs), end, within=85)
    # failed probes while refusing: the first attempt and one at 40 s +-20 % (the next is >= 64 s in)
    check_state_change_log(r.stderr, "pebble", len(certs), max_down_lines=3, cause=r"refused|connect")


@PROXY_MADE_OUTAGE
@pytest.mark.acmed
@pytest.mark.slow
def test_slow_ca_is_unavailable_then_recovers(acmed, proxy):
    """Answers delayed 5 s while the CA's `timeout` is 3 s: acmed gives up on the request, treats the CA
    as unavailable (it does not sit waiting), and issues once the CA is fast again."""
    certs = certs_named("sl", 3)
    acmed.write_config(certs, extra_ca={"timeout": "3s"})
    slow = proxy.slow(5, for_s=20)
    start, end = slow.window_mono()
    r = acmed.run_once(timeout=180)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    during = proxy.log.between(start, end)
    assert 1 <= len(during) <= 4, summary(during, start)
    check_issued_after(proxy, len(certs), end, within=60)
    check_state_change_log(r.stderr, "pebble", len(certs), max_down_lines=len(bursts([e["mono"] for e in during])),
                           cause=r"time")


@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_rate_limited_retry_after_to_the_second(acmed, proxy, form):
    """429 rateLimited + Retry-After on the first newOrder: the next newOrder comes no earlier, and
    less than 3 s later."""
    if form == "seconds":
        rule = proxy.rate_limited("newOrder", retry_after=7)
    else:
        rule = proxy.rate_limited("newOrder", retry_after=lambda: http_date(math.floor(time.time()) + 9))
    certs = [{"name": "rl", "key_type": "ecdsa-p256", "domains": ["rl.example.com", "www.rl.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=90)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert rule.hits == 1
    orders = proxy.log.select(kind="newOrder")
    assert [e["status"] for e in orders] == [429, 201], summary(orders)
    limited, nxt = orders
    if form == "seconds":
        wait = nxt["mono"] - limited["mono_done"]
        assert 7.0 - 0.05 <= wait < 7.0 + 3.0, f"next newOrder {wait:.2f} s after Retry-After: 7"
    else:
        when = email.utils.parsedate_to_datetime(limited["retry_after"]).timestamp()
        early = nxt["t"] - when
        assert -0.05 <= early < 3.0, f"next newOrder {early:+.2f} s from Retry-After: {limited['retry_after']}"


@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
@pytest.mark.parametrize("hold", ["authz", "finalize"])
def test_kill9_mid_order_resumes_the_same_order(acmed, proxy, hold):
    """The daemon is SIGKILLed while its first authorization fetch (or the finalize response) is held;
    `run --once` afterwards resumes the order kept in state_dir: one newOrder in total."""
    if hold == "authz":
        rule = proxy.add_rule(Rule("delay", kind="authz", method="POST", nth=1, seconds=8, name="hold"))
    else:
        rule = proxy.add_rule(Rule("delay", kind="finalize", nth=1, seconds=8, when="after", name="hold"))
    certs = [{"name": "k9", "key_type": "ecdsa-p256", "domains": ["k9.example.com", "www.k9.example.com"]}]
    acmed.write_config(certs)
    d = acmed.spawn("run")
    pe.wait_until(lambda: rule.hits >= 1 or not d.alive(), 60, what=f"acmed's first {hold} request")
    assert d.alive(), d.stderr[-3000:]
    time.sleep(1.0)
    d.kill(signal.SIGKILL)
    assert d.wait(10) == -signal.SIGKILL
    # let the held request finish (to a dead client) so the CA's side is settled before the restart
    pe.wait_until(lambda: proxy.log.count(where=lambda e: "hold" in e["rules"]), 15, what="held request done")
    created = proxy.log.select(kind="newOrder", status=201)
    assert len(created) == 1, summary(proxy.log.entries)
    order_path = created[0]["location"].split("://", 1)[1].split("/", 1)[1]
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=120)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert proxy.log.count(kind="newOrder") == 1, "a second order after kill -9: " + str(
        summary(proxy.log.select(kind="newOrder")))
    assert proxy.log.count(kind="order", since=mark, where=lambda e: e["path"] == "/" + order_path), \
        f"the restarted acmed never fetched the order /{order_path} kept in state_dir"
    assert proxy.log.count(kind="cert", status=200) >= 1


@PROXY_MADE_OUTAGE
@pytest.mark.acmed
@pytest.mark.slow
@pytest.mark.pebble(nonce_reject=0)
def test_backoff_survives_kill9(acmed, proxy):
    """newOrder fails once with 503 serverInternal; acmed is SIGKILLed during its ~40 s backoff; the
    restarted `run --once` sends no newOrder before the persisted next attempt, then issues."""
    fail = proxy.add_rule(Rule("respond", kind="newOrder", method="POST", nth=1, status=503,
                               headers={"Content-Type": PROBLEM_JSON},
                               body={"type": "urn:ietf:params:acme:error:serverInternal",
                                     "detail": "internal error: database unavailable"}, name="503-once"))
    certs = [{"name": "bo", "key_type": "ecdsa-p256", "domains": ["bo.example.com"]}]
    acmed.write_config(certs)
    d = acmed.spawn("run")
    pe.wait_until(lambda: proxy.log.count(kind="newOrder") or not d.alive(), 60, what="acmed's first newOrder")
    assert d.alive(), d.stderr[-3000:]
    t_fail = proxy.log.select(kind="newOrder")[0]["mono_done"]
    time.sleep(3.0)
    d.kill(signal.SIGKILL)
    d.wait(10)
    assert fail.hits == 1 and proxy.log.count(kind="newOrder") == 1, "the daemon retried at once"
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=120)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    again = proxy.log.select(kind="newOrder", since=mark)
    assert again, proxy.log.by_kind(since=mark)
    gap = again[0]["mono"] - t_fail
    # 40 s -20 % = 32 s; next attempt times are kept in whole seconds: allow 1 s of rounding
    assert gap >= 31.0, f"newOrder {gap:.1f} s after the 503: the restart reset the backoff"
    assert gap <= 48.0 + 6.0, f"newOrder only {gap:.1f} s after the 503 (probe 40 s +20 %)"
    assert proxy.log.count(kind="newOrder", status=201) == 1
