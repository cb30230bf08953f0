# External Account Binding against Pebble with externalAccountBindingRequired: the account made with the CA's key, a missing eab said clearly.
"""Issue 10, "EAB" (and issue 11's secret-file check).

Pebble requires EAB and knows one MAC key. acmed with `eab: {kid, hmac_key_file}` (the key written the way
a CA portal shows it: standard base64, padded, with a newline) gets its account and certificate; the
newAccount request carries the binding (HS256, the kid, the newAccount URL). Without `eab`, acmed says
which key to add and never sends newAccount. A wrong key: the CA's refusal, said. The key never reaches a
log, and check-config refuses a key file every user can read.
"""
import base64
import json
import os

import pytest

import pebble_env as pe

MAC = bytes(range(100, 132))            # the CA's MAC key for kid-1
MAC_B64URL = base64.urlsafe_b64encode(MAC).rstrip(b"=").decode()
pytestmark = [pytest.mark.acmed,
              pytest.mark.pebble(nonce_reject=0, config={"externalAccountBindingRequired": True,
                                                         "externalAccountMACKeys": {"kid-1": MAC_B64URL}})]

ISSUE_TIMEOUT = 180


def configure(acmed, workspace, eab):
    certs = [{"name": "eab", "key_type": "ecdsa-p256", "domains": ["eab.example.com"]}]
    acmed.write_config(certs, extra_ca={"eab": eab} if eab else None)
    return certs


def key_file(workspace, text, mode=0o600):
    p = workspace / "zerossl.eab"
    p.write_text(text)
    os.chmod(p, mode)
    return p


def all_output(acmed, extra=""):
    return extra + "".join(r.stdout + r.stderr for _, r in acmed.runs)


def test_eab_account_and_certificate(acmed, proxy, workspace):
    # as the CA's portal shows it: standard base64, padded, a newline
    key_file(workspace, base64.b64encode(MAC).decode() + "\n")
    certs = configure(acmed, workspace, "{kid: kid-1, hmac_key_file: zerossl.eab}")
    r = acmed.run("check-config")
    assert r.rc == 0, r.describe()
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    acct = proxy.log.select(kind="newAccount", method="POST")
    assert [e["status"] for e in acct] == [201], [(e["status"], e["resp_body"]) for e in acct]
    binding = acct[0]["payload"]["externalAccountBinding"]
    prot = json.loads(base64.urlsafe_b64decode(binding["protected"] + "=="))
    assert prot == {"alg": "HS256", "kid": "kid-1", "url": acct[0]["jws_url"]}, prot
    for secret in (MAC_B64URL, base64.b64encode(MAC).decode()):
        assert secret not in all_output(acmed), "the MAC key reached the output"


def test_eab_missing_is_said_and_no_account_is_asked(acmed, proxy, workspace):
    configure(acmed, workspace, None)
    r = acmed.run_once(timeout=60)
    assert r.rc == 1, r.describe()
    assert "CA pebble requires External Account Binding (its directory says externalAccountRequired): " \
           "add eab: {kid: ..., hmac_key_file: ...}" in r.stderr, r.stderr
    assert proxy.log.count(kind="newAccount", method="POST") == 0, proxy.log.by_kind()


def test_eab_wrong_key_refused_by_the_ca(acmed, proxy, workspace):
    key_file(workspace, base64.urlsafe_b64encode(bytes(32)).decode())
    configure(acmed, workspace, "{kid: kid-1, hmac_key_file: zerossl.eab}")
    r = acmed.run_once(timeout=60)
    assert r.rc == 1, r.describe()
    assert "cannot register the account" in r.stderr, r.stderr
    acct = proxy.log.select(kind="newAccount", method="POST")
    assert acct and all(e["status"] >= 400 for e in acct), [(e["status"], e["resp_body"]) for e in acct]


def test_eab_key_file_readable_by_all_is_a_check_config_error(acmed, proxy, workspace):
    p = key_file(workspace, MAC_B64URL + "\n", 0o644)
    configure(acmed, workspace, "{kid: kid-1, hmac_key_file: zerossl.eab}")
    r = acmed.run("check-config")
    assert r.rc == 2, r.describe()
    assert f"CA pebble: eab: hmac_key_file {p} is readable by every user (mode 0644): it is a secret" in r.stderr
    assert MAC_B64URL not in r.stdout + r.stderr
