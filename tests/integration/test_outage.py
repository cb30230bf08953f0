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

import faultproxy
import pebble_env as pe
import waits
from faultproxy import MAINTENANCE_BODY, PROBLEM_JSON, Rule, b64u, http_date

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)?(?:[+-]\d{4})? acmed (\w+): (?:\[([^\]]+)\] )?(.*)$")
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


CA_EVENT = re.compile(r"^CA pebble (unavailable|still unavailable|is back)\b")
PROBE_MIN, PROBE_MAX = 32, 48          # DESIGN.md: a probe 40 s +-20 % after a failure, while down < 640 s


def run_through_outage(acmed, certs, end_outage, failed_probes, timeout=600, **config):
    """`acmed run --once` in the background against a CA that is out from before it starts; the
    outage ends (end_outage()) once acmed has logged its first failure and `failed_probes` failed
    probes after it.  Returns (exit code, stderr, wall-clock time the outage ended)."""
    acmed.write_config(certs, **config)
    d = acmed.spawn("run", "--once", "--timeout", str(timeout), env={"TZ": "UTC"})
    waits.wait_log(d, r"^CA pebble (still )?unavailable \(", count=1 + failed_probes, timeout=timeout,
                   what=f"acmed's first failure and {failed_probes} failed probe(s)")
    t_end = time.time()
    end_outage()
    rc = d.wait(timeout + 60)
    return rc, d.stderr, t_end


def check_probes_and_recovery(stderr, certs, t_end):
    """What acmed did about the outage, from its own log, in order: one failure line per failed
    attempt, each naming the next probe PROBE_MIN..PROBE_MAX s after that attempt began; one probe
    at a time, none before its time; a probe begun after the outage ended brings the CA back (once;
    or a request of the first attempt still in flight when the outage ended does); then every
    certificate is issued with no further wait.  Returns the number of failed attempts."""
    lines = waits.log_lines(stderr)
    assert lines and "starting" in lines[0].msg, stderr[:2000]
    seq = []
    for x in lines:
        m = CA_EVENT.match(x.msg) if x.cert is None else None
        if m:
            seq.append(("back" if m.group(1) == "is back" else "down", x))
        elif x.cert is not None and x.msg == "probing CA pebble":
            seq.append(("probe", x))
    kinds = " ".join(k for k, _ in seq)
    assert re.fullmatch(r"down( probe down)*( probe)? back", kinds), (
        f"expected failure, (probe, failure)*, probe, back; acmed logged: {kinds}\n"
        + "\n".join(x.text for _, x in seq))
    began = lines[0]                                    # the attempt that failed began here
    for (kind, x), (next_kind, nxt) in zip(seq, seq[1:]):
        if kind == "down":
            at = x.times()[-1]
            assert int(began.stamp) + PROBE_MIN <= at <= int(x.stamp) + PROBE_MAX, (
                f"next probe at {at}: not {PROBE_MIN}..{PROBE_MAX} s after the attempt that began at "
                f"{began.stamp:.3f} and failed at {x.stamp:.3f}:\n{x.text}")
            if next_kind == "probe":
                assert nxt.stamp >= at, f"probe before its time ({at}):\n{x.text}\n{nxt.text}"
        else:
            began = x
            if next_kind == "down":
                assert x.stamp < t_end, (f"a probe begun after the outage ended ({t_end:.3f}) failed:\n"
                                         f"{x.text}\n{nxt.text}")
    back = seq[-1][1]
    assert back.stamp >= t_end, f"CA back at {back.stamp:.3f}, before the outage ended ({t_end:.3f})"
    issued = {x.cert: x for x in waits.grep(stderr, r"^certificate issued for ")}
    assert sorted(issued) == sorted(c["name"] for c in certs), sorted(issued)
    assert all(x.index > back.index for x in issued.values()), "a certificate issued before the CA was back?"
    waits_after = [x.text for x in waits.grep(stderr, r"next attempt at") if x.index > back.index]
    assert not waits_after, "after the CA came back, certificates still waited:\n" + "\n".join(waits_after)
    return sum(1 for k, _ in seq if k == "down")


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
def test_proxy_outage_exact_body_on_every_path(pebble, proxy, monkeypatch):
    clock = waits.FrozenClock()
    monkeypatch.setattr(faultproxy, "time", clock)   # the window moves only when the test says so
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
    clock.advance(1.6)                                               # past the end of the window
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
    proxy.refuse_connections()
    assert proxy.refusing
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):   # open connections were closed too
        _req(conn, "GET", "/dir")
    conn.close()
    proxy.accept_connections()
    assert not proxy.refusing and proxy.port == port
    conn = _conn(pebble, proxy)
    r, body = _req(conn, "GET", "/dir")
    assert r.status == 200 and json.loads(body)["newNonce"].startswith(f"https://127.0.0.1:{port}/")
    conn.close()

    # for_s: listening again on the same port by itself, no sooner
    proxy.refuse_connections(for_s=1.0)
    pe.wait_until(lambda: not proxy.refusing, 60, what="proxy listening again")
    assert proxy.port == port
    conn = _conn(pebble, proxy)
    assert _req(conn, "GET", "/dir")[0].status == 200
    (s0, e0), (s1, e1) = proxy.refusals
    assert s0 <= e0 <= s1 and e1 - s1 >= 0.9, proxy.refusals


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
def test_maintenance_outage_twenty_certificates(acmed, proxy):
    """20 certificates due while the CA answers the maintenance 503 from before acmed starts, through
    acmed's first attempt and its first probe: a handful of requests during the outage, probes as
    acmed scheduled them, then everything issued at the first probe after the end."""
    certs = certs_named("mt", 20)
    outage = proxy.outage()
    rc, stderr, t_end = run_through_outage(acmed, certs, outage.stop, failed_probes=1)
    assert rc == 0, stderr[-4000:]
    acmed.verify(certs)
    during = proxy.log.select(where=lambda e: "outage" in e["rules"])
    assert during, "acmed sent nothing while the CA was down (did it start at all?)"
    assert all(e["status"] == 503 for e in during)
    assert len(during) <= 8, f"{len(during)} requests during the outage: {summary(during)}"
    failed = check_probes_and_recovery(stderr, certs, t_end)
    assert proxy.log.count(kind="newOrder", status=201) == len(certs), proxy.log.by_kind()
    check_state_change_log(stderr, "pebble", len(certs), max_down_lines=failed,
                           cause=r"503.*down for maintenance|down for maintenance.*503")


