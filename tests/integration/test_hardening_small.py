# Small hardening items, driven through the acmed binary: the pid file, a configuration that is not a regular file (or has a BOM, or is too large), status while the CA makes a certificate wait.
"""
- The pid file is 0600: another local user cannot open it, so cannot hold a lock on it and
  keep acmed from starting again after a crash outside systemd. A stale pid file (kill -9)
  does not block a start; a 0644 one left by an older acmed, even held locked by someone
  else, is replaced. `acmed reload` still finds the daemon.
- check-config and reload refuse a FIFO at once (they hung), accept a UTF-8 BOM, and a file
  that is too large is refused with its size and the limit.
- A certificate the CA rate-limited with a 1-day Retry-After: `acmed status` (table and
  --json) says it waits for the CA and until when, with and without the daemon.
"""
import calendar
import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import pytest

import pebble_env as pe
from faultproxy import Rule

pytestmark = pytest.mark.acmed

NOBODY = 65534


def write_local_config(ws, certificates=""):
    """A config that needs no CA (none is asked: no certificates), listening on loopback."""
    cfg = ws / "acmed.yaml"
    cfg.write_text(f'state_dir: "{ws / "state"}"\nruntime_dir: "{ws / "run"}"\n'
                   f'listen: ["127.0.0.1:{pe.free_port()}"]\n'
                   'cas:\n  - name: local\n    directory: https://127.0.0.1:9/dir\n' + certificates)
    return cfg


def run(acmed_bin, cfg, *args, timeout=30.0):
    return pe.run_acmed(list(args), timeout=timeout, config=cfg, acmed_bin=acmed_bin)


def start_daemon(acmed_bin, ws, cfg, daemons):
    d = pe.AcmedProcess(["run"], config=cfg, acmed_bin=acmed_bin,
                        stderr_path=ws / f"acmed-daemon{len(daemons) + 1}.stderr")
    daemons.append(d)

    def answers():
        if not d.alive():
            raise RuntimeError(f"acmed exited ({d.returncode}):\n{d.stderr[-3000:]}")
        r = run(acmed_bin, cfg, "status", "--json")
        return r.rc == 0 and '"daemon": true' in r.stdout
    pe.wait_until(answers, 30, interval=0.1, what="acmed answering on its control socket")
    return d


@pytest.fixture
def daemons():
    ds = []
    yield ds
    for d in ds:
        d.stop()


def reload_ok(acmed_bin, cfg):
    r = run(acmed_bin, cfg, "reload")
    assert r.rc == 0, r.describe()
    assert r.stdout == "reloaded: 0 certificates (0 added, 0 removed, 0 changed)\n", r.stdout


# Take a shared lock on the pid file (argv[1]: its path, or an fd already open) and hold it
# until stdin closes; prints "locked", or "refused ERRNO".
HOLD_LOCK = """
import fcntl, os, sys
arg = sys.argv[1]
try:
    fd = int(arg) if arg.isdigit() else os.open(arg, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
except OSError as e:
    print("refused", e.errno, flush=True)
    sys.exit(0)
print("locked", flush=True)
sys.stdin.read()
"""


def hold_lock_as_nobody(pid_path, fd=None):
    """A process of uid/gid 65534 (nobody) holding a shared lock on the pid file: (Popen, its words)."""
    p = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(fd) if fd is not None else str(pid_path)],
                         user=NOBODY, group=NOBODY, extra_groups=[], cwd="/",
                         pass_fds=(fd,) if fd is not None else (), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    return p, p.stdout.readline().split()


def release(p):
    with contextlib.suppress(OSError):
        p.stdin.close()
    p.wait(10)


