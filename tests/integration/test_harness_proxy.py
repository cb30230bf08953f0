# Checks the fault proxy itself against a real Pebble: Host passthrough, keep-alive framing, every rule action, the CLI.
import http.client
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import faultproxy
import pebble_env as pe
import waits
from faultproxy import Rule, classify

pytestmark = pytest.mark.harness


def _conn(pebble, proxy):
    return http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=10, context=pebble.tls_ca.client_context())


def _get(conn, path, method="GET", body=None, headers=None):
    conn.request(method, path, body=body, headers={**pe.UA, **(headers or {})})
    r = conn.getresponse()
    return r, r.read()


def test_classify_pebble_paths():
    assert classify("/dir") == "directory"
    assert classify("/nonce-plz") == "newNonce"
    assert classify("/sign-me-up") == "newAccount"
    assert classify("/my-account/12ab") == "account"
    assert classify("/order-plz") == "newOrder"
    assert classify("/my-order/xyz") == "order"
    assert classify("/finalize-order/xyz") == "finalize"
    assert classify("/authZ/abc") == "authz"
    assert classify("/chalZ/abc") == "challenge"
    assert classify("/certZ/0123") == "cert"
    assert classify("/renewalInfo/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE") == "renewalInfo"      # the proxy's
    assert classify("/draft-ietf-acme-ari-03/renewalInfo/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE") == "renewalInfo"
    assert classify("/directory") == "other"
    assert classify("/dirt") == "other"
    assert classify("/order-plzz") == "other"


def test_host_passthrough_makes_urls_point_at_proxy(pebble, proxy):
    conn = _conn(pebble, proxy)
    r, body = _get(conn, "/dir")
    assert r.status == 200
    d = json.loads(body)
    for k in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"):
        assert d[k].startswith(f"https://127.0.0.1:{proxy.port}/"), d[k]
    r, _ = _get(conn, "/nonce-plz", "HEAD")
    assert r.getheader("Link") == f'<https://127.0.0.1:{proxy.port}/dir>;rel="index"'


def test_keep_alive_and_head_framing(pebble, proxy):
    conn = _conn(pebble, proxy)
    r, body = _get(conn, "/nonce-plz", "HEAD")
    assert r.status == 200 and body == b"" and r.getheader("Replay-Nonce")
    r, body = _get(conn, "/nonce-plz")
    assert r.status == 204 and body == b"" and r.getheader("Replay-Nonce")
    r, body = _get(conn, "/dir")
    assert r.status == 200 and json.loads(body)["newNonce"]
    r, body = _get(conn, "/dir", "HEAD")
    assert r.status == 200 and body == b""
    r, body = _get(conn, "/dir")
    assert r.status == 200 and int(r.getheader("Content-Length")) == len(body) > 0
    assert proxy.connections == 1
    assert [e["kind"] for e in proxy.log.entries] == ["newNonce", "newNonce", "directory", "directory", "directory"]


def test_status_override_head_nonce_204(pebble, proxy):
    rule = proxy.add_rule(Rule("status", method="HEAD", kind="newNonce", status=204))
    conn = _conn(pebble, proxy)
    r, body = _get(conn, "/nonce-plz", "HEAD")
    assert r.status == 204 and body == b"" and r.getheader("Replay-Nonce")
    assert r.getheader("Content-Length") is None
    r, body = _get(conn, "/nonce-plz")             # GET is not matched
    assert r.status == 204
    r, body = _get(conn, "/dir")                   # the connection survived the rewritten answer
    assert r.status == 200 and json.loads(body)
    assert rule.hits == 1 and proxy.connections == 1
    e = proxy.log.entries[0]
    assert (e["status"], e["upstream_status"], e["rules"]) == (204, 200, ["status"])


def test_respond_window_without_upstream(pebble, proxy, monkeypatch):
    clock = waits.FrozenClock()
    monkeypatch.setattr(faultproxy, "time", clock)   # the 1 s window moves only when the test says so
    maint = {"type": "urn:acme:error:serverInternal", "detail": "The service is down for maintenance"}
    rule = proxy.add_rule(Rule("respond", status=503, headers={"Content-Type": "application/problem+json",
                                                                "Retry-After": "2"},
                               body=maint, for_s=1.0, name="maintenance"))
    conn = _conn(pebble, proxy)
    for path in ("/dir", "/nonce-plz", "/order-plz"):
        r, body = _get(conn, path, "POST" if path == "/order-plz" else "GET", body=b"{}" if path == "/order-plz" else None)
        assert r.status == 503 and json.loads(body) == maint and r.getheader("Retry-After") == "2"
    assert all(e["upstream_status"] is None for e in proxy.log.entries)
    clock.advance(0.5)
    assert _get(conn, "/nonce-plz", "HEAD")[0].status == 503        # still inside the window
    clock.advance(0.6)                                                # past its end (for_s=1.0)
    r, body = _get(conn, "/dir")
    assert r.status == 200
    assert rule.hits == 4 and rule.matches == 4


