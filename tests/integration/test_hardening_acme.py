# What a hostile probe found on the ACME side: a failed install, a forgotten account, cleartext URLs, a maintenance page as directory, unparsable answers.
"""Hardening issue, items 2, 3, 5 and part of 9, each against Pebble through the fault proxy:

2. a failed install keeps the issued certificate (state_dir, else memory) and installs it later,
   without a new order;
3. after accountDoesNotExist, one re-registration, and every waiting request is retried;
5. a URL from the CA that downgrades to http:// is refused, nothing is sent in cleartext;
9. a 200 answer that is not a directory (a maintenance page) marks the CA unavailable, not a daily
   backoff; an order answer that is not JSON gets a real error class, not "(none)".
"""
import json
import os
import re
import threading

import pytest

import pebble_env as pe
from faultproxy import Response, Rule

pytestmark = pytest.mark.acmed


def created(proxy, since=0):
    return proxy.log.count(kind="newOrder", method="POST", status=201, since=since)


def cert(name, **extra):
    c = {"name": name, "key_type": "ecdsa-p256", "domains": [f"{name}.hard.example.com"]}
    c.update(extra)
    return c


# ---------------------------------------------------------------- 2. a failed install

def test_failed_install_keeps_the_certificate_and_installs_it_later(acmed, proxy, workspace):
    """output_dir cannot be created (a regular file is in its way): the issued certificate is kept in
    state_dir; once the way is clear, the next run installs that very certificate, no new order."""
    blocker = workspace / "blocked"
    blocker.write_text("a file where a directory should be\n")
    out = blocker / "live"
    certs = [cert("keep", output_dir=str(out))]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=60)
    assert r.rc == 1, r.describe()
    assert created(proxy) == 1
    assert re.search(r"\[keep\] cannot install the certificate in .*/blocked/live: Not a directory; the "
                     r"certificate is kept in state_dir: the next run installs it \(no new order\)",
                     r.stderr), r.stderr
    kept = workspace / "state" / "certs" / "keep.issued.pem"
    assert kept.exists() and (os.stat(kept).st_mode & 0o777) == 0o600
    # A second run while the way is still blocked: no order either.
    r = acmed.run_once(timeout=60)
    assert created(proxy) == 1, proxy.log.by_kind()
    # The way is clear: the kept certificate is installed, still no new order.
    blocker.unlink()
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=60)
    assert r.rc == 0, r.describe()
    assert created(proxy, since=mark) == 0, proxy.log.by_kind(since=mark)
    assert "a certificate issued before the restart is not installed yet; installing it" in r.stderr
    acmed.verify(certs)
    assert not kept.exists()
    # The installed one is the one the CA issued in the first run (the only order there was).
    orders = proxy.log.select(kind="cert")
    assert len({e["path"] for e in orders}) == 1


def test_daemon_retries_the_install_without_ordering(acmed, proxy, workspace):
    """The daemon keeps the certificate, retries the install on its own schedule, and `acmed renew`
    installs the kept one at once once the way is clear: one order in all."""
    blocker = workspace / "blocked"
    blocker.write_text("in the way\n")
    certs = [cert("keepd", output_dir=str(blocker / "live"))]
    acmed.write_config(certs)
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[keepd\] cannot install the certificate in .*: Not a directory; the certificate is "
                      r"kept in state_dir and installed again at", timeout=60)
    r = acmed.run("status", "--json")
    st = {c["name"]: c for c in json.loads(r.stdout)["certificates"]}["keepd"]
    assert st["state"] == "backoff" and "cannot install" in (st.get("last_error") or ""), st
    blocker.unlink()
    r = acmed.run("renew", "keepd")
    assert r.rc == 0, r.describe()
    d.wait_for_stderr(r"\[keepd\] certificate issued(,| for)", timeout=60)
    d.stop()
    acmed.verify(certs)
    assert created(proxy) == 1, proxy.log.by_kind()
    assert "installing the certificate kept since the last failure" in d.stderr


# ---------------------------------------------------------------- 3. accountDoesNotExist

