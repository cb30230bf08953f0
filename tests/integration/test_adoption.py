# Changing a CA's settings or its directory, as an admin adopting acmed does: what re-issues and what does not.
"""Issue 11, defects 2 and 3.

- Adding a `contact` (or changing timeout, max_parallel, ca_bundle) and reloading re-ordered every
  certificate of that CA, and the contact never reached the CA. Now only another directory (or a
  certificate's own names, key type or CA) re-issues; a contact change is sent to the CA as an account
  update, on reload and on start alike.
- Moving a CA's `directory` from staging to production kept the staging certificates until their normal
  renewal. acmed now records which directory issued each certificate and re-issues when the configured one
  differs, on restart as on reload; `status` shows the issuer and flags test CAs.
"""
import json
import re
import shutil

import pytest

import pebble_env as pe

# nonce_reject=0: these tests count the CA's requests, and a badNonce answer makes acmed resend one
pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]

ISSUE_TIMEOUT = 180       # a failure bound only: every wait is for an event


def one_cert(name):
    return {"name": name, "key_type": "ecdsa-p256", "domains": [f"{name}.adopt.example.com"]}


def new_orders(proxy, since=0):
    return proxy.log.count(kind="newOrder", method="POST", status=201, since=since)


def status(acmed):
    r = acmed.run("status", "--json")
    assert r.rc == 0, r.describe()
    return {c["name"]: c for c in json.loads(r.stdout)["certificates"]}


def daemon_settled(acmed, d, names):
    """The running daemon's status once every certificate is valid and idle (nothing queued or ordering)."""
    def settled():
        if not d.alive():
            raise AssertionError(f"acmed exited:\n{d.stderr[-4000:]}")
        r = acmed.run("status", "--json")
        if r.rc != 0:
            return None
        st = json.loads(r.stdout)
        certs = {c["name"]: c for c in st["certificates"]}
        ok = st.get("daemon") is True and all(certs[n]["state"] == "valid" for n in names)
        return certs if ok else None
    return pe.wait_until(settled, ISSUE_TIMEOUT, interval=0.2, what="every certificate valid and idle")


def reload(acmed):
    r = acmed.run("reload")
    assert r.rc == 0, r.describe()
    return r.stdout


def account_updates(proxy, since=0):
    """(payload, status, CA's answer) of each signed POST to the account URL that carried a payload."""
    return [(e["payload"], e["status"], e["resp_body"]) for e in proxy.log.select(kind="account", method="POST",
                                                                                   since=since)
            if isinstance(e["payload"], dict)]


def serial(acmed, name):
    return pe.read_pem_certs((acmed.outputs[name] / "cert.pem").read_bytes())[0].serial_number


def test_contact_and_settings_change_update_the_account_and_reissue_nothing(acmed, proxy, workspace):
    certs = [one_cert("ct1"), one_cert("ct2")]
    names = [c["name"] for c in certs]
    acmed.write_config(certs, contact=())
    d = acmed.spawn("run")
    daemon_settled(acmed, d, names)
    assert new_orders(proxy) == 2, proxy.log.by_kind()
    assert account_updates(proxy) == []       # registered with no contact: nothing to update

    # A contact, a timeout and max_parallel: nothing to re-issue; the CA gets the contact.
    mark = proxy.log.mark()
    acmed.write_config(certs, contact=("mailto:ops@example.org",), extra_ca={"timeout": "30s", "max_parallel": 2})
    assert reload(acmed) == "reloaded: 2 certificates (0 added, 0 removed, 0 changed)\n"
    d.wait_for_stderr(r"CA pebble: the account's contact is now mailto:ops@example\.org", timeout=ISSUE_TIMEOUT)
    ups = account_updates(proxy, since=mark)
    assert [(p, s) for p, s, _ in ups] == [({"contact": ["mailto:ops@example.org"]}, 200)], ups
    assert ups[0][2]["contact"] == ["mailto:ops@example.org"], ups        # what Pebble now has
    daemon_settled(acmed, d, names)
    assert new_orders(proxy, since=mark) == 0, proxy.log.by_kind(since=mark)

    # Another ca_bundle file (same roots): the CA is set up anew, the certificates stay.
    bundle = workspace / "bundle-copy.pem"
    shutil.copyfile(acmed.pebble.ca_bundle, bundle)
    text = acmed.config.read_text()
    acmed.config.write_text(text.replace(json.dumps(str(acmed.pebble.ca_bundle)), json.dumps(str(bundle))))
    assert str(bundle) in acmed.config.read_text()
    assert reload(acmed) == "reloaded: 2 certificates (0 added, 0 removed, 0 changed)\n"
    daemon_settled(acmed, d, names)
    assert new_orders(proxy, since=mark) == 0, proxy.log.by_kind(since=mark)
    d.stop()

    # Changed while acmed was stopped: the account record says what the CA has, the update goes at start.
    mark = proxy.log.mark()
    acmed.write_config(certs, contact=())
    d = acmed.spawn("run")
    d.wait_for_stderr(r"CA pebble: the account's contact is now \(none\)", timeout=ISSUE_TIMEOUT)
    daemon_settled(acmed, d, names)
    ups = account_updates(proxy, since=mark)
    assert [(p, s) for p, s, _ in ups] == [({"contact": []}, 200)], ups
    assert new_orders(proxy, since=mark) == 0, proxy.log.by_kind(since=mark)
    d.stop()

    # Unchanged: a restart sends nothing.
    mark = proxy.log.mark()
    d = acmed.spawn("run")
    daemon_settled(acmed, d, names)
    d.stop()
    assert account_updates(proxy, since=mark) == [] and new_orders(proxy, since=mark) == 0


