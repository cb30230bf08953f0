# Watching acmed: `status --check` (a monitoring plugin), deploy failures in `status`, systemd's STATUS line.
"""Issue 11, "Watching it".

- `acmed status --check`: the Nagios/Icinga plugin convention: one line naming the certificates, exit 0 OK,
  1 WARNING (a certificate failing or not deployed), 2 CRITICAL (expiring within 7 days, expired, none after a
  failure), 3 UNKNOWN (no status, a broken config). From the daemon and, without one, from state_dir.
- plain `status` shows a failed deploy, `--json` carries it (deploy_error).
- systemd's STATUS= line says when certificates are failing, and follows events (not only start and reload).
"""
import json
import re
import subprocess

import pytest

import pebble_env as pe
from service_env import NotifySocket
from test_service import reject_first_orders

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]

ISSUE_TIMEOUT = 180       # a failure bound only: every wait is for an event


def one_cert(name, **extra):
    c = {"name": name, "key_type": "ecdsa-p256", "domains": [f"{name}.watch.example.com"]}
    c.update(extra)
    return c


def check(acmed):
    r = acmed.run("status", "--check")
    assert r.stdout.count("\n") == 1, r.describe()          # one line, always
    return r.rc, r.stdout.rstrip("\n")


def status(acmed):
    r = acmed.run("status", "--json")
    assert r.rc == 0, r.describe()
    st = json.loads(r.stdout)
    return st, {c["name"]: c for c in st["certificates"]}


def test_check_ok_warning_unknown_and_status_shows_deploy_failures(acmed, proxy, workspace):
    fail_hook = workspace / "fail-hook.sh"
    fail_hook.write_text("#!/bin/sh\necho cannot copy to /etc/postfix >&2\nexit 4\n")
    fail_hook.chmod(0o755)
    good, hook, bad = one_cert("good"), one_cert("hookfail", exec=json.dumps([str(fail_hook)])), one_cert("bad")
    reject_first_orders(proxy, bad, times=1000)

    # Nothing issued yet, no daemon: from state_dir, every certificate is missing but none failed.
    acmed.write_config([good])
    rc, line = check(acmed)
    assert rc == 1 and line == ("ACMED WARNING - good not issued yet; 0 of 1 certificate OK | "
                                "certificates=1 ok=0 warning=1 critical=0"), line
    assert acmed.run_once(timeout=ISSUE_TIMEOUT).rc == 0
    rc, line = check(acmed)
    assert rc == 0 and line == "ACMED OK - 1 of 1 certificate OK | certificates=1 ok=1 warning=0 critical=0", line

    # The daemon: one failing at the CA, one whose deploy hook fails.
    acmed.write_config([good, hook, bad])
    ns = NotifySocket(workspace)
    try:
        d = acmed.spawn("run", env={"NOTIFY_SOCKET": str(ns.path)})
        d.wait_for_stderr(r"\[hookfail\] deploying the new certificate failed \(hook .*fail-hook\.sh exited with "
                          r"status 4\)", timeout=ISSUE_TIMEOUT)
        d.wait_for_stderr(r"\[bad\] .*rejectedIdentifier", timeout=ISSUE_TIMEOUT)

        def failing_status():
            st = [m.fields.get("STATUS", "") for m in ns.messages if m.has("STATUS")]
            return st[-1] if st and re.match(r"3 certificates, 2 failing \((hookfail|bad) and more\)", st[-1]) \
                else None
        line = pe.wait_until(failing_status, ISSUE_TIMEOUT, interval=0.1,
                             what=f"STATUS= naming 2 failing certificates: {ns.messages}")
        assert line.endswith("; 1 CA up"), line

        st, certs = status(acmed)
        assert st["daemon"] is True
        assert certs["hookfail"]["deploy_error"] and "exited with status 4" in certs["hookfail"]["deploy_error"]
        assert certs["hookfail"]["deploy_pending"] is True and certs["good"]["deploy_error"] is None
        table = acmed.run("status", env={"COLUMNS": "400"}).stdout
        row = next(x for x in table.splitlines() if x.startswith("hookfail "))
        assert "deploy failed: hook " in row, table

        # bad never had a certificate and failed: CRITICAL; hookfail's deploy failed: WARNING
        rc, line = check(acmed)
        assert rc == 2, line
        assert re.fullmatch(r"ACMED CRITICAL - bad has no certificate: creating the order: POST \S+: HTTP 400 "
                            r"[^;|]*; hookfail not deployed: hook \S+fail-hook\.sh exited with status 4; "
                            r"1 of 3 certificates OK \| certificates=3 ok=1 warning=1 critical=1", line), line
        d.stop()
    finally:
        ns.close()

    # Without the daemon: the same verdicts from state_dir.
    rc2, line2 = check(acmed)
    assert rc2 == rc and "hookfail not deployed" in line2, line2

    # A config that does not load: UNKNOWN, one line on stdout, the reason on stderr.
    acmed.config.write_text(acmed.config.read_text() + "bogus_key: 1\n")
    r = acmed.run("status", "--check")
    assert r.rc == 3 and r.stdout == "ACMED UNKNOWN - cannot load the configuration (see stderr)\n", r.describe()
    assert "bogus_key" in r.stderr


@pytest.mark.pebble(nonce_reject=0, config={"certificateValidityPeriod": 3 * 86400})
def test_check_critical_when_expiring_within_a_week(acmed, proxy):
    """Pebble issues 3-day certificates: the plugin says CRITICAL at once, naming the certificate."""
    c = one_cert("short", renew_before="1d")
    acmed.write_config([c])
    assert acmed.run_once(timeout=ISSUE_TIMEOUT).rc == 0
    rc, line = check(acmed)
    assert rc == 2, line
    assert re.fullmatch(r"ACMED CRITICAL - short expires in [23]d; 0 of 1 certificate OK \| "
                        r"certificates=1 ok=0 warning=0 critical=1", line), line
    # the exit code is the plugin's, whatever the shell
    assert subprocess.run([str(acmed.bin), "-c", str(acmed.config), "status", "--check"],
                          stdout=subprocess.DEVNULL).returncode == 2
