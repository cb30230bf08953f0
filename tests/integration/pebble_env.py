# Test environment for acmed: local Pebble + pebble-challtestsrv, throwaway TLS CA, config writer, output checks.
"""Shared by the integration tests (tests/integration) and the benchmark (tests/bench).

Everything listens on 127.0.0.1 only.  Nothing here depends on acmed working:
the uacme harness test and the benchmark drive uacme through the same code.
"""

import contextlib
import datetime
import http.server
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The two Pebbles (re-exported: tests use pe.PEBBLE_NEW, pe.pebble_builds_selected() ...)
from pebble_builds import (CHALLTESTSRV_BIN, PEBBLE_24, PEBBLE_BIN, PEBBLE_BUILDS, PEBBLE_NEW,  # noqa: F401
                           PEBBLE_NEW_DIR, PebbleBuild, pebble_builds_selected)

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
UACME_BIN = shutil.which("uacme") or "/usr/bin/uacme"
OPENSSL_BIN = shutil.which("openssl") or "/usr/bin/openssl"
UACME_HOOK = HERE / "uacme_http01_hook.sh"

# What the tests' own HTTP requests to Pebble or the proxy send: RFC 8555 6.1 wants a User-Agent on
# every request to an ACME server, and the newest Pebble answers 400 malformed without one.
UA = {"User-Agent": "acmed-tests"}

KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096")
OUTPUT_FILES = ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem")


def pebble_installed():
    return PEBBLE_24.installed()


def uacme_installed():
    return os.access(UACME_BIN, os.X_OK)


def acmed_binary():
    """Path of the acmed binary under test: $ACMED_BIN, else <repo>/build/acmed."""
    return Path(os.environ.get("ACMED_BIN") or (REPO / "build" / "acmed"))


# ---------------------------------------------------------------- ports

_port_lock = threading.Lock()
_ports_handed_out = set()


