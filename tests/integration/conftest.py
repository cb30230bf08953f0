# pytest fixtures for acmed integration tests: workspace, Pebble (+challtestsrv), fault proxy, acmed runner.
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import pebble_env as pe
from faultproxy import FaultProxy


def pytest_configure(config):
    config.addinivalue_line("markers", "pebble(strict=False, nonce_reject=None, authz_reuse=None, env=None, "
                                       "config=None): options for the pebble fixture")
    config.addinivalue_line("markers", "acmed: drives the acmed binary (fails until acmed works)")
    config.addinivalue_line("markers", "harness: checks the test harness itself (Pebble, proxy, uacme)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    return any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
               for w in ("setup", "call"))


def _tail(path, n=60):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(lines[-n:])


@pytest.fixture
def workspace(request):
    """A short private directory under /tmp (unix socket paths stay < 108 bytes).

    Kept on failure (path printed) or when ACMED_KEEP_TMP=1; removed otherwise.
    """
    d = Path(tempfile.mkdtemp(prefix="acmed-it-", dir="/tmp"))
    os.chmod(d, 0o700)
    yield d
    if _failed(request) or os.environ.get("ACMED_KEEP_TMP") == "1":
        print(f"\n[harness] workspace kept: {d}")
        logs = [d / "pebble" / "pebble.log", d / "pebble" / "challtestsrv.log"] + sorted(d.glob("acmed-run*.stderr")) \
            + sorted(d.glob("acmed-daemon*.stderr"))
        for log in logs:
            if log.exists():
                print(f"----- tail of {log} -----\n{_tail(log)}")
    else:
        shutil.rmtree(d, ignore_errors=True)


def _pebble_options(request):
    opts = {}
    m = request.node.get_closest_marker("pebble")
    if m is not None:
        opts.update(m.kwargs)
    if hasattr(request, "param") and request.param:
        opts.update(request.param)
    return opts


@pytest.fixture
def pebble(request, workspace):
    """A fresh Pebble per test.  Options via @pytest.mark.pebble(...) or indirect parametrization:
    strict (bool), nonce_reject (int %, None = Pebble default 5), authz_reuse (int %), env (dict),
    config (dict: extra keys of Pebble's JSON config, e.g. certificateValidityPeriod)."""
    if not pe.pebble_installed():
        pytest.skip("pebble / pebble-challtestsrv not installed (Debian package 'pebble')")
    o = _pebble_options(request)
    env = pe.PebbleEnv(workspace / "pebble", strict=o.get("strict", False), nonce_reject=o.get("nonce_reject"),
                       authz_reuse=o.get("authz_reuse"), extra_env=o.get("env"), config=o.get("config"))
    env.start()
    yield env
    env.stop()


@pytest.fixture
def proxy(pebble, workspace):
    """The fault-injecting proxy in front of `pebble`, same throwaway TLS CA."""
    cert, key = pebble.tls_ca.issue_server_cert("proxy")
    p = FaultProxy(("127.0.0.1", 0), ("127.0.0.1", pebble.port), cert, key, pebble.tls_ca.ca_path,
                   log_path=workspace / "proxy-requests.jsonl")
    p.start()
    yield p
    p.stop()


@pytest.fixture
def acmed_bin():
    path = pe.acmed_binary()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"acmed binary not found at {path} (build it: ninja -C build; or set ACMED_BIN)")
    return path


class Acmed:
    """acmed driven as a user would: config file in the workspace, `acmed -c FILE ...`."""

    def __init__(self, binary, workspace, pebble, directory_url):
        self.bin = binary
        self.ws = workspace
        self.pebble = pebble
        self.directory_url = directory_url
        self.config = workspace / "acmed.yaml"
        self.outputs = {}
        self.runs = []
        self.daemons = []

    def write_config(self, certificates, **kw):
        self.outputs = pe.write_config(self.config, self.ws, self.directory_url, self.pebble.ca_bundle,
                                       self.pebble.http01_port, certificates, **kw)
        return self.outputs

    def run(self, *args, timeout=120.0, config=True, env=None):
        r = pe.run_acmed(list(args), timeout=timeout + 30, config=self.config if config else None,
                         acmed_bin=self.bin, env=env)
        self.runs.append((args, r))
        (self.ws / f"acmed-run{len(self.runs)}.stderr").write_text(r.stderr)
        return r

    def run_once(self, timeout=120.0, env=None):
        return self.run("run", "--once", "--timeout", str(int(timeout)), timeout=timeout, env=env)

    def spawn(self, *args, env=None, config=True):
        """Start acmed in the background (e.g. spawn("run") for the daemon); stopped at teardown."""
        d = pe.AcmedProcess(list(args), config=self.config if config else None, acmed_bin=self.bin, env=env,
                            stderr_path=self.ws / f"acmed-daemon{len(self.daemons) + 1}.stderr")
        self.daemons.append(d)
        return d

    def stop_all(self):
        for d in self.daemons:
            d.stop()

    def verify(self, certificates):
        for c in certificates:
            pe.verify_output_dir(self.outputs[c["name"]], c["domains"], c["key_type"], self.pebble.root_path)


@pytest.fixture
def acmed(acmed_bin, workspace, pebble, proxy):
    """acmed configured to talk to Pebble through the fault proxy; background acmeds are stopped at teardown."""
    a = Acmed(acmed_bin, workspace, pebble, proxy.directory_url)
    yield a
    a.stop_all()
