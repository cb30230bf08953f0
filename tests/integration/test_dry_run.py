# `acmed renew NAME --dry-run`: a whole order at the CA's staging directory through the running daemon; nothing installed, nothing in state changes.
"""Issue 11, "Trying before trusting".

The CA's `directory` is Pebble itself and its `staging:` is the fault proxy in front of the same Pebble:
what the proxy sees is what the staging CA saw. A dry run registers the staging account, orders,
validates through the daemon's own listener, finalizes and downloads; the live files, the job state and
the deploy hook stay untouched. A failed dry run says why, exits 1 and counts as no failure of the
certificate. For a CA without a staging directory it refuses before any request; without a daemon the
command runs the same dry run itself.
"""
import json
import os

import pytest

import pebble_env as pe

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]

ISSUE_TIMEOUT = 180       # a failure bound only: every wait is for an event
DRY_TIMEOUT = 300


def config(acmed, pebble, proxy, workspace, staging=True):
    hook = workspace / "deployed.sh"
    hook.write_text(f"#!/bin/sh\necho \"$ACMED_CERT_NAME\" >> {workspace}/deployed.log\n")
    hook.chmod(0o755)
    certs = [{"name": "web", "key_type": "ecdsa-p256", "domains": ["web.dry.example.com", "www.dry.example.com"],
              "ca": "pebble", "exec": json.dumps([str(hook)])},
             {"name": "other", "key_type": "rsa-2048", "domains": ["other.dry.example.com"],
              "ca": "nostaging"}]
    extra_ca = {"staging": json.dumps(proxy.directory_url)} if staging else None
    outputs = pe.write_config(acmed.config, workspace, pebble.directory_url, pebble.ca_bundle, pebble.http01_port,
                              certs, extra_ca=extra_ca)
    # a second CA, the same Pebble, without a staging directory
    text = acmed.config.read_text().replace("certificates:\n", "  - name: nostaging\n"
                                            f"    directory: {json.dumps(pebble.directory_url)}\n"
                                            f"    ca_bundle: {json.dumps(str(pebble.ca_bundle))}\n"
                                            "certificates:\n", 1)
    acmed.config.write_text(text)
    acmed.outputs = outputs
    return certs


def snapshot(acmed, workspace):
    """What a dry run must not change: the live files (bytes and identity), web's job state, the deploy log."""
    live = {}
    for name, out in acmed.outputs.items():
        for f in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"):
            p = out / f
            st = p.stat()
            live[str(p)] = (p.read_bytes(), st.st_ino, st.st_mtime_ns)
    # the job state of the certificate tried, but for the ARI data the daemon refreshes on its own
    state = {k: v for k, v in json.loads((workspace / "state" / "certs" / "web.json").read_text()).items()
             if k != "ari"}
    log = (workspace / "deployed.log").read_text() if (workspace / "deployed.log").exists() else ""
    return live, state, log