def _ephemeral_low():
    """The lowest port the kernel hands out to outgoing connections (32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(kind=socket.SOCK_STREAM):
    """A loopback port that is free for TCP and UDP now and not handed out before by this process.

    Taken below the ephemeral range: a port the kernel picked for bind(0) is also one it may give
    to the next outgoing connection (curl's, the proxy's), which then holds it when the listener
    that was promised it starts ("Address already in use")."""
    low = max(1024, min(10000, _ephemeral_low() - 1000))
    high = max(low + 1000, _ephemeral_low() - 1)
    with _port_lock:
        for _ in range(500):
            port = random.randint(low, high)
            if port in _ports_handed_out:
                continue
            try:
                for k in (kind, socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, k) as s:
                        s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _ports_handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port found")


def wait_tcp(port, timeout=10.0, proc=None, what="service"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"{what} not listening on 127.0.0.1:{port} after {timeout}s")


# ---------------------------------------------------------------- throwaway TLS CA

def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# The throwaway TLS certificates stay valid long enough for faketime runs of acmed far in the
# future (Pebble's certificates live 5 years; renewal tests fake the clock up to ~3.5 years ahead).
TLS_VALIDITY = datetime.timedelta(days=20 * 365)


class TlsCA:
    """A throwaway CA for the HTTPS API of Pebble and of the fault proxy (not Pebble's issuing CA)."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acmed test TLS CA")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(hours=1))
            .not_valid_after(_now() + TLS_VALIDITY + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_path = self.dir / "tls-ca.pem"
        self.ca_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue_server_cert(self, stem, dns_names=("localhost",), ips=("127.0.0.1",)):
        """Write <dir>/<stem>-cert.pem and <stem>-key.pem for a TLS server; return (cert_path, key_path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        san = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(hours=1))
            .not_valid_after(_now() + TLS_VALIDITY)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path = self.dir / f"{stem}-cert.pem"
        key_path = self.dir / f"{stem}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        return cert_path, key_path

    def client_context(self):
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        return ctx


# ---------------------------------------------------------------- Pebble

class PebbleEnv:
    """pebble + pebble-challtestsrv (as Pebble's DNS) on loopback ports, logs in workdir.

    strict:        run pebble with -strict
    nonce_reject:  PEBBLE_WFE_NONCEREJECT (None = Pebble's default, 5 %)
    authz_reuse:   PEBBLE_AUTHZREUSE (None = Pebble's default, 50 %)
    http01_port:   Pebble's "httpPort" - where acmed (or the uacme responder) serves http-01
    config:        extra keys for Pebble's JSON config (e.g. {"certificateValidityPeriod": 600},
                   which becomes the default profile's validityPeriod for the newest Pebble)
    build:         which Pebble (PEBBLE_24, the default, or PEBBLE_NEW)
    defaults:      Pebble as its package ships it: the example config of its package (addresses,
                   ports and TLS files aside: its profiles, key algorithm, Retry-After values...)
                   and its own pace (random VA sleeps; no PEBBLE_VA_NOSLEEP)
    dns_server:    "host:port" of the DNS server Pebble resolves through (its -dnsserver), e.g. a
                   knot_env resolver for dns-01; None: challtestsrv's DNS (challtestsrv runs either way)
    """

    def __init__(self, workdir, tls_ca=None, strict=False, nonce_reject=None, authz_reuse=None,
                 http01_port=None, extra_env=None, config=None, build=None, defaults=False, dns_server=None):
        self.build = build or PEBBLE_24
        self.dns_server = dns_server
        self.defaults = defaults
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tls_ca = tls_ca or TlsCA(self.dir / "tls")
        self.strict = strict
        self.nonce_reject = nonce_reject
        self.authz_reuse = authz_reuse
        self.extra_env = dict(extra_env or {})
        self.extra_config = dict(config or {})
        self.port = free_port()
        self.mgmt_port = free_port()
        self.tls_port = free_port()
        self.http01_port = http01_port or free_port()
        self.dns_port = free_port(socket.SOCK_DGRAM)
        self.cts_mgmt_port = free_port()
        self.pebble_proc = None
        self.cts_proc = None
        self.pebble_log = self.dir / "pebble.log"
        self.cts_log = self.dir / "challtestsrv.log"
        self.root_path = self.dir / "pebble-root.pem"
        self.intermediate_path = self.dir / "pebble-intermediate.pem"
        self._logfiles = []

    @property
    def directory_url(self):
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def ca_bundle(self):
        return self.tls_ca.ca_path

    def _spawn(self, argv, log_path, env=None):
        log = open(log_path, "ab")
        self._logfiles.append(log)
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=str(self.dir), start_new_session=True)

    def start(self, timeout=20.0):
        cert, key = self.tls_ca.issue_server_cert("pebble")
        ours = {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": self.http01_port,
            "tlsPort": self.tls_port,
        }
        if self.defaults:
            example = self.build.example_config()
            if example is None:
                raise RuntimeError(f"{self.build.id}: its package's example pebble-config.json is missing")
            base = dict(example, **ours)
        else:
            base = dict(ours, ocspResponderURL="", externalAccountBindingRequired=False)
        cfg = {"pebble": self.build.config(base, self.extra_config)}
        self.config_path = self.dir / "pebble-config.json"
        self.config_path.write_text(json.dumps(cfg, indent=2))

        b = self.build
        cts = [b.challtestsrv_bin,
               "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
               "-http01", "", "-https01", "", "-tlsalpn01", "",
               b.challtestsrv_dns_flag, f"127.0.0.1:{self.dns_port}",
               "-management", f"127.0.0.1:{self.cts_mgmt_port}"]
        if b.newest:
            cts += ["-doh", ""]          # its DNS-over-HTTPS server would take :8443 on every address
        self.cts_proc = self._spawn(cts, self.cts_log)
        wait_tcp(self.cts_mgmt_port, timeout, self.cts_proc, "pebble-challtestsrv")
        wait_tcp(self.dns_port, timeout, self.cts_proc, "pebble-challtestsrv DNS")

        env = dict(os.environ)
        for k in list(env):
            if k.startswith("PEBBLE_"):
                del env[k]
        if not self.defaults:
            env["PEBBLE_VA_NOSLEEP"] = "1"
        if self.nonce_reject is not None:
            env["PEBBLE_WFE_NONCEREJECT"] = str(self.nonce_reject)
        if self.authz_reuse is not None:
            env["PEBBLE_AUTHZREUSE"] = str(self.authz_reuse)
        env.update({k: str(v) for k, v in self.extra_env.items()})
        argv = [self.build.pebble_bin, "-config", str(self.config_path),
                "-dnsserver", self.dns_server or f"127.0.0.1:{self.dns_port}"]
        if self.strict:
            argv.append("-strict")
        self.pebble_proc = self._spawn(argv, self.pebble_log, env)
        self._wait_ready(timeout)
        self.fetch_roots()
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.pebble_proc.poll() is not None:
                raise RuntimeError(f"pebble exited with {self.pebble_proc.returncode}; see {self.pebble_log}:\n"
                                   + self.pebble_log.read_text(errors="replace")[-2000:])
            try:
                d = json.loads(self.get(self.directory_url))
                if "newNonce" in d:
                    self.get(f"https://127.0.0.1:{self.mgmt_port}/roots/0")
                    return
            except (OSError, ValueError) as e:
                last = e
            time.sleep(0.05)
        raise TimeoutError(f"pebble not ready after {timeout}s ({last}); see {self.pebble_log}")

    def get(self, url, timeout=5.0):
        with urllib.request.urlopen(url, timeout=timeout, context=self.tls_ca.client_context()) as r:
            return r.read()

    def fetch_roots(self):
        """Pebble's issuing root and intermediate (regenerated at every start) -> files; returns their paths."""
        self.root_path.write_bytes(self.get(f"https://127.0.0.1:{self.mgmt_port}/roots/0"))
        self.intermediate_path.write_bytes(self.get(f"https://127.0.0.1:{self.mgmt_port}/intermediates/0"))
        return self.root_path, self.intermediate_path

    def challtestsrv(self, endpoint, payload):
        """POST to pebble-challtestsrv's management API (e.g. "add-a", {"host": ..., "addresses": [...]})."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.cts_mgmt_port}/{endpoint}",
                                     data=json.dumps(payload).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status

    def renewal_info(self, cert_id, timeout=5.0):
        """GET Pebble's own renewalInfo for a CertID, straight from Pebble (newest only):
        (status, Retry-After header or None, JSON body or None)."""
        if not self.build.has_ari:
            raise RuntimeError(f"{self.build.id} has no renewalInfo")
        url = f"https://127.0.0.1:{self.port}{self.build.renewal_info_path}/{cert_id}"
        req = urllib.request.Request(url, headers=UA)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.tls_ca.client_context()) as r:
                return r.status, r.headers.get("Retry-After"), json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Retry-After"), None

    def cert_status(self, serial):
        """Pebble's management API on a certificate: {"Status": "Valid"|"Revoked", "Reason": n, ...}
        (GET /cert-status-by-serial/<hex>), or None when Pebble does not know it."""
        try:
            return json.loads(self.get(f"https://127.0.0.1:{self.mgmt_port}/cert-status-by-serial/{serial:x}"))
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def set_renewal_info(self, cert_pem, answer):
        """Make Pebble answer `answer` (a dict, sent as JSON) to renewalInfo requests for this
        certificate (the newest Pebble's management API, POST /set-renewal-info/)."""
        if isinstance(cert_pem, bytes):
            cert_pem = cert_pem.decode()
        body = json.dumps({"Certificate": cert_pem, "ARIResponse": json.dumps(answer)}).encode()
        req = urllib.request.Request(f"https://127.0.0.1:{self.mgmt_port}/set-renewal-info/", data=body,
                                     method="POST", headers={**UA, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5, context=self.tls_ca.client_context()) as r:
            return r.status

    def stop(self):
        for proc in (self.pebble_proc, self.cts_proc):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in self._logfiles:
            f.close()
        self._logfiles = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------- acmed config and runs

def _y(s):
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(str(s))


def write_config(path, workspace, directory_url, ca_bundle, http01_port, certificates,
                 ca_name="pebble", contact=("mailto:admin@example.com",), extra_ca=None, extra_top=None):
    """Write an acmed YAML config.

    certificates: list of dicts with name, domains, key_type and optional output_dir / extra keys.
    Returns {cert name: output_dir Path}.
    """
    ws = Path(workspace)
    lines = [
        f"state_dir: {_y(ws / 'state')}",
        f"runtime_dir: {_y(ws / 'run')}",
        f"listen: [{_y(f'127.0.0.1:{http01_port}')}]",
    ]
    for k, v in (extra_top or {}).items():
        lines.append(f"{k}: {v}")
    lines += [
        "cas:",
        f"  - name: {_y(ca_name)}",
        f"    directory: {_y(directory_url)}",
        f"    contact: [{', '.join(_y(c) for c in contact)}]",
        f"    ca_bundle: {_y(ca_bundle)}",
    ]
    for k, v in (extra_ca or {}).items():
        lines.append(f"    {k}: {v}")
    lines.append("certificates:")
    outputs = {}
    for c in certificates:
        out = Path(c.get("output_dir") or ws / "live" / c["name"])
        outputs[c["name"]] = out
        lines += [
            f"  - name: {_y(c['name'])}",
            f"    domains: [{', '.join(_y(d) for d in c['domains'])}]",
            f"    key_type: {_y(c['key_type'])}",
            f"    output_dir: {_y(out)}",
        ]
        for k, v in c.items():
            if k not in ("name", "domains", "key_type", "output_dir"):
                lines.append(f"    {k}: {v}")
    Path(path).write_text("\n".join(lines) + "\n")
    return outputs


class RunResult:
    """rc, stdout, stderr, wall (s), maxrss_kb (peak RSS of the program image, VmHWM), timed_out, cpu (s)."""

    def __init__(self, rc, stdout, stderr, wall, maxrss_kb, timed_out, cpu=0.0):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr
        self.wall, self.maxrss_kb, self.timed_out = wall, maxrss_kb, timed_out
        self.cpu = cpu   # user + system seconds of the process and the children it waited for

    def __iter__(self):  # rc, stdout, stderr = run_acmed(...)
        return iter((self.rc, self.stdout, self.stderr))

    def describe(self):
        tail = self.stderr[-3000:]
        return f"rc={self.rc} timed_out={self.timed_out} wall={self.wall:.2f}s\n--- stderr (tail) ---\n{tail}"


def _vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(argv, timeout, env=None, cwd=None):
    """Run a command; return RunResult with wall time and peak RSS.

    Peak RSS is the kernel's VmHWM of the program image, sampled until the process exits
    (ru_maxrss from wait4 is useless here: it includes the pre-exec copy of this Python process).
    VmHWM never decreases, so only growth in the last few ms before exit could be missed.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)
        hwm = 0
        timed_out = False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            hwm = max(hwm, _vm_hwm_kb(proc.pid))   # still ours to read: not reaped yet
            elapsed = time.monotonic() - t0
            if elapsed > timeout and not timed_out:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.002 if elapsed < 1.0 else 0.01)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        # nothing of its process group may survive (a daemon forked by mistake, a stuck hook)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if timed_out:
        stderr += f"\n[harness] killed after timeout of {timeout}s\n"
    return RunResult(proc.returncode, stdout, stderr, wall, hwm, timed_out, ru.ru_utime + ru.ru_stime)


def run_acmed(args, timeout=120.0, config=None, acmed_bin=None, env=None):
    """Run acmed [-c config] ARGS...; returns RunResult (iterable as rc, stdout, stderr)."""
    argv = [str(acmed_bin or acmed_binary())]
    if config is not None:
        argv += ["-c", str(config)]
    argv += list(args)
    return run_measured(argv, timeout, env=_acmed_env(env))


def _acmed_env(env=None):
    e = dict(os.environ)
    for k in ("ACMED_CONFIG", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC",
              "WATCHDOG_PID"):
        e.pop(k, None)
    if env:
        e.update(env)
    return e


def _proc_stat(pid):
    """(utime + stime seconds, state) from /proc/PID/stat, or (None, None) when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode()
    except OSError:
        return None, None
    rest = data[data.rindex(")") + 2:].split()   # fields after "pid (comm) "
    tick = os.sysconf("SC_CLK_TCK")
    return (int(rest[11]) + int(rest[12])) / tick, rest[0]


def _proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(field.encode() + b":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class AcmedProcess:
    """acmed started in the background (typically the daemon: `run` without --once).

    stdout/stderr go to files (stderr_path, default <workdir>/acmed-daemon-N.stderr); the
    process gets a session of its own.  kill(signal.SIGKILL) is the kill -9 of the tests.
    """

    _n = 0

    def __init__(self, args, config=None, acmed_bin=None, env=None, workdir=None, stderr_path=None):
        AcmedProcess._n += 1
        workdir = Path(workdir or tempfile.gettempdir())
        self.stderr_path = Path(stderr_path or workdir / f"acmed-daemon{AcmedProcess._n}.stderr")
        self.stdout_path = self.stderr_path.with_suffix(".stdout")
        argv = [str(acmed_bin or acmed_binary())]
        if config is not None:
            argv += ["-c", str(config)]
        argv += [str(a) for a in args]
        self.argv = argv
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                     env=_acmed_env(env), start_new_session=True)
        self.pid = self.proc.pid

    @property
    def returncode(self):
        return self.proc.returncode

    def poll(self):
        return self.proc.poll()

    def alive(self):
        return self.proc.poll() is None

    def cpu_seconds(self):
        """utime + stime of the running process (None once it has been reaped)."""
        return _proc_stat(self.pid)[0]

    def rss_kb(self):
        return _proc_status_kb(self.pid, "VmRSS")

    def hwm_kb(self):
        return _proc_status_kb(self.pid, "VmHWM")

    def send_signal(self, sig):
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self, sig=signal.SIGKILL):
        self.send_signal(sig)

    def wait(self, timeout=30.0):
        """Wait for the exit; returns the exit code (negative: killed by that signal)."""
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.returncode is not None:
                self._close()

    def stop(self, timeout=15.0):
        """SIGTERM, then SIGKILL after timeout; the whole process group is gone afterwards."""
        if self.proc.poll() is None:
            self.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self._close()
        return self.proc.returncode

    def _close(self):
        for f in (self._err, self._out):
            with contextlib.suppress(OSError):
                f.close()

    @property
    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_stderr(self, pattern, timeout=30.0):
        """Wait until a stderr line matches the regex; returns the match (TimeoutError otherwise)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.stderr)
            if m:
                return m
            if self.proc.poll() is not None:
                raise RuntimeError(f"acmed exited ({self.proc.returncode}) before logging {pattern!r}:\n"
                                   + self.stderr[-3000:])
            if time.monotonic() > deadline:
                raise TimeoutError(f"acmed did not log {pattern!r} within {timeout}s:\n" + self.stderr[-3000:])
            time.sleep(0.05)


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until true; returns its value, raises TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(interval)


# ---------------------------------------------------------------- faked clock (Debian package faketime)

def faketime_library():
    """Path of libfaketime.so.1 (from `dpkg -L libfaketime`), or None when not installed."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["dpkg", "-L", "libfaketime"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.endswith("/libfaketime.so.1"):
                return line
    for cand in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"):
        if os.path.exists(cand):
            return cand
    return None


def faketime_env(offset):
    """Environment that makes acmed see the wall clock shifted by offset ("+1200d", "-2h", ...).

    Only CLOCK_REALTIME/time()/gettimeofday() are faked: FAKETIME_DONT_FAKE_MONOTONIC keeps the
    event loop's and curl's monotonic timers real.
    """
    lib = faketime_library()
    if lib is None:
        raise RuntimeError("libfaketime not installed (Debian package 'faketime')")
    return {"LD_PRELOAD": lib, "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


# ---------------------------------------------------------------- output checks

def read_pem_certs(data):
    """All certificates in a PEM bundle, in order (cryptography 38 has no load_pem_x509_certificates)."""
    if isinstance(data, str):
        data = data.encode()
    certs = []
    marker_b, marker_e = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
    pos = 0
    while True:
        b = data.find(marker_b, pos)
        if b < 0:
            break
        e = data.find(marker_e, b)
        if e < 0:
            raise ValueError("unterminated PEM certificate")
        e += len(marker_e)
        certs.append(x509.load_pem_x509_certificate(data[b:e] + b"\n"))
        pos = e
    return certs


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def key_type_of(key):
    """'ecdsa-p256' etc. for a public or private key object."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(key.curve.name, "ec-" + key.curve.name)
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa-{key.key_size}"
    return type(key).__name__


def cert_dns_names(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName)


def openssl_verify(leaf_path, root_path, untrusted_path=None):
    """`openssl verify` of leaf against root; intermediates only from untrusted_path. Returns (ok, output)."""
    argv = [OPENSSL_BIN, "verify", "-purpose", "sslserver", "-CAfile", str(root_path)]
    if untrusted_path is not None:
        argv += ["-untrusted", str(untrusted_path)]
    argv.append(str(leaf_path))
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def check_leaf(cert, key, domains, key_type):
    """Assertions shared by acmed and uacme output checks. Returns a list of problems (empty = fine)."""
    problems = []
    names = cert_dns_names(cert)
    if sorted(names) != sorted(domains) or len(set(names)) != len(names):
        problems.append(f"SANs {names} != domains {list(domains)}")
    now = _now()
    if not (cert.not_valid_before <= now + datetime.timedelta(minutes=5) and now < cert.not_valid_after):
        problems.append(f"certificate not currently valid: {cert.not_valid_before} .. {cert.not_valid_after}")
    if key_type_of(key) != key_type:
        problems.append(f"private key type {key_type_of(key)} != {key_type}")
    if key_type_of(cert.public_key()) != key_type:
        problems.append(f"certificate key type {key_type_of(cert.public_key())} != {key_type}")
    if key.public_key().public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo) != \
            cert.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo):
        problems.append("private key does not match the certificate")
    return problems


def verify_output_dir(output_dir, domains, key_type, root_path):
    """Check acmed's output_dir/{privkey,cert,chain,fullchain}.pem; raise AssertionError listing all problems.

    chain.pem alone must carry the certificate to Pebble's root (openssl verify -untrusted chain.pem),
    so a missing or wrong chain is caught.
    """
    out = Path(output_dir)
    problems = []
    for f in OUTPUT_FILES:
        if not (out / f).is_file():
            problems.append(f"{out / f} missing")
    if problems:
        raise AssertionError("; ".join(problems))
    mode = os.stat(out / "privkey.pem").st_mode & 0o7777
    if mode != 0o600:
        problems.append(f"privkey.pem mode {oct(mode)} != 0o600")
    for f in ("cert.pem", "chain.pem", "fullchain.pem"):
        m = os.stat(out / f).st_mode & 0o7777
        if m & 0o444 != 0o444:
            problems.append(f"{f} mode {oct(m)} is not world-readable")
    key = serialization.load_pem_private_key((out / "privkey.pem").read_bytes(), password=None)
    leafs = read_pem_certs((out / "cert.pem").read_bytes())
    chain = read_pem_certs((out / "chain.pem").read_bytes())
    full = read_pem_certs((out / "fullchain.pem").read_bytes())
    if len(leafs) != 1:
        problems.append(f"cert.pem holds {len(leafs)} certificates, expected 1")
    if not chain:
        problems.append("chain.pem holds no certificate")
    if [der(c) for c in full] != [der(c) for c in leafs + chain]:
        problems.append("fullchain.pem != cert.pem + chain.pem")
    if leafs:
        problems += check_leaf(leafs[0], key, domains, key_type)
        if chain:
            ok, msg = openssl_verify(out / "cert.pem", root_path, out / "chain.pem")
            if not ok:
                problems.append(f"openssl verify failed: {msg}")
    if problems:
        raise AssertionError(f"{out}: " + "; ".join(problems))
    return leafs[0]


def snapshot_files(output_dir):
    """{file: bytes} of the four output files (following symlinks), for before/after comparisons."""
    out = Path(output_dir)
    return {f: (out / f).read_bytes() for f in OUTPUT_FILES if (out / f).exists()}


# ---------------------------------------------------------------- http-01 responder for uacme

class Http01Responder:
    """Serves <webroot>/<token> at /.well-known/acme-challenge/<token> on 127.0.0.1:port (for uacme runs).

    acmed serves http-01 itself; this is only started while another client (uacme) owns the port.
    """

    def __init__(self, port, webroot):
        self.port = port
        self.webroot = Path(webroot)
        self.webroot.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        root = self.webroot
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, head):
                prefix = "/.well-known/acme-challenge/"
                token = self.path[len(prefix):] if self.path.startswith(prefix) else ""
                body = None
                if token and "/" not in token and not token.startswith("."):
                    with contextlib.suppress(OSError):
                        body = (root / token).read_bytes()
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                owner.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def do_GET(self):
                self._serve(False)

            def do_HEAD(self):
                self._serve(True)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="http01", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------- uacme

def _trust_dir(tls_ca, workdir):
    """A directory laid out like /etc/ssl/certs holding only the throwaway TLS CA."""
    d = Path(workdir) / "uacme-trust"
    if not d.exists():
        d.mkdir(parents=True)
        pem = tls_ca.ca_path.read_bytes()
        (d / "ca-certificates.crt").write_bytes(pem)
        (d / "acmed-test-ca.pem").write_bytes(pem)
        h = subprocess.run([OPENSSL_BIN, "x509", "-hash", "-noout", "-in", str(tls_ca.ca_path)],
                           capture_output=True, text=True, check=True).stdout.strip()
        os.symlink("acmed-test-ca.pem", d / f"{h}.0")
    return d


class Uacme:
    """Drive uacme (one certificate per invocation) against a directory URL.

    uacme has no option for extra trust anchors and its libcurl (GnuTLS flavour) reads no
    CA environment variable; it trusts what is in /etc/ssl/certs.  So every uacme run is
    wrapped in a private mount namespace (util-linux `unshare`) where a directory holding only
    the throwaway TLS CA is bind-mounted over /etc/ssl/certs.  The host is not modified.
    """

    def __init__(self, workdir, directory_url, tls_ca, webroot):
        self.dir = Path(workdir)
        self.confdir = self.dir / "uacme"
        self.directory_url = directory_url
        self.webroot = Path(webroot)
        self.trust = _trust_dir(tls_ca, self.dir)

    def wrapper(self):
        user_ns = [] if os.geteuid() == 0 else ["--map-root-user"]
        return ["unshare", "--mount", "--propagation", "private", *user_ns, "--",
                "/bin/sh", "-c", 'mount --bind "$0" /etc/ssl/certs && exec "$@"', str(self.trust)]

    def run(self, args, timeout=120.0):
        argv = self.wrapper() + [UACME_BIN, "-v", "-y", "-c", str(self.confdir), "-a", self.directory_url, *args]
        env = dict(os.environ)
        env["UACME_WEBROOT"] = str(self.webroot)
        return run_measured(argv, timeout, env=env)

    def new_account(self, email="admin@example.com", timeout=60.0):
        return self.run(["new", email], timeout)

    def issue(self, domains, key_type="ecdsa-p256", timeout=120.0):
        kt, bits = {"ecdsa-p256": ("EC", 256), "ecdsa-p384": ("EC", 384), "rsa-2048": ("RSA", 2048),
                    "rsa-3072": ("RSA", 3072), "rsa-4096": ("RSA", 4096)}[key_type]
        return self.run(["-o", "-t", kt, "-b", str(bits), "-h", str(UACME_HOOK), "issue", *domains], timeout)

    def cert_path(self, domains):
        return self.confdir / domains[0] / "cert.pem"

    def key_path(self, domains):
        return self.confdir / "private" / domains[0] / "key.pem"


def verify_uacme_output(uacme, domains, key_type, root_path):
    """uacme writes CONFDIR/IDENT/cert.pem (leaf + chain) and CONFDIR/private/IDENT/key.pem."""
    cert_path, key_path = uacme.cert_path(domains), uacme.key_path(domains)
    full = read_pem_certs(cert_path.read_bytes())
    if len(full) < 2:
        raise AssertionError(f"{cert_path} holds {len(full)} certificates, expected leaf + chain")
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    problems = check_leaf(full[0], key, domains, key_type)
    leaf_path = cert_path.parent / "leaf-only.pem"
    chain_path = cert_path.parent / "chain-only.pem"
    leaf_path.write_bytes(full[0].public_bytes(serialization.Encoding.PEM))
    chain_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in full[1:]))
    ok, msg = openssl_verify(leaf_path, root_path, chain_path)
    if not ok:
        problems.append(f"openssl verify failed: {msg}")
    if problems:
        raise AssertionError(f"{cert_path}: " + "; ".join(problems))
    return full[0]