@PROXY_MADE_OUTAGE
@pytest.mark.acmed
@pytest.mark.slow
def test_connection_refused(acmed, proxy):
    """The CA's address refuses connections from before acmed starts until acmed has logged that the
    CA is unavailable; the next probe finds it back and everything is issued."""
    certs = certs_named("cr", 10)
    proxy.refuse_connections()
    rc, stderr, t_end = run_through_outage(acmed, certs, proxy.accept_connections, failed_probes=0)
    (start, end), = proxy.refusals
    assert end is not None and start <= end
    assert rc == 0, stderr[-4000:]
    acmed.verify(certs)
    failed = check_probes_and_recovery(stderr, certs, t_end)
    assert proxy.log.count(kind="newOrder", status=201) == len(certs), proxy.log.by_kind()
    check_state_change_log(stderr, "pebble", len(certs), max_down_lines=failed, cause=r"refused|connect")


@PROXY_MADE_OUTAGE
@pytest.mark.acmed
@pytest.mark.slow
def test_slow_ca_is_unavailable_then_recovers(acmed, proxy):
    """Answers delayed 5 s while the CA's `timeout` is 3 s: acmed gives up on the request, treats the CA
    as unavailable (it does not sit waiting), and issues once the CA is fast again."""
    certs = certs_named("sl", 3)
    slow = proxy.slow(5)
    rc, stderr, t_end = run_through_outage(acmed, certs, slow.stop, failed_probes=0, extra_ca={"timeout": "3s"})
    assert rc == 0, stderr[-4000:]
    acmed.verify(certs)
    during = proxy.log.select(where=lambda e: "slow" in e["rules"])
    assert 1 <= len(during) <= 4, summary(during)
    failed = check_probes_and_recovery(stderr, certs, t_end)
    check_state_change_log(stderr, "pebble", len(certs), max_down_lines=failed, cause=r"time")


