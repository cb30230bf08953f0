# key_reuse and key_group: a renewal keeps the private key in use (TLSA/DANE, pinning) until key_type changes; a group may read the key.
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


def test_key_group_makes_the_key_group_readable_from_the_start(acmed, proxy):
    """key_group: privkey.pem 0640 with that group (the others 0644), as installed; without it 0600."""
    import grp
    import os
    import stat
    group = "nogroup"
    gid = grp.getgrnam(group).gr_gid
    certs = [{"name": "grp", "key_type": "ecdsa-p256", "domains": ["grp.reuse.example.com"], "key_group": group},
             {"name": "own", "key_type": "ecdsa-p256", "domains": ["own.reuse.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    acmed.verify(certs[1:])                 # (its checks want 0600 for the key)
    st = os.stat(acmed.outputs["grp"] / "privkey.pem")
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o640, gid), (oct(st.st_mode), st.st_gid)
    assert stat.S_IMODE(os.stat(acmed.outputs["grp"] / "fullchain.pem").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(acmed.outputs["own"] / "privkey.pem").st_mode) == 0o600
    # a group that does not exist is an error of the file, not of the first renewal
    certs[0]["key_group"] = "no-such-group-acmed"
    acmed.write_config(certs)
    r = acmed.run("check-config")
    assert r.rc == 2 and 'key_group: no group "no-such-group-acmed" on this system' in r.stderr, r.describe()
