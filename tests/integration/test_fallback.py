# `ca: [a, b]`: an order that CA a cannot take (down for maintenance) goes to CA b at once; status names the CA that issued.
"""Issue 10, "Fallback".

CA `flaky` is the fault proxy in front of Pebble, CA `steady` the same Pebble reached directly
(another directory URL, so another account). The proxy answers everything with the maintenance
503 while its outage lasts: the certificate is issued by `steady` without waiting for the
outage, with no failure counted, and `status` says which CA issued it.
"""
import json

import pytest

import pebble_env as pe

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]

ISSUE_TIMEOUT = 180       # a failure bound only: every wait is for an event


def config(acmed, pebble, proxy, workspace, certs):
    """Two CAs: flaky (the proxy, written as the first CA) and steady (Pebble itself)."""
    acmed.outputs = pe.write_config(acmed.config, workspace, proxy.directory_url, pebble.ca_bundle,
                                    pebble.http01_port, certs, ca_name="flaky")
    text = acmed.config.read_text().replace("certificates:\n", "  - name: steady\n"
                                            f"    directory: {json.dumps(pebble.directory_url)}\n"
                                            f"    ca_bundle: {json.dumps(str(pebble.ca_bundle))}\n"
                                            "certificates:\n", 1)
    acmed.config.write_text(text)


def cert(name):
    return {"name": name, "key_type": "ecdsa-p256", "domains": [f"{name}.fallback.example.com"],
            "ca": "[flaky, steady]"}


def status_of(acmed, name):
    r = acmed.run("status", "--json")
    assert r.rc == 0, r.describe()
    return {c["name"]: c for c in json.loads(r.stdout)["certificates"]}[name]


def test_down_for_maintenance_goes_to_the_next_ca(acmed, proxy, pebble, workspace):
    certs = [cert("web"), cert("api")]
    config(acmed, pebble, proxy, workspace, certs)
    r = acmed.run("check-config")
    assert r.rc == 0, r.describe()
    outage = proxy.outage()

    d = acmed.spawn("run")
    for c in certs:
        d.wait_for_stderr(rf"\[{c['name']}\] certificate issued", timeout=ISSUE_TIMEOUT)
    acmed.verify(certs)
    text = d.stderr
    assert "CA flaky unavailable" in text, text[-3000:]
    assert "ordering at CA steady" in text, text[-3000:]
    assert outage.hits, "the proxy (CA flaky) was never asked"
    # no order of flaky ever reached Pebble: every request the proxy answered was the outage's
    assert proxy.log.count(kind="newOrder", status=201) == 0, proxy.log.by_kind()
    for c in certs:
        st = status_of(acmed, c["name"])
        assert st["cas"] == ["flaky", "steady"], st
        assert st["issued_by_ca"] == "steady", st
        assert st["issued_by"] == pebble.directory_url, st
        assert st["failures"] == 0, st
        assert st["state"] == "valid", st
    r = acmed.run("status")
    assert r.rc == 0, r.describe()
    assert "(from CA steady)" in r.stdout, r.stdout
    assert d.stop() == 0


def test_run_once_falls_back(acmed, proxy, pebble, workspace):
    """--once: the same move within the run, and the outage remembered for the next run."""
    certs = [cert("cron")]
    config(acmed, pebble, proxy, workspace, certs)
    proxy.outage()
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert "ordering at CA steady" in r.stderr, r.stderr[-3000:]
    assert "done: 1 issued, 0 failed" in r.stderr, r.stderr[-3000:]
    st = status_of(acmed, "cron")
    assert st["issued_by_ca"] == "steady" and st["failures"] == 0, st


def test_a_refusal_at_the_first_ca_moves_on(acmed, proxy, pebble, workspace):
    """flaky up, issuing the first certificate; then it refuses this certificate
    (rejectedIdentifier): the forced renewal is issued by steady at once, no failure counted."""
    certs = [cert("pol")]
    config(acmed, pebble, proxy, workspace, certs)
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[pol\] certificate issued", timeout=ISSUE_TIMEOUT)
    assert status_of(acmed, "pol")["issued_by_ca"] == "flaky"
    proxy.add_rule(kind="newOrder", method="POST", action="respond", status=400,
                   headers={"Content-Type": "application/problem+json"},
                   body=json.dumps({"type": "urn:ietf:params:acme:error:rejectedIdentifier",
                                    "detail": "policy forbids issuing for this name"}).encode(),
                   count=1, name="refuse")
    before = pe.read_pem_certs((acmed.outputs["pol"] / "cert.pem").read_bytes())[0].serial_number
    r = acmed.run("renew", "pol", "--force")
    assert r.rc == 0, r.describe()
    d.wait_for_stderr(r"\[pol\] CA flaky: .*rejectedIdentifier.*; ordering at CA steady now", timeout=ISSUE_TIMEOUT)
    pe.wait_until(lambda: pe.read_pem_certs((acmed.outputs["pol"] / "cert.pem").read_bytes())[0].serial_number
                  != before, ISSUE_TIMEOUT, what="the renewed certificate installed")
    st = status_of(acmed, "pol")
    assert st["issued_by_ca"] == "steady" and st["failures"] == 0, st
    assert proxy.log.count(kind="newOrder", method="POST", status=400) == 1, proxy.log.by_kind()
    assert proxy.log.count(kind="newOrder", method="POST", status=201) == 1, proxy.log.by_kind()
    assert d.stop() == 0