def test_pid_file_private_stale_and_reload(acmed_bin, workspace, daemons):
    cfg = write_local_config(workspace)
    pid_path = workspace / "run" / "acmed.pid"
    d = start_daemon(acmed_bin, workspace, cfg, daemons)
    st = os.stat(pid_path)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert st.st_uid == os.geteuid()
    assert pid_path.read_text() == f"{d.pid}\n"
    reload_ok(acmed_bin, cfg)
    # a second acmed on the same runtime_dir is refused, naming the first
    r = run(acmed_bin, cfg, "run", timeout=30)
    assert r.rc != 0 and f"another acmed is running (pid {d.pid}, {pid_path})" in r.stderr, r.describe()
    # so is `run --once` (a cron job beside the daemon), at once: nothing is asked of the CA
    r = run(acmed_bin, cfg, "run", "--once", "--timeout", "20", timeout=30)
    assert r.rc != 0 and f"another acmed is running (pid {d.pid}, {pid_path})" in r.stderr, r.describe()
    assert "CA local" not in r.stderr, r.describe()
    # kill -9 leaves the pid file behind: it does not block the next start
    d.kill(signal.SIGKILL)
    assert d.wait(10) == -signal.SIGKILL
    assert pid_path.exists()
    d2 = start_daemon(acmed_bin, workspace, cfg, daemons)
    assert pid_path.read_text() == f"{d2.pid}\n"
    assert stat.S_IMODE(os.stat(pid_path).st_mode) == 0o600
    reload_ok(acmed_bin, cfg)
    assert d2.stop() == 0
    assert not pid_path.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_pid_file_other_user_cannot_block_a_restart(acmed_bin, workspace, daemons):
    """The issue's case: acmed crashes outside systemd; another local user takes a shared lock on
    the pid file it left; the next start failed with 'another acmed is running'."""
    os.chmod(workspace, 0o755)          # others may look in, as in /run
    cfg = write_local_config(workspace)
    pid_path = workspace / "run" / "acmed.pid"
    d = start_daemon(acmed_bin, workspace, cfg, daemons)
    d.kill(signal.SIGKILL)
    d.wait(10)
    squatter, said = hold_lock_as_nobody(pid_path)
    try:
        d2 = start_daemon(acmed_bin, workspace, cfg, daemons)
        reload_ok(acmed_bin, cfg)
        assert pid_path.read_text() == f"{d2.pid}\n"
        assert said and said[0] == "refused" and int(said[1]) == 13, said    # EACCES: cannot even open it
    finally:
        release(squatter)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_pid_file_left_0644_and_held_by_another_user_is_replaced(acmed_bin, workspace, daemons):
    """A pid file an older acmed left (0644), which another user opened and holds locked: the new
    acmed does not take it for a running acmed; it replaces it with a private file."""
    os.chmod(workspace, 0o755)
    cfg = write_local_config(workspace)
    pid_path = workspace / "run" / "acmed.pid"
    d = start_daemon(acmed_bin, workspace, cfg, daemons)
    d.kill(signal.SIGKILL)
    d.wait(10)
    os.chmod(pid_path, 0o644)
    old_ino = os.stat(pid_path).st_ino
    fd = os.open(pid_path, os.O_RDONLY)         # what the other user opened while it was 0644
    try:
        squatter, said = hold_lock_as_nobody(pid_path, fd=fd)
    finally:
        os.close(fd)
    try:
        assert said == ["locked"], said
        d2 = start_daemon(acmed_bin, workspace, cfg, daemons)
        st = os.stat(pid_path)
        assert st.st_ino != old_ino and stat.S_IMODE(st.st_mode) == 0o600, (old_ino, st)
        assert pid_path.read_text() == f"{d2.pid}\n"
        assert re.search(r"acmed\.pid \(mode 0644\) is held locked by a process that is not acmed \(pid \d+ is "
                         r"gone\); replacing it", d2.stderr), d2.stderr
        reload_ok(acmed_bin, cfg)
        # the daemon that runs now still blocks a second one
        r = run(acmed_bin, cfg, "run", timeout=30)
        assert r.rc != 0 and "another acmed is running" in r.stderr, r.describe()
    finally:
        release(squatter)


def test_check_config_fifo_refused_at_once(acmed_bin, workspace):
    fifo = workspace / "acmed.yaml"
    os.mkfifo(fifo)
    r = run(acmed_bin, fifo, "check-config", timeout=20)
    assert not r.timed_out, "check-config waited for a writer on the FIFO"
    assert r.rc == 2, r.describe()
    assert r.stderr == (f"{fifo}: not a regular file (a FIFO); acmed reads its configuration from a "
                        "regular file\n"), r.stderr