def test_drop_before_and_after(pebble, proxy):
    before = proxy.add_rule(Rule("drop", kind="directory", nth=1, when="before"))
    after = proxy.add_rule(Rule("drop", kind="newAccount", nth=1, when="after"))
    conn = _conn(pebble, proxy)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, OSError)):
        _get(conn, "/dir")
    conn.close()
    conn = _conn(pebble, proxy)
    r, _ = _get(conn, "/dir")                      # only the first one is dropped
    assert r.status == 200
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, OSError)):
        _get(conn, "/sign-me-up", "POST", body=b"{}", headers={"Content-Type": "application/jose+json"})
    assert before.hits == 1 and after.hits == 1
    ents = proxy.log.entries
    assert ents[0]["status"] is None and ents[0]["upstream_status"] is None
    assert ents[2]["status"] is None and ents[2]["upstream_status"] == 400   # Pebble saw it and answered
    assert proxy.connections == 2


def test_delay_nth_skip_count(pebble, proxy):
    slow = proxy.add_rule(Rule("delay", kind="directory", nth=2, seconds=0.5))
    cnt = proxy.add_rule(Rule("status", kind="newNonce", method="GET", skip=1, count=2, status=200))
    conn = _conn(pebble, proxy)
    took = []
    for _ in range(3):
        t = time.monotonic()
        _get(conn, "/dir")
        took.append(time.monotonic() - t)
    # only the 2nd was held, and not for less than the delay (a busy machine can only add to it)
    dirs = proxy.log.select(kind="directory")
    assert [("delay" in e["rules"]) for e in dirs] == [False, True, False], [e["rules"] for e in dirs]
    assert took[1] >= 0.5, f"the delayed request took {took[1]:.3f} s (delay 0.5 s)"
    statuses = [_get(conn, "/nonce-plz")[0].status for _ in range(4)]
    assert statuses == [204, 200, 200, 204]
    assert slow.hits == 1 and cnt.hits == 2 and cnt.matches == 4


def test_if_body_status_and_json_merge(pebble, proxy):
    bad = proxy.add_rule(Rule("status", kind="newAccount", if_body_status="pending", status=202))
    problem = proxy.add_rule(Rule("status", kind="newAccount", if_body_status=[400], status=418,
                                  headers={"Retry-After": "1"}))
    merge = proxy.add_rule(Rule("json_merge", kind="directory", merge={"renewalInfo": "{base}/renewal-info/"}))
    conn = _conn(pebble, proxy)
    r, body = _get(conn, "/sign-me-up", "POST", body=b"{}", headers={"Content-Type": "application/jose+json"})
    assert r.status == 418 and r.getheader("Retry-After") == "1"
    assert json.loads(body)["type"] == "urn:ietf:params:acme:error:malformed"
    assert bad.hits == 0 and bad.matches == 1 and problem.hits == 1
    r, body = _get(conn, "/dir")
    assert json.loads(body)["renewalInfo"] == f"https://127.0.0.1:{proxy.port}/renewal-info/"
    assert merge.hits == 1


def test_cli_standalone(pebble, workspace):
    cert, key = pebble.tls_ca.issue_server_cert("cli-proxy")
    port = pe.free_port()
    rules = workspace / "rules.json"
    rules.write_text(json.dumps([{"action": "status", "method": "HEAD", "kind": "newNonce", "status": 204}]))
    log = workspace / "cli-log.jsonl"
    proc = subprocess.Popen([sys.executable, str(pe.HERE / "faultproxy.py"), "--listen", f"127.0.0.1:{port}",
                             "--upstream", f"127.0.0.1:{pebble.port}", "--cert", str(cert), "--key", str(key),
                             "--upstream-ca", str(pebble.ca_bundle), "--rules", str(rules), "--log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pe.wait_tcp(port, 10, proc, "faultproxy")
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=pebble.tls_ca.client_context())
        r, _ = _get(conn, "/nonce-plz", "HEAD")
        assert r.status == 204
        r, body = _get(conn, "/dir")
        assert json.loads(body)["newOrder"] == f"https://127.0.0.1:{port}/order-plz"
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(x["method"], x["kind"], x["status"]) for x in lines] == [("HEAD", "newNonce", 204),
                                                                       ("GET", "directory", 200)]
    assert json.loads(err.strip().splitlines()[-1])["requests"] == 2
    assert os.path.getsize(log) > 0
