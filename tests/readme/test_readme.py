# README's "Install as a service" and "Moving from certbot", followed word for word on this machine as root.
"""Issue 11: the README's service installation and certbot migration are run as written, command by
command (the shell blocks are read from README.md itself), on a machine where certbot already keeps a
certificate: certbot 2.1 as root in /etc/letsencrypt, against a local Pebble whose http-01 port is 80.

- The one thing a reader does that is not a command, "then edit it", the test does: it writes the
  /etc/acmed/acmed.yaml a user of this Pebble would (its directory, its TLS root, one certificate).
- There is no systemd as PID 1 here: `systemctl` is tests/readme/systemctl, which asks
  tests/readme/pid1.py to do what PID 1 would with the installed units (real offline enable/disable,
  systemd-analyze verify, the socket bound and passed, the service run as User=acmed, Type=notify).

It installs into /usr and /etc: it runs only as root with ACMED_README_TEST=1 (tests/run.sh, on CI's
fresh machine), and it removes what it installed at the end.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import pebble_env as pe  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or os.environ.get("ACMED_README_TEST") != "1",
                                reason="installs acmed system-wide: root and ACMED_README_TEST=1 only")

OLD = "old.readme.example.com"          # the certificate certbot keeps
WWW = "www.readme.example.com"          # the one the new acmed user configures
# what the test makes; /etc/letsencrypt itself (cli.ini) is the certbot package's
PATHS = ["/etc/acmed", "/var/lib/acmed", "/run/acmed", "/var/lib/letsencrypt", "/var/log/letsencrypt"] + \
    [f"/etc/letsencrypt/{d}" for d in ("live", "archive", "renewal", "accounts", "renewal-hooks", "csr", "keys")]


def readme_block(heading):
    """The commands of the first ```sh block after the heading, one per line."""
    lines = (ROOT / "README.md").read_text().splitlines()
    i = lines.index(heading)
    while not lines[i].startswith("```sh"):
        i += 1
    block = []
    for line in lines[i + 1:]:
        if line.startswith("```"):
            return block
        if line.strip() and not line.lstrip().startswith("#"):
            block.append(line)
    raise AssertionError(f"unterminated block after {heading}")


class Shell:
    """Runs README lines as the reader would: bash, as root, in the clone, with the test's systemctl."""

    def __init__(self, cwd, env):
        self.cwd, self.env, self.log = cwd, env, []

    def run(self, line, timeout=900):
        r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", line], cwd=self.cwd, env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        self.log.append((line, r.returncode, r.stdout, r.stderr))
        assert r.returncode == 0, f"README line failed ({r.returncode}): {line}\n{r.stdout}\n{r.stderr}"
        return r