@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_rate_limited_retry_after_to_the_second(acmed, proxy, form):
    """429 rateLimited + Retry-After on the first newOrder: acmed schedules the next attempt at the
    Retry-After instant, to the second (its log says when), and the next newOrder, the one that
    issues, comes no earlier."""
    if form == "seconds":
        rule = proxy.rate_limited("newOrder", retry_after=7)
    else:
        rule = proxy.rate_limited("newOrder", retry_after=lambda: http_date(math.floor(time.time()) + 9))
    certs = [{"name": "rl", "key_type": "ecdsa-p256", "domains": ["rl.example.com", "www.rl.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=120, env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert rule.hits == 1
    orders = proxy.log.select(kind="newOrder")
    assert [e["status"] for e in orders] == [429, 201], summary(orders)
    limited, nxt = orders
    scheduled = waits.grep(r.stderr, r"\(rate limited, failure 1\); next attempt at ", cert="rl")
    assert len(scheduled) == 1, r.stderr[-3000:]
    at = scheduled[0].times()[-1]
    if form == "seconds":
        # acmed read its clock after the CA answered and before it logged: Retry-After 7 from then
        assert int(limited["t_done"]) + 7 <= at <= int(scheduled[0].stamp) + 7, (limited["t_done"], scheduled[0])
        wait = nxt["mono"] - limited["mono_done"]
        assert wait >= 7.0 - 0.05, f"next newOrder {wait:.2f} s after Retry-After: 7"
    else:
        when = email.utils.parsedate_to_datetime(limited["retry_after"]).timestamp()
        assert at == when, f"next attempt at {at}, Retry-After: {limited['retry_after']} ({when})"
    assert nxt["t"] >= at - 0.05, f"next newOrder at {nxt['t']:.3f}, before the attempt scheduled at {at}"


@pytest.mark.acmed
@pytest.mark.pebble(nonce_reject=0)
@pytest.mark.parametrize("hold", ["authz", "finalize"])
def test_kill9_mid_order_resumes_the_same_order(acmed, proxy, hold):
    """The daemon is SIGKILLed while its first authorization fetch (or the finalize response, Pebble
    having processed it) is held; `run --once` afterwards resumes the order kept in state_dir: one
    newOrder in total."""
    if hold == "authz":
        rule = proxy.add_rule(Rule("delay", kind="authz", method="POST", nth=1, seconds=8, name="hold"))
    else:
        rule = proxy.add_rule(Rule("delay", kind="finalize", nth=1, seconds=8, when="after", name="hold"))
    certs = [{"name": "k9", "key_type": "ecdsa-p256", "domains": ["k9.example.com", "www.k9.example.com"]}]
    acmed.write_config(certs)
    d = acmed.spawn("run")
    pe.wait_until(lambda: rule.hits >= 1 or not d.alive(), 120, what=f"acmed's first {hold} request")
    assert d.alive(), d.stderr[-3000:]
    created = proxy.log.select(kind="newOrder", status=201)
    assert len(created) == 1, summary(proxy.log.entries)
    order_path = created[0]["location"].split("://", 1)[1].split("/", 1)[1]
    state = acmed.ws / "state" / "certs" / "k9.json"
    pe.wait_until(lambda: state.exists() and created[0]["location"] in state.read_text(), 60,
                  what="the order URL kept in state_dir")
    if hold == "finalize":
        # Pebble has processed the finalize (its answer is what the proxy holds)
        order_id = order_path.rsplit("/", 1)[-1]
        pe.wait_until(lambda: f"Order {order_id} is fully authorized. Processing finalization"
                      in acmed.pebble.pebble_log.read_text(errors="replace"), 60, what="Pebble past the finalize")
    d.kill(signal.SIGKILL)
    assert d.wait(10) == -signal.SIGKILL
    # let the held request finish (to a dead client) so the CA's side is settled before the restart
    pe.wait_until(lambda: proxy.log.count(where=lambda e: "hold" in e["rules"]), 60, what="held request done")
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
    """newOrder fails once with 503 serverInternal: the CA is unavailable, next probe in 40 s +-20 %
    (acmed logs when); acmed is SIGKILLed then; the restarted `run --once` keeps that probe time (it
    says so), sends no newOrder before it, then issues."""
    fail = proxy.add_rule(Rule("respond", kind="newOrder", method="POST", nth=1, status=503,
                               headers={"Content-Type": PROBLEM_JSON},
                               body={"type": "urn:ietf:params:acme:error:serverInternal",
                                     "detail": "internal error: database unavailable"}, name="503-once"))
    certs = [{"name": "bo", "key_type": "ecdsa-p256", "domains": ["bo.example.com"]}]
    acmed.write_config(certs)
    d = acmed.spawn("run", env={"TZ": "UTC"})
    # the failure taken in: the CA's state (next probe) is queued for the store before this line
    down, = waits.wait_log(d, r"^CA pebble unavailable \(.*database unavailable", what="the 503 taken in")
    at = down.times()[-1]
    failed = proxy.log.select(kind="newOrder")[0]
    assert int(failed["t_done"]) + PROBE_MIN <= at <= int(down.stamp) + PROBE_MAX, (failed["t_done"], down)
    # ... and written by the store's thread a moment later (under load, after the line): kill -9
    # once it is on disk, which is what this test is about (a loaded .ci/run killed it before)
    ca_state = acmed.ws / "state" / "cas" / "pebble.json"

    def saved():
        try:
            return json.loads(ca_state.read_text()).get("next_probe") == at
        except (OSError, ValueError):
            return False
    pe.wait_until(saved, 30, interval=0.05, what=f"next_probe {at} in {ca_state}")
    d.kill(signal.SIGKILL)
    d.wait(10)
    assert fail.hits == 1 and proxy.log.count(kind="newOrder") == 1, "the daemon retried at once"
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=180, env={"TZ": "UTC"})
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    kept = waits.grep(r.stderr, r"^CA pebble was unavailable before the restart .*; next probe at ")
    assert kept and kept[0].times()[-1] == at, f"next probe at {at} before the restart; after it: {kept}"
    again = proxy.log.select(kind="newOrder", since=mark)
    assert again, proxy.log.by_kind(since=mark)
    assert again[0]["t"] >= at, f"newOrder at {again[0]['t']:.3f}, before the probe time {at}: the restart reset the backoff"
    assert again[0]["mono"] - failed["mono_done"] >= PROBE_MIN - 1, "the restart reset the backoff"
    assert proxy.log.count(kind="newOrder", status=201) == 1