def test_account_forgotten_reregisters_once_and_retries_every_request(acmed, proxy):
    """The CA forgot the account: every signed request fails with accountDoesNotExist until it is
    registered again. Two certificates ordering at once: one newAccount, both issued."""
    certs = [cert("acc1"), cert("acc2")]
    # An account known from an earlier run, so the requests are signed with its URL.
    acmed.write_config([cert("acc0")])
    assert acmed.run_once(timeout=60).rc == 0
    forgotten = {"until_new_account": True, "hits": 0}
    # Both newOrders reach the CA before either is answered, however slow the machine: the
    # proxy handles each request on a thread of its own, and the first answer waits here
    # for the second request (a barrier, not a delay).
    both_sent = threading.Barrier(2, timeout=60)
    lock = threading.Lock()

    def unknown_account(req, resp):
        with lock:
            if not forgotten["until_new_account"]:
                return None
            forgotten["hits"] += 1
        try:
            both_sent.wait()
        except threading.BrokenBarrierError:
            pass            # only one came: hits says so below
        return Response(400, [("Content-Type", "application/problem+json"),
                              ("Replay-Nonce", resp.get_header("Replay-Nonce") or "")],
                        json.dumps({"type": "urn:ietf:params:acme:error:accountDoesNotExist",
                                    "detail": "No account for that key"}).encode())

    def registered(req, resp):
        with lock:
            forgotten["until_new_account"] = False
        return None

    proxy.add_rule(Rule("callback", method="POST", kind="newOrder", fn=unknown_account))
    proxy.add_rule(Rule("callback", method="POST", kind="newAccount", fn=registered))
    # The registration takes a moment.
    proxy.add_rule(Rule("delay", method="POST", kind="newAccount", seconds=1.0))
    acmed.write_config(certs)
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=90)
    assert r.rc == 0, r.describe()
    assert forgotten["hits"] == 2, forgotten
    # One registration: a newAccount Pebble turned away with badNonce (5 % of requests by
    # default) is resent, the same registration.
    regs = proxy.log.select(kind="newAccount", method="POST", since=mark,
                            where=lambda e: e["status"] in (200, 201))
    assert len(regs) == 1, proxy.log.select(kind="newAccount", since=mark)
    acmed.verify(certs)
    assert r.stderr.count("is unknown to the CA; registering again") == 1, r.stderr


# ---------------------------------------------------------------- 5. no downgrade to http

def test_order_location_downgraded_to_http_is_refused(acmed, proxy):
    """newOrder answers a Location on http://: acmed sends nothing there and says why."""
    def downgrade(req, resp):
        loc = resp.get_header("Location")
        if loc and loc.startswith("https://"):
            resp.set_header("Location", "http://" + loc[len("https://"):])
        return resp

    proxy.add_rule(Rule("callback", method="POST", kind="newOrder", fn=downgrade))
    certs = [cert("clear")]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=30)
    assert r.rc == 1, r.describe()
    assert re.search(r"refusing to send a signed request to http://127\.0\.0\.1:\d+/.*: the CA's "
                     r"directory is https", r.stderr), r.stderr
    # Nothing went out in cleartext: the proxy (https only) saw no request for the order itself.
    assert proxy.log.count(kind="order") == 0
    assert created(proxy) == 1


# ---------------------------------------------------------------- 9. maintenance page, unparsable order

def test_maintenance_page_as_directory_means_ca_unavailable(acmed, proxy):
    """The directory URL answers 200 with an HTML page: the CA is down (probed), not a daily backoff."""
    page = b"<html><body><h1>Down for maintenance</h1></body></html>"
    # The page for every directory fetch until acmed says the CA is unavailable (a maintenance
    # lasts: with a single page, a second fetch a millisecond later could find the CA back).
    maintenance = Rule("respond", method="GET", kind="directory", status=200,
                       headers={"Content-Type": "text/html"}, body=page)
    proxy.add_rule(maintenance)
    certs = [cert("maint")]
    acmed.write_config(certs)
    d = acmed.spawn("run")
    d.wait_for_stderr(r"CA pebble unavailable \(.*not an ACME directory.*\); 1 certificate waiting; "
                      r"next probe at", timeout=60)
    maintenance.disable()
    assert "1 day" not in d.stderr and "daily" not in d.stderr
    d.wait_for_stderr(r"\[maint\] certificate issued", timeout=120)
    d.stop()
    acmed.verify(certs)


def test_order_answer_that_is_not_an_order_has_a_class(acmed, proxy):
    """finalize answered 200 with deeply nested JSON instead of an order: a clear error with its class
    (before: "failed (none)")."""
    def nested(req, resp):
        return Response(200, [("Content-Type", "application/json"),
                              ("Replay-Nonce", resp.get_header("Replay-Nonce") or "")],
                        b"[" * 64 + b"]" * 64)

    proxy.add_rule(Rule("callback", method="POST", kind="finalize", fn=nested))
    certs = [cert("nested")]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=60)
    assert r.rc == 1, r.describe()
    assert "(none" not in r.stderr, r.stderr
    assert re.search(r"\[nested\] order https://\S+: the CA's answer is not an order object "
                     r"\(request rejected", r.stderr), r.stderr
