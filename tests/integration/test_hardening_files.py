# Files acmed writes: two certificates never share a directory, whatever path leads there; a crash leaves nothing behind for long.
"""Hardening issue, items 4 and 7:

4. two certificates could share one directory through a symlink (check-config compared path
   strings): resolved paths and device+inode are compared at check-config, start and reload; an
   output_dir inside state_dir's private parts is refused;
7. leftovers of a crash (.NAME.json.tmp-* in state_dir, a dangling current.tmp-*, a generation
   never published) are removed at the next start.
"""
import json
import os
import subprocess
import re

import pytest

import pebble_env as pe
from faultproxy import Rule

pytestmark = pytest.mark.acmed


def cert(name, **extra):
    c = {"name": name, "key_type": "ecdsa-p256", "domains": [f"{name}.files.example.com"]}
    c.update(extra)
    return c


def test_output_dirs_shared_through_a_symlink_are_refused(acmed, workspace):
    real = workspace / "www" / "site"
    real.mkdir(parents=True)
    (workspace / "alias").symlink_to(workspace / "www")
    certs = [cert("one", output_dir=str(real)), cert("two", output_dir=str(workspace / "alias" / "site"))]
    acmed.write_config(certs)
    for args in (("check-config",), ("run", "--once", "--timeout", "10")):
        r = acmed.run(*args)
        assert r.rc == 2, r.describe()
        assert re.search(r"acmed\.yaml:\d+:\d+: output_dir: \S*alias/site\" is the same directory as \S*www/site\", "
                         r"the output directory of certificate \"one\"", r.stderr), r.stderr
    # A directory that does not exist yet, reached through the link, is caught too.
    certs = [cert("one", output_dir=str(workspace / "www" / "new")),
             cert("two", output_dir=str(workspace / "alias" / "new"))]
    acmed.write_config(certs)
    r = acmed.run("check-config")
    assert r.rc == 2 and "is the same directory as" in r.stderr, r.describe()


def test_output_dir_inside_state_dir_private_parts_is_refused(acmed, workspace):
    for sub, what in (("certs/x", "state_dir/certs"), ("accounts/pebble", "state_dir/accounts"), ("", "state_dir itself")):
        acmed.write_config([cert("priv", output_dir=str(workspace / "state" / sub) if sub else str(workspace / "state"))])
        r = acmed.run("check-config")
        assert r.rc == 2, r.describe()
        assert re.search(r"output_dir: .* is inside " + re.escape(what), r.stderr), r.stderr
    # Its own directory under state_dir/live is fine (that is the default).
    acmed.write_config([cert("priv", output_dir=str(workspace / "state" / "live" / "priv"))])
    assert acmed.run("check-config").rc == 0


def test_reload_refuses_a_shared_directory(acmed, workspace):
    certs = [cert("r1"), cert("r2")]
    acmed.write_config(certs)
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[r2\] certificate issued", timeout=60)
    d.wait_for_stderr(r"\[r1\] certificate issued", timeout=60)
    os.symlink(acmed.outputs["r1"], workspace / "r1-alias")
    acmed.write_config([cert("r1"), cert("r2", output_dir=str(workspace / "r1-alias"))])
    r = acmed.run("reload")
    assert r.rc == 1, r.describe()
    assert "is the same directory as" in r.stdout + r.stderr, r.describe()
    assert d.alive()
    d.stop()


def test_leftovers_of_a_crash_are_removed_at_start(acmed, workspace):
    certs = [cert("left")]
    acmed.write_config(certs)
    assert acmed.run_once(timeout=60).rc == 0
    out = acmed.outputs["left"]
    state = workspace / "state"
    (state / "certs" / ".left.json.tmp-4242-1").write_text('{"half": ')
    (state / "cas" / ".pebble.json.tmp-4242-2").write_text("{")
    os.symlink(".gen-99", out / "current.tmp-4242")
    gen = out / ".gen-99"
    gen.mkdir()
    (gen / "privkey.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    os.chmod(gen / "privkey.pem", 0o600)
    before = pe.snapshot_files(out)
    r = acmed.run_once(timeout=60)
    assert r.rc == 0, r.describe()
    for p in (state / "certs" / ".left.json.tmp-4242-1", state / "cas" / ".pebble.json.tmp-4242-2",
              out / "current.tmp-4242", gen):
        assert not os.path.lexists(p), p
        assert f"{p}: removed a leftover from a crash" in r.stderr, r.stderr
    # What was in use is untouched and still valid.
    acmed.verify(certs)
    assert pe.snapshot_files(out) == before


def test_full_state_dir_keeps_the_failure_count(acmed, proxy, workspace):
    """state_dir on a full disk: the next failure is still remembered across a restart (the record is
    overwritten in place), so a restart does not reset the backoff and order at once."""
    state = workspace / "state"
    state.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(state)]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        proxy.add_rule(Rule("respond", method="POST", kind="newOrder", status=400, nonce=True, count=2,
                            headers={"Content-Type": "application/problem+json"},
                            body=json.dumps({"type": "urn:ietf:params:acme:error:rejectedIdentifier",
                                             "detail": "not today"})))
        acmed.write_config([cert("full")])
        d = acmed.spawn("run")
        d.wait_for_stderr(r"\[full\] .*rejectedIdentifier.* \(certificate error, failure 1\); next attempt at",
                          timeout=60)
        # Fill the disk.
        with open(state / "filler", "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        r = acmed.run("renew", "full")
        assert r.rc == 0, r.describe()
        # With the disk full even the new order key cannot be kept: a local failure, counted.
        d.wait_for_stderr(r"\[full\] .*, failure 2\); next attempt at", timeout=60)
        d.stop()
        r = acmed.run("status", "--json")
        st = {c["name"]: c for c in json.loads(r.stdout)["certificates"]}["full"]
        assert st["failures"] == 2, st
        assert st["state"] == "backoff", st
    finally:
        subprocess.run(["umount", "-l", str(state)])
