# No configuration makes acmed hammer a CA: the re-issue floor, renew_before that would renew at once, the ceiling on new orders per hour.
"""Issue 11, defect 1: `renew_before: 2000d` (longer than the certificate's lifetime) passed
check-config, and the daemon then ordered without pause (1038 orders in 40 s against Pebble).

- a certificate younger than the re-issue floor (the larger of 1 h and 1/10 of its lifetime) is
  never ordered again unless forced;
- a renew_before that would renew a new certificate at once is ignored with one warning (and
  check-config says so when the lifetime is known);
- each CA has a ceiling on new orders per hour (`orders_per_hour`, default 50): further orders
  wait with a clear message, and the count survives a restart.
"""
import datetime
import json
import re
import time

import pytest

import pebble_env as pe

# nonce_reject=0: these tests count newOrder requests, and a badNonce answer (5 % of them by default,
# on both Pebbles) makes acmed send the same order again
pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]


def new_orders(proxy, since=0):
    """Orders the CA created (a newOrder resent after badNonce is one order)."""
    return proxy.log.count(kind="newOrder", method="POST", status=201, since=since)


def utc(dt):
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def one_cert(name, **extra):
    c = {"name": name, "key_type": "ecdsa-p256", "domains": [f"{name}.safety.example.com"]}
    c.update(extra)
    return c


def test_renew_before_longer_than_lifetime_orders_once(acmed, proxy):
    """Once a certificate is there, run --once finds nothing due; before the fix every run ordered again
    (and a daemon ordered without pause)."""
    certs = [one_cert("rb2000", renew_before="2000d")]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=120)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert new_orders(proxy) == 1, proxy.log.by_kind()
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=120)
    assert r.rc == 0, r.describe()
    assert new_orders(proxy, since=mark) == 0, proxy.log.by_kind(since=mark)
    assert re.search(r"\[rb2000\] renew_before 2000d would renew each new certificate at once \(it lives \d+d, "
                     r"and acmed replaces none younger than \d+d\); ignoring it", r.stderr), r.stderr