def test_dry_run_orders_at_staging_and_changes_nothing(acmed, proxy, pebble, workspace):
    certs = config(acmed, pebble, proxy, workspace)
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert proxy.log.count() == 0, "the production CA is Pebble itself: the proxy (staging) saw nothing yet"
    before = snapshot(acmed, workspace)

    d = acmed.spawn("run")
    d.wait_for_stderr(r"start-up: every certificate looked at", timeout=60)
    r = acmed.run("renew", "web", "--dry-run", timeout=DRY_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert f"web: ok: the staging CA ({proxy.directory_url}) issued it; nothing installed" in r.stdout, r.stdout
    # the staging CA saw a whole order from a staging account of its own
    kinds = proxy.log.by_kind()
    assert proxy.log.count(kind="newAccount", method="POST", status=201) == 1, kinds
    assert proxy.log.count(kind="newOrder", method="POST", status=201) == 1, kinds
    orders = proxy.log.select(kind="newOrder", method="POST", status=201)
    assert sorted(orders[0]["payload"]["identifiers"], key=lambda i: i["value"]) == [
        {"type": "dns", "value": "web.dry.example.com"}, {"type": "dns", "value": "www.dry.example.com"}]
    assert proxy.log.count(kind="finalize", method="POST", status=200) == 1, kinds
    assert (workspace / "state" / "accounts" / "pebble.staging" / "account.key").exists()
    d.wait_for_stderr(r"\[web\] dry run: the staging CA .* issued the certificate .*; nothing installed")
    # nothing installed, nothing in state, no deploy
    assert snapshot(acmed, workspace) == before
    st = {c["name"]: c for c in json.loads(acmed.run("status", "--json").stdout)["certificates"]}
    assert st["web"]["state"] == "valid" and st["web"]["failures"] == 0, st["web"]

    # a dry run the staging CA refuses: said, exit 1, and no failure of the certificate
    proxy.rate_limited(kind="newOrder", retry_after=60, count=1)
    r = acmed.run("renew", "web", "--dry-run", timeout=DRY_TIMEOUT)
    assert r.rc == 1, r.describe()
    assert "web: FAILED: " in r.stdout and "rateLimited" in r.stdout, r.stdout
    assert snapshot(acmed, workspace) == before
    st = {c["name"]: c for c in json.loads(acmed.run("status", "--json").stdout)["certificates"]}
    assert st["web"]["failures"] == 0 and not st["web"].get("last_error"), st["web"]

    # refused before any request: a CA without staging, an unknown name
    mark = proxy.log.mark()
    r = acmed.run("renew", "other", "--dry-run")
    assert r.rc == 1 and "CA nostaging has no staging directory for a dry run: set `staging:`" in r.stderr, \
        r.describe()
    r = acmed.run("renew", "nosuch", "--dry-run")
    assert r.rc == 2 and "unknown certificate: nosuch" in r.stderr, r.describe()
    r = acmed.run("renew", "web", "--dry-run", "--force")
    assert r.rc == 2, r.describe()
    assert proxy.log.count(since=mark) == 0, proxy.log.by_kind(since=mark)
    d.stop()

    # no daemon: the same dry run, answered by this process through `listen:`
    r = acmed.run("renew", "web", "--dry-run", timeout=DRY_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert "no daemon runs: the dry run answers the CA itself" in r.stderr, r.stderr
    assert f"web: ok: the staging CA ({proxy.directory_url}) issued it; nothing installed" in r.stdout, r.stdout
    assert proxy.log.count(kind="newOrder", method="POST", status=201, since=mark) == 1, proxy.log.by_kind(since=mark)
    assert proxy.log.count(kind="newAccount", since=mark) == 0, "the staging account is kept and used again"
    assert snapshot(acmed, workspace) == before
    r = acmed.run("renew", "nosuch", "--dry-run")
    assert r.rc == 2 and "unknown certificate: nosuch" in r.stderr, r.describe()


@pytest.mark.skipif(os.geteuid() != 0, reason="gives files to another user: needs root")
def test_standalone_dry_run_waits_for_run_once_and_leaves_root_nothing(acmed, proxy, pebble, workspace):
    """Without a control socket there may still be an acmed: `run --once` (cron) has none. Its pid
    file says so, and the dry run refuses rather than fight it for port 80. Run as root (the admin
    trying `acmed renew --dry-run` by hand), the dry run leaves nothing in state_dir or runtime_dir
    that the daemon's user cannot open: what it wrote belongs to state_dir's owner."""
    config(acmed, pebble, proxy, workspace)
    fifo = workspace / "hold"
    os.mkfifo(fifo)
    hook = workspace / "deployed.sh"
    # the deploy hook of the cron run says it started, then waits for the test: run --once waits for it
    hook.write_text(f"#!/bin/sh\necho \"$ACMED_CERT_NAME\" >> {workspace}/deployed.log\nread x < {fifo}\n")
    once = acmed.spawn("run", "--once", "--timeout", "240")
    pe.wait_until(lambda: (workspace / "deployed.log").exists(), ISSUE_TIMEOUT, what="the cron run's deploy hook")
    mark = proxy.log.mark()
    r = acmed.run("renew", "web", "--dry-run", timeout=DRY_TIMEOUT)
    assert r.rc == 1, r.describe()
    assert f"another acmed is running (pid {once.pid}" in r.stderr, r.stderr
    assert "try again when that acmed is done" in r.stderr, r.stderr
    assert proxy.log.count(since=mark) == 0, "the refused dry run sent a request"
    with open(fifo, "w") as f:
        f.write("go\n")
    assert once.wait(timeout=120) == 0, once.stderr[-3000:]
    assert not (workspace / "run" / "acmed.pid").exists()

    # state_dir as systemd's StateDirectory= makes it: the service user's (here nobody's)
    for root, dirs, files in os.walk(workspace / "state"):
        for n in dirs + files:
            os.lchown(os.path.join(root, n), 65534, 65534)
    os.chown(workspace / "state", 65534, 65534)
    hook.write_text("#!/bin/sh\nexit 0\n")
    r = acmed.run("renew", "web", "--dry-run", timeout=DRY_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert "no daemon runs: the dry run answers the CA itself" in r.stderr, r.stderr
    assert (workspace / "state" / "accounts" / "pebble.staging" / "account.key").exists()
    roots = [os.path.join(root, n) for root, dirs, files in os.walk(workspace / "state") for n in dirs + files
             if os.lstat(os.path.join(root, n)).st_uid != 65534]
    assert roots == [], f"left to another user than state_dir's: {roots}"
    assert not (workspace / "run" / "acmed.pid").exists(), "the dry run's pid file was left behind"