def port_free(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(("::", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def status_json():
    r = subprocess.run(["/usr/sbin/acmed", "status", "--json"], capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout) if r.returncode == 0 else None


def serial(path):
    return pe.read_pem_certs(Path(path).read_bytes())[0].serial_number


@pytest.fixture
def machine(tmp_path):
    """A fresh machine, and afterwards as fresh again: what the test installs is removed."""
    leftovers = [p for p in ("/usr/sbin/acmed", "/etc/acmed/acmed.yaml", "/etc/letsencrypt/renewal") if os.path.exists(p)]
    if leftovers:
        pytest.fail(f"not a fresh machine (the README starts from one): {leftovers} exist")
    if not port_free(80):
        pytest.fail("port 80 is taken: the README's acmed.socket binds it")
    timer_link = Path("/etc/systemd/system/timers.target.wants/certbot.timer")
    timer_was = timer_link.is_symlink()
    # where systemd keeps /run/systemd/notify: reachable by the service's user
    state = Path("/run/acmed-readme-pid1")
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(mode=0o755)
    mgr = subprocess.Popen(["/usr/bin/python3", str(ROOT / "tests/readme/pid1.py"), "serve", str(state)],
                           stdout=subprocess.PIPE, stderr=open(tmp_path / "pid1.log", "wb"), text=True)
    assert mgr.stdout.readline().strip() == "ready"
    clone = tmp_path / "acmed"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {"PATH": f"{ROOT / 'tests/readme'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LANG": "C.UTF-8", "ACMED_PID1_STATE": str(state)}
    yield {"clone": clone, "env": env, "state": state, "tmp": tmp_path}
    mgr.terminate()
    mgr.wait(60)
    if (clone / "build" / "build.ninja").exists():
        subprocess.run(["ninja", "-C", str(clone / "build"), "uninstall"], capture_output=True)
    subprocess.run(["/bin/systemctl", "--root=/", "disable", "acmed.socket", "acmed.service"], capture_output=True)
    if timer_was:
        subprocess.run(["/bin/systemctl", "--root=/", "enable", "certbot.timer"], capture_output=True)
    for p in PATHS + [str(state)]:
        shutil.rmtree(p, ignore_errors=True)


def test_readme_install_as_a_service_then_moving_from_certbot(machine, tmp_path):
    pebble = pe.PebbleEnv(tmp_path / "pebble", http01_port=80).start()
    try:
        run_readme(machine, pebble)
    finally:
        pebble.stop()


def run_readme(machine, pebble):
    env = dict(machine["env"])
    # Before acmed: certbot keeps a certificate, as root, in /etc/letsencrypt (its standalone server on 80).
    r = subprocess.run(["certbot", "certonly", "--standalone", "-d", OLD, "--server", pebble.directory_url,
                        "--agree-tos", "--register-unsafely-without-email", "--non-interactive",
                        "--deploy-hook", "systemctl reload nginx"],
                       env=dict(os.environ, REQUESTS_CA_BUNDLE=str(pebble.ca_bundle)), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    old_serial = serial(f"/etc/letsencrypt/live/{OLD}/cert.pem")

    # ---- Install as a service ----
    sh = Shell(machine["clone"], env)
    for line in readme_block("## Install as a service"):
        sh.run(line)
        if line.startswith("cp -n /etc/acmed/acmed.yaml.example /etc/acmed/acmed.yaml"):
            assert "then edit it" in line
            edit_config(pebble)
    # the daemon runs as acmed, on port 80 from acmed.socket, and gets its certificate
    st = pe.wait_until(lambda: (s := status_json()) and s["certificates"][0]["state"] == "valid" and s, 180,
                       interval=0.5, what=f"{WWW} issued by the installed service")
    assert st["daemon"] is True and st["certificates"][0]["name"] == "www", st
    key = Path("/var/lib/acmed/live/www/privkey.pem")
    assert key.stat().st_uid == pe_uid("acmed") and (key.stat().st_mode & 0o777) == 0o600
    assert Path("/etc/systemd/system/sockets.target.wants/acmed.socket").is_symlink()
    assert Path("/etc/systemd/system/multi-user.target.wants/acmed.service").is_symlink()

    # ---- Moving from certbot ----
    for line in readme_block("## Moving from certbot"):
        r = sh.run(line)
        if line.split("#")[0].strip() == "acmed import certbot":
            assert f"domains: [{OLD}]" in r.stdout and "nothing written" in r.stderr, r.stdout + r.stderr
    y = Path("/etc/acmed/acmed.yaml").read_text()
    # the CA of the edited file kept its settings; its own account (the daemon made one) is left alone
    assert "  - name: pebble-certbot\n" in y and "ca_bundle: /etc/acmed/pebble-ca.pem" in y, y
    assert not Path("/etc/systemd/system/timers.target.wants/certbot.timer").exists()
    # certbot's paths lead to acmed's files; nothing was re-issued; the restarted daemon keeps it
    assert os.readlink(f"/etc/letsencrypt/live/{OLD}/fullchain.pem") == f"/var/lib/acmed/live/{OLD}/fullchain.pem"
    assert serial(f"/etc/letsencrypt/live/{OLD}/cert.pem") == old_serial
    st = status_json()
    assert st and st["daemon"] is True, st
    certs = {c["name"]: c for c in st["certificates"]}
    assert certs[OLD]["state"] == "valid" and certs[OLD]["failures"] == 0, certs
    log = (machine["state"] / "acmed.service.log").read_text()
    shutil.copy(machine["state"] / "acmed.service.log", machine["tmp"] / "acmed.service.log")
    assert f"[{OLD}] order" not in log, log[-3000:]
    assert OLD in sh.log[-1][2], sh.log[-1]           # `acmed status` shows it


def pe_uid(user):
    import pwd
    return pwd.getpwnam(user).pw_uid


def edit_config(pebble):
    """What "then edit it" means for a user of this Pebble: its directory and TLS root, one certificate."""
    shutil.copy(pebble.ca_bundle, "/etc/acmed/pebble-ca.pem")
    os.chmod("/etc/acmed/pebble-ca.pem", 0o644)
    Path("/etc/acmed/acmed.yaml").write_text(
        "# /etc/acmed/acmed.yaml, as the README test edits the example\n"
        "cas:\n"
        "  - name: pebble\n"
        f"    directory: {pebble.directory_url}\n"
        "    contact: [mailto:admin@example.com]\n"
        "    ca_bundle: /etc/acmed/pebble-ca.pem\n"
        "certificates:\n"
        "  - name: www\n"
        f"    domains: [{WWW}]\n")
