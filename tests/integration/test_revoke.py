# `acmed revoke NAME [--reason R]`: the CA revokes the live certificate (its management API says so) and a new one is in place at once.
"""Issue 10, "Account and revocation".

Through the running daemon and without one. keyCompromise: the replacement has a new key although
key_reuse is on; another reason keeps the key key_reuse keeps. Pebble's management API
(cert-status-by-serial) is asked, not the proxy: what the CA recorded is what counts.
"""
import json

import pytest

import pebble_env as pe

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]

ISSUE_TIMEOUT = 180       # a failure bound only: every wait is for an event


def leaf(acmed, name):
    return pe.read_pem_certs((acmed.outputs[name] / "cert.pem").read_bytes())[0]


def key_bytes(acmed, name):
    return (acmed.outputs[name] / "privkey.pem").read_bytes()


def replaced(acmed, name, serial):
    return lambda: (acmed.outputs[name] / "cert.pem").exists() and leaf(acmed, name).serial_number != serial


def test_revoke_through_the_daemon(acmed, proxy, pebble):
    certs = [{"name": "web", "key_type": "ecdsa-p256", "domains": ["web.revoke.example.com"], "key_reuse": "true"}]
    acmed.write_config(certs)
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[web\] certificate issued", timeout=ISSUE_TIMEOUT)
    acmed.verify(certs)
    first, first_key = leaf(acmed, "web"), key_bytes(acmed, "web")
    assert pebble.cert_status(first.serial_number)["Status"] == "Valid"

    # superseded: revoked, replaced at once, and key_reuse keeps the key
    r = acmed.run("revoke", "web", "--reason", "superseded")
    assert r.rc == 0, r.describe()
    assert "web: revoked at CA pebble (superseded); ordering its replacement now" in r.stdout, r.stdout
    st = pebble.cert_status(first.serial_number)
    assert st["Status"] == "Revoked" and st["Reason"] == 4, st
    revokes = proxy.log.select(kind="revokeCert", method="POST")
    assert [e["status"] for e in revokes] == [200], revokes
    assert revokes[0]["payload"]["reason"] == 4 and "kid" in revokes[0], revokes[0]
    pe.wait_until(replaced(acmed, "web", first.serial_number), ISSUE_TIMEOUT, what="the replacement installed")
    d.wait_for_stderr(r"\[web\] certificate (issued|renewed)", timeout=ISSUE_TIMEOUT)
    acmed.verify(certs)
    second = leaf(acmed, "web")
    assert key_bytes(acmed, "web") == first_key, "key_reuse: a revocation for another reason keeps the key"
    assert pebble.cert_status(second.serial_number)["Status"] == "Valid"

    # keyCompromise: a new key, key_reuse or not
    r = acmed.run("revoke", "web", "--reason=keyCompromise")
    assert r.rc == 0, r.describe()
    assert "revoked at CA pebble (keyCompromise); ordering its replacement now, with a new key" in r.stdout
    assert pebble.cert_status(second.serial_number)["Reason"] == 1
    pe.wait_until(replaced(acmed, "web", second.serial_number), ISSUE_TIMEOUT, what="the replacement installed")
    acmed.verify(certs)
    assert key_bytes(acmed, "web") != first_key
    d.wait_for_stderr(r"key_reuse: the key in use was revoked as compromised; a new key")
    # the revocation is forgotten once the replacement is installed (the state written off the loop)
    state_file = acmed.ws / "state" / "certs" / "web.json"
    pe.wait_until(lambda: not {"revoked_cert", "key_compromised"} & set(json.loads(state_file.read_text())),
                  ISSUE_TIMEOUT, what="the revocation forgotten in web's state")

    # refused before anything is sent
    mark = proxy.log.mark()
    r = acmed.run("revoke", "web", "--reason", "stolen")
    assert r.rc == 2 and "unknown reason stolen" in r.stderr, r.describe()
    r = acmed.run("revoke", "nosuch")
    assert r.rc == 2 and "unknown certificate: nosuch" in r.stderr, r.describe()
    assert proxy.log.count(since=mark) == 0
    assert d.stop() == 0


def test_revoke_without_a_daemon(acmed, proxy, pebble):
    certs = [{"name": "mail", "key_type": "rsa-2048", "domains": ["mail.revoke.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    first = leaf(acmed, "mail")
    mark = proxy.log.mark()
    r = acmed.run("revoke", "mail", timeout=ISSUE_TIMEOUT + 60)
    assert r.rc == 0, r.describe()
    assert "no daemon runs: the revocation and the new certificate are done here" in r.stderr, r.stderr
    assert "mail: revoked at CA pebble (unspecified)" in r.stdout, r.stdout
    st = pebble.cert_status(first.serial_number)
    assert st["Status"] == "Revoked", st
    assert leaf(acmed, "mail").serial_number != first.serial_number
    acmed.verify(certs)
    assert proxy.log.count(kind="newAccount", since=mark) == 0, "the account that ordered it revokes it"
    assert proxy.log.count(kind="newOrder", method="POST", status=201, since=mark) == 1
    assert not (acmed.ws / "run" / "acmed.pid").exists()