def test_directory_change_reissues_on_restart_and_reload(acmed, proxy, pebble):
    """"Staging" is Pebble through the proxy, "production" Pebble itself: two directory URLs."""
    certs = [one_cert("dir1")]
    staging, production = proxy.directory_url, pebble.directory_url
    assert staging != production
    acmed.write_config(certs)
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    first = serial(acmed, "dir1")
    st = status(acmed)["dir1"]
    assert st["issued_by"] == staging and st["test_ca"] is True, st
    assert st["issuer"].startswith("Pebble Intermediate CA"), st

    # Restart (run --once) with the production directory: the staging certificate goes.
    acmed.directory_url = production
    acmed.write_config(certs)
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert re.search(r"\[dir1\] the certificate in use was issued by " + re.escape(staging) +
                     r", not by the configured CA \(" + re.escape(production) + r"\): ordering", r.stderr), r.stderr
    second = serial(acmed, "dir1")
    assert second != first
    assert status(acmed)["dir1"]["issued_by"] == production
    # Once replaced, nothing more: the next run finds it fine.
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0 and serial(acmed, "dir1") == second, r.describe()

    # Reload back to the other directory: re-issued there (the proxy sees the order).
    d = acmed.spawn("run")
    daemon_settled(acmed, d, ["dir1"])
    mark = proxy.log.mark()
    acmed.directory_url = staging
    acmed.write_config(certs)
    assert reload(acmed) == "reloaded: 1 certificate (0 added, 0 removed, 1 changed)\n"

    def reissued():
        st = status(acmed)["dir1"]
        return st if st["issued_by"] == staging and st["state"] == "valid" else None
    pe.wait_until(reissued, ISSUE_TIMEOUT, interval=0.2, what="dir1 issued again by the other directory")
    assert new_orders(proxy, since=mark) == 1, proxy.log.by_kind(since=mark)
    assert serial(acmed, "dir1") not in (first, second)
    d.stop()


def key_kind(acmed, name):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    key = pe.read_pem_certs((acmed.outputs[name] / "cert.pem").read_bytes())[0].public_key()
    return "rsa" if isinstance(key, rsa.RSAPublicKey) else "ec" if isinstance(key, ec.EllipticCurvePublicKey) else "?"


def test_key_type_not_set_keeps_the_certificates_type(acmed, proxy):
    """An RSA certificate (certbot's default) under a config without key_type stays RSA: not re-issued at once
    as ECDSA (as it was, with only "the configured key type changed" in the log), and renewed as RSA."""
    c = {"name": "kt", "key_type": "rsa-2048", "domains": ["kt.adopt.example.com"]}
    acmed.write_config([c])
    assert acmed.run_once(timeout=ISSUE_TIMEOUT).rc == 0
    assert key_kind(acmed, "kt") == "rsa"
    first = serial(acmed, "kt")

    def without_key_type():
        text = acmed.config.read_text()
        acmed.config.write_text(re.sub(r"\n    key_type: [^\n]*", "", text))
        assert "key_type" not in acmed.config.read_text()

    acmed.write_config([c])
    without_key_type()
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert new_orders(proxy, since=mark) == 0, r.stderr
    assert serial(acmed, "kt") == first
    assert status(acmed)["kt"]["key_type"] == "rsa-2048"

    # Another name: a new certificate, of the same type.
    c["domains"].append("www.kt.adopt.example.com")
    acmed.write_config([c])
    without_key_type()
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert serial(acmed, "kt") != first and key_kind(acmed, "kt") == "rsa", r.stderr
    pe.verify_output_dir(acmed.outputs["kt"], c["domains"], "rsa-2048", acmed.pebble.root_path)

    # key_type given: it wins, and the log says what differs.
    c["key_type"] = "ecdsa-p256"
    acmed.write_config([c])
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert "[kt] the configured key_type ecdsa-p256 differs from the certificate's key (rsa-2048): ordering" \
        in r.stderr, r.stderr
    assert key_kind(acmed, "kt") == "ec"