def test_renew_before_daemon_schedules_after_floor(acmed, proxy):
    """The daemon issues once, warns once, and schedules the renewal in the future (1/3 of the life left).
    The newest Pebble's ARI is hidden: the lifetime rule is under test (with ARI the CA's window decides)."""
    proxy.hide_ari()
    certs = [one_cert("rbd", renew_before="2000d")]
    acmed.write_config(certs)
    d = acmed.spawn("run", env={"TZ": "UTC"})
    d.wait_for_stderr(r"\[rbd\] certificate issued, valid until .* renewal at", timeout=180)
    text = d.stderr
    assert new_orders(proxy) == 1, proxy.log.by_kind()
    assert len(re.findall(r"renew_before 2000d would renew", text)) == 1, text
    leaf = pe.read_pem_certs((acmed.outputs["rbd"] / "cert.pem").read_bytes())[0]
    nb, na = utc(leaf.not_valid_before), utc(leaf.not_valid_after)
    m = re.search(r"\[rbd\] certificate issued, valid until .* renewal at (\S+ \S+)", text)
    at = utc(datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
    life = na - nb
    # The default rule: 1/3 of the lifetime left, minus a spread of at most an hour.
    assert na - life / 3 - 3601 <= at <= na - life / 3 + 1, (m.group(0), nb, na)
    # status agrees: valid, the next renewal in the future.
    r = acmed.run("status", "--json")
    assert r.rc == 0, r.describe()
    st = {c["name"]: c for c in json.loads(r.stdout)["certificates"]}["rbd"]
    assert st["state"] == "valid", st
    d.stop()
    assert new_orders(proxy) == 1


def test_check_config_warns_about_renew_before(acmed, proxy, workspace):
    """check-config warns (FILE:LINE:COL, exit 0) when the lifetime is known: a known CA, or the live certificate."""
    cfg = workspace / "le.yaml"
    cfg.write_text("state_dir: state\n"
                   "cas:\n"
                   "  - name: le\n"
                   "    directory: https://acme-v02.api.letsencrypt.org/directory\n"
                   "certificates:\n"
                   "  - name: web\n"
                   "    domains: [web.example.org]\n"
                   "    renew_before: 85d\n"
                   "  - name: fine\n"
                   "    domains: [fine.example.org]\n"
                   "    renew_before: 30d\n")
    r = pe.run_acmed(["check-config"], config=cfg, acmed_bin=acmed.bin)
    assert r.rc == 0, r.describe()
    assert f"{cfg}:8:19: warning: certificate web: renew_before 85d would renew each new certificate at once" \
        in r.stderr, r.stderr
    assert "Let's Encrypt" in r.stderr and "fine" not in r.stderr
    assert "1 warning" in r.stdout

    # Pebble's certificates live 5 years: the live one tells check-config so.
    certs = [one_cert("live", renew_before="2000d")]
    acmed.write_config(certs)
    r = acmed.run("check-config")
    assert r.rc == 0 and "warning" not in r.stderr, r.describe()    # no certificate yet, unknown CA
    assert acmed.run_once(timeout=120).rc == 0
    r = acmed.run("check-config")
    assert r.rc == 0, r.describe()
    assert re.search(r":\d+:\d+: warning: certificate live: renew_before 2000d would renew each new certificate "
                     r"at once: its certificate in .* lives \d+d", r.stderr), r.stderr


def test_orders_per_hour_ceiling_parks_and_survives_restart(acmed, proxy):
    """orders_per_hour: 2 with 3 certificates: 2 orders, the third waits with a message; a restart does not reset it."""
    certs = [one_cert(f"ceil{i}") for i in range(3)]
    acmed.write_config(certs, extra_ca={"orders_per_hour": 2, "max_parallel": 1})
    r = acmed.run_once(timeout=120)
    assert r.rc == 1, r.describe()
    assert new_orders(proxy) == 2, proxy.log.by_kind()
    assert re.search(r"CA pebble: 2 new orders in the last hour, the ceiling \(orders_per_hour: 2\); "
                     r"1 certificate waits; next new order at ", r.stderr), r.stderr
    assert re.search(r"\[ceil\d\] not ordered: CA pebble reached its ceiling of 2 new orders an hour", r.stderr)
    issued = [c for c in certs if (acmed.outputs[c["name"]] / "fullchain.pem").exists()]
    assert len(issued) == 2

    mark = proxy.log.mark()
    r = acmed.run_once(timeout=120)
    assert r.rc == 1, r.describe()
    assert new_orders(proxy, since=mark) == 0, proxy.log.by_kind(since=mark)
    assert "the ceiling (orders_per_hour: 2)" in r.stderr

    # Raising the ceiling lets the third one through, and only it.
    acmed.write_config(certs, extra_ca={"orders_per_hour": 3})
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=120)
    assert r.rc == 0, r.describe()
    assert new_orders(proxy, since=mark) == 1
    acmed.verify(certs)


@pytest.mark.pebble(nonce_reject=0)
def test_ari_asking_for_every_new_certificate_is_obeyed_once(acmed, proxy):
    """A CA whose renewalInfo says "renew now" for every certificate: ARI is obeyed (a revocation may be
    coming), once; the replacement, young too, waits for the re-issue floor, with one message."""
    now = time.time()
    proxy.enable_ari()
    proxy.set_ari_window("*", now - 2 * 86400, now - 86400)
    certs = [one_cert("arihammer")]
    acmed.write_config(certs, extra_ca={"orders_per_hour": 3})
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[arihammer\] the CA asks again \(ARI\) to replace a certificate issued at .*; "
                      r"the last such replacement was at .*, so this one waits until", timeout=90)
    assert new_orders(proxy) == 2, proxy.log.by_kind()
    r = acmed.run("status", "--json")
    st = {c["name"]: c for c in json.loads(r.stdout)["certificates"]}["arihammer"]
    assert st["state"] == "valid" and st["next_at"], st
    d.stop()
    assert new_orders(proxy) == 2
    assert d.stderr.count("the CA asks again (ARI)") == 1, d.stderr
