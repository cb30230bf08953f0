# `acmed account rollover` (RFC 8555 keyChange, the old key kept until the CA took the new one) and `account deactivate CA --yes`, asked of Pebble afterwards.
"""Issue 10, "Account and revocation".

What the CA thinks of a key is asked of Pebble directly (acme_jws.py): after a rollover the old key
finds no account and the new one finds the same account URL; after a deactivation the account is
refused. A rollover cut off by a crash is set up as the crash leaves it (account.key the old key,
account.key.next the new one) on both sides of the CA's answer.
"""
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import acme_jws
import pebble_env as pe

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]

ISSUE_TIMEOUT = 180


def acct_dir(acmed):
    return acmed.ws / "state" / "accounts" / "pebble"


def kid_of(acmed):
    return json.loads((acct_dir(acmed) / "account.json").read_text())["kid"]


def cert(name):
    return {"name": name, "key_type": "ecdsa-p256", "domains": [f"{name}.acct.example.com"]}


def test_rollover_without_and_through_the_daemon(acmed, proxy, pebble):
    acmed.write_config([cert("one")])
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    kid, old_pem = kid_of(acmed), (acct_dir(acmed) / "account.key").read_bytes()
    ca = acme_jws.Client(proxy.directory_url, pebble.ca_bundle)
    assert ca.lookup(acme_jws.load_key(old_pem))[1] == kid

    r = acmed.run("account", "rollover")
    assert r.rc == 0, r.describe()
    assert f"CA pebble: account {kid} now signs with its new key; the old key is gone" in r.stdout, r.stdout
    new_pem = (acct_dir(acmed) / "account.key").read_bytes()
    assert new_pem != old_pem
    assert not (acct_dir(acmed) / "account.key.next").exists()
    assert (acct_dir(acmed) / "account.key").stat().st_mode & 0o777 == 0o600
    changes = proxy.log.select(kind="keyChange", method="POST")
    assert [e["status"] for e in changes] == [200], changes
    assert changes[0].get("kid") == kid
    # Pebble: the old key finds nothing, the new one the same account
    status, _, body = ca.lookup(acme_jws.load_key(old_pem))
    assert status == 400 and body["type"].endswith("accountDoesNotExist"), (status, body)
    assert ca.lookup(acme_jws.load_key(new_pem))[1] == kid

    # later orders sign with the new key (Pebble would refuse the old one), same account
    mark = proxy.log.mark()
    acmed.write_config([cert("one"), cert("two")])
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    acmed.verify([cert("two")])
    assert proxy.log.count(kind="newAccount", since=mark) == 0
    assert {e.get("kid") for e in proxy.log.select(kind="newOrder", since=mark)} == {kid}

    # through the running daemon: it signs with the new key at once
    d = acmed.spawn("run")
    d.wait_for_stderr(r"start-up: every certificate looked at", timeout=60)
    r = acmed.run("account", "rollover", "pebble")
    assert r.rc == 0, r.describe()
    assert "now signs with its new key" in r.stdout, r.stdout
    newest = (acct_dir(acmed) / "account.key").read_bytes()
    assert newest != new_pem and ca.lookup(acme_jws.load_key(newest))[1] == kid
    mark = proxy.log.mark()
    r = acmed.run("renew", "two", "--force")
    assert r.rc == 0, r.describe()
    d.wait_for_stderr(r"\[two\] certificate (issued|renewed)", timeout=ISSUE_TIMEOUT)
    assert proxy.log.count(kind="newOrder", method="POST", status=201, since=mark) == 1
    assert d.stop() == 0


@pytest.mark.parametrize("ca_took_it", [True, False])
def test_rollover_cut_off_by_a_crash(acmed, proxy, pebble, ca_took_it):
    """account.key the old key, account.key.next the new one: as a crash leaves it before or after
    the CA's answer. The next start asks the CA which is the account's and keeps that one."""
    acmed.write_config([cert("one")])
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    kid, old_pem = kid_of(acmed), (acct_dir(acmed) / "account.key").read_bytes()
    if ca_took_it:
        r = acmed.run("account", "rollover")
        assert r.rc == 0, r.describe()
        new_pem = (acct_dir(acmed) / "account.key").read_bytes()
        (acct_dir(acmed) / "account.key").write_bytes(old_pem)
    else:           # a key the CA never saw
        new_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    nxt = acct_dir(acmed) / "account.key.next"
    nxt.write_bytes(new_pem)
    nxt.chmod(0o600)

    mark = proxy.log.mark()
    acmed.write_config([cert("one"), cert("two")])
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    want = new_pem if ca_took_it else old_pem
    assert (acct_dir(acmed) / "account.key").read_bytes() == want
    assert not nxt.exists()
    said = "after the CA took the new key" if ca_took_it else "before the CA took the new key"
    assert f"a key rollover was cut off {said}" in r.stderr, r.stderr[-3000:]
    assert proxy.log.count(kind="newAccount", method="POST", status=201, since=mark) == 0
    assert {e.get("kid") for e in proxy.log.select(kind="newOrder", since=mark)} == {kid}


def test_deactivate(acmed, proxy, pebble):
    acmed.write_config([cert("one")])
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    kid, old_pem = kid_of(acmed), (acct_dir(acmed) / "account.key").read_bytes()

    mark = proxy.log.mark()
    r = acmed.run("account", "deactivate", "pebble")
    assert r.rc == 2 and "Add --yes" in r.stderr, r.describe()
    assert proxy.log.count(since=mark) == 0
    r = acmed.run("account", "deactivate", "pebble", "--yes")
    assert r.rc == 0, r.describe()
    assert f"account {kid} deactivated" in r.stdout, r.stdout
    assert not (acct_dir(acmed) / "account.key").exists()
    assert not (acct_dir(acmed) / "account.json").exists()
    ca = acme_jws.Client(proxy.directory_url, pebble.ca_bundle)
    status, _, body = ca.post(kid, acme_jws.load_key(old_pem), None, kid=kid)
    assert status in (401, 403) and body["type"].endswith("unauthorized"), (status, body)

    # the next order registers a new account
    mark = proxy.log.mark()
    acmed.write_config([cert("one"), cert("two")])
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert proxy.log.count(kind="newAccount", method="POST", status=201, since=mark) == 1
    assert kid_of(acmed) != kid


def test_deactivate_through_the_daemon_then_order(acmed, proxy, pebble):
    """The running daemon deactivates its account, then orders with a new account and a new key
    (the old key is refused by the CA for good)."""
    acmed.write_config([cert("one")])
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[one\] certificate issued", timeout=ISSUE_TIMEOUT)
    kid, old_pem = kid_of(acmed), (acct_dir(acmed) / "account.key").read_bytes()
    r = acmed.run("account", "deactivate", "pebble", "--yes")
    assert r.rc == 0, r.describe()
    assert f"account {kid} deactivated" in r.stdout, r.stdout
    mark = proxy.log.mark()
    r = acmed.run("renew", "one", "--force")
    assert r.rc == 0, r.describe()
    d.wait_for_stderr(r"CA pebble: account \S+ created", timeout=ISSUE_TIMEOUT)
    pe.wait_until(lambda: proxy.log.count(kind="cert", status=200, since=mark) == 1, ISSUE_TIMEOUT,
                  what="the certificate ordered with the new account")
    assert proxy.log.count(kind="newAccount", method="POST", status=201, since=mark) == 1
    assert (acct_dir(acmed) / "account.key").read_bytes() != old_pem
    assert kid_of(acmed) != kid
    assert d.stop() == 0
