# key_reuse: a renewal keeps the private key in use (TLSA/DANE, pinning), until key_type changes.
"""Issue 10, "Keys and files".

Two certificates, one with `key_reuse: true`: forced renewals give both a new certificate; the one with
key_reuse keeps the very same key (privkey.pem unchanged, the new certificate holds it), the other gets a
new key. Then key_type changes: the reused key is of the old type, so the next order makes a new one.
"""
import pytest

import pebble_env as pe

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]

ISSUE_TIMEOUT = 180


def key_and_serial(acmed, name):
    out = acmed.outputs[name]
    return (out / "privkey.pem").read_bytes(), pe.read_pem_certs((out / "cert.pem").read_bytes())[0].serial_number


def renew_forced(acmed, d, name, count):
    r = acmed.run("renew", name, "--force")
    assert r.rc == 0, r.describe()
    d.wait_for_stderr(rf"(?s)(\[{name}\] certificate (issued|renewed).*){{{count}}}", timeout=ISSUE_TIMEOUT)


def test_key_reuse_keeps_the_key_until_key_type_changes(acmed, proxy):
    certs = [{"name": "dane", "key_type": "ecdsa-p256", "domains": ["dane.reuse.example.com"], "key_reuse": "true"},
             {"name": "plain", "key_type": "ecdsa-p256", "domains": ["plain.reuse.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    dane0, plain0 = key_and_serial(acmed, "dane"), key_and_serial(acmed, "plain")

    d = acmed.spawn("run")
    d.wait_for_stderr(r"start-up: every certificate looked at", timeout=60)
    renew_forced(acmed, d, "dane", 1)
    renew_forced(acmed, d, "plain", 1)
    d.wait_for_stderr(r"\[dane\] key_reuse: ordering with the key in use")
    d.stop()
    dane1, plain1 = key_and_serial(acmed, "dane"), key_and_serial(acmed, "plain")
    assert dane1[1] != dane0[1] and dane1[0] == dane0[0], "key_reuse: a new certificate with the same key"
    assert plain1[1] != plain0[1] and plain1[0] != plain0[0], "without key_reuse: a new key"
    acmed.verify(certs)

    # another key_type: the key in use no longer fits, the order makes a new one
    certs[0]["key_type"] = "ecdsa-p384"
    acmed.write_config(certs)
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    dane2 = key_and_serial(acmed, "dane")
    assert dane2[0] != dane1[0], "key_type changed: a new key"
    acmed.verify(certs)