def test_reload_refuses_a_fifo_and_the_daemon_goes_on(acmed_bin, workspace, daemons):
    cfg = write_local_config(workspace)
    d = start_daemon(acmed_bin, workspace, cfg, daemons)
    text = cfg.read_text()
    cfg.unlink()
    os.mkfifo(cfg)
    r = run(acmed_bin, cfg, "reload", timeout=20)
    assert not r.timed_out, "reload hung: the daemon waits on the FIFO"
    assert r.rc == 1 and "not a regular file (a FIFO)" in r.stderr, r.describe()
    cfg.unlink()
    cfg.write_text(text)
    reload_ok(acmed_bin, cfg)
    assert d.alive()


def test_check_config_bom_and_size(acmed_bin, workspace):
    cfg = write_local_config(workspace, "certificates:\n  - name: web\n    domains: [web.example.org]\n")
    bom = workspace / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + cfg.read_bytes())
    r = run(acmed_bin, bom, "check-config")
    assert r.rc == 0, r.describe()
    assert r.stdout == f"{bom}: ok (1 certificate, 1 CA)\n", r.stdout
    big = workspace / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(17 * 1024 * 1024)
    r = run(acmed_bin, big, "check-config")
    assert r.rc == 2, r.describe()
    assert r.stderr == f"{big}: 17 MiB, more than the 16 MiB a configuration may have\n", r.stderr


def _status(acmed, *args):
    r = acmed.run("status", *args, env={"TZ": "UTC", "COLUMNS": "300"})
    assert r.rc == 0, r.describe()
    return r.stdout


def _check_waiting(acmed, name, until_lo, until_hi, daemon):
    st = json.loads(_status(acmed, "--json"))
    assert st["daemon"] is daemon, st
    c = next(c for c in st["certificates"] if c["name"] == name)
    until = calendar.timegm(time.strptime(c["waiting_for_ca_until"], "%Y-%m-%dT%H:%M:%SZ"))
    assert until_lo <= until <= until_hi, (c, until_lo, until_hi)
    assert c["next_at"] == c["waiting_for_ca_until"], c
    table = _status(acmed)
    row = next(x for x in table.splitlines() if x.startswith(name + " "))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(until))
    assert f"waiting for the CA until {stamp}" in row, table
    assert "order now" not in row and "retry in" not in row, table
    return c


@pytest.mark.pebble(nonce_reject=0)
def test_status_says_waiting_for_the_ca_with_and_without_daemon(acmed, proxy):
    rule = proxy.rate_limited("newOrder", retry_after=86400)
    certs = [{"name": "rl", "key_type": "ecdsa-p256", "domains": ["rl.example.com"]}]
    acmed.write_config(certs)
    d = acmed.spawn("run")
    t0 = time.time()
    d.wait_for_stderr(r"\[rl\] .*rateLimited.*next attempt at", timeout=60)
    assert rule.hits == 1
    c = _check_waiting(acmed, "rl", t0 + 86400 - 5, time.time() + 86400 + 5, True)
    assert "rateLimited" in c["last_error"], c
    assert d.stop() == 0
    c2 = _check_waiting(acmed, "rl", t0 + 86400 - 5, time.time() + 86400 + 5, False)
    assert c2["waiting_for_ca_until"] == c["waiting_for_ca_until"], (c, c2)
    assert proxy.log.count(kind="newOrder") == 1


@pytest.mark.pebble(nonce_reject=0)
def test_long_retry_after_on_an_authorization_is_shown_as_waiting(acmed, proxy):
    """An authorization answered 202 + Retry-After: 1 day while pending: the order is not waited for
    in silence ("order now"); status says it waits for the CA until then, and the order is kept."""
    rule = proxy.add_rule(Rule("status", method="POST", kind="authz", if_body_status="pending", status=202,
                               headers={"Retry-After": "86400"}))
    certs = [{"name": "ra", "key_type": "ecdsa-p256", "domains": ["ra.example.com"]}]
    acmed.write_config(certs)
    d = acmed.spawn("run")
    t0 = time.time()
    d.wait_for_stderr(r"\[ra\] the CA asks to wait 86400 s before looking at \S+ again \(rate limited, "
                      r"failure 1\); next attempt at", timeout=60)
    assert rule.hits >= 1
    _check_waiting(acmed, "ra", t0 + 86400 - 5, time.time() + 86400 + 5, True)
    assert d.stop() == 0
    c = _check_waiting(acmed, "ra", t0 + 86400 - 5, time.time() + 86400 + 5, False)
    assert proxy.log.count(kind="newOrder", status=201) == 1
