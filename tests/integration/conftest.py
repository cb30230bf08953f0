# pytest fixtures for acmed integration tests: workspace, Pebble (+challtestsrv; 2.4 and the newest), fault proxy, acmed runner.
"""Every test that uses the `pebble` fixture (directly, or through `proxy` / `acmed`) runs once per
Pebble: "pebble2.4" (Debian 12's package) and "pebble-new" (Debian unstable's, unpacked by
tests/deps.sh into build-pebble/).  ACMED_PEBBLES=pebble-new (or pebble2.4) limits the run to one;
so does `pytest -k pebble-new`.  A test about a behaviour of one of them only says so with
@pytest.mark.pebble_builds("pebble2.4", reason="...")."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

import pebble_env as pe
from faultproxy import FaultProxy


def pytest_configure(config):
    config.addinivalue_line("markers", "pebble(strict=False, nonce_reject=None, authz_reuse=None, env=None, "
                                       "config=None, defaults=False, knot=False): options for the pebble fixture")
    config.addinivalue_line("markers", "knot(secondaries=0): the dns-01 tests' knot: how many held-back "
                                       "secondaries it has")
    config.addinivalue_line("markers", "acmed: drives the acmed binary (fails until acmed works)")
    config.addinivalue_line("markers", "harness: checks the test harness itself (Pebble, proxy, uacme)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "pebble_builds(*ids, reason): run only against these Pebbles "
                                       "(ids of pebble_env.PEBBLE_BUILDS); reason says why")


def pytest_generate_tests(metafunc):
    """The Pebble dimension: each test that needs a Pebble runs against each selected one."""
    if "pebble_build" not in metafunc.fixturenames:
        return
    builds = pe.pebble_builds_selected()
    m = metafunc.definition.get_closest_marker("pebble_builds")
    if m is not None:
        if not m.kwargs.get("reason"):
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: pebble_builds(...) needs a reason=")
        unknown = [i for i in m.args if i not in pe.PEBBLE_BUILDS]
        if unknown:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: unknown Pebble ids {unknown}")
        builds = [b for b in builds if b.id in m.args]
    metafunc.parametrize("pebble_build", builds, ids=[b.id for b in builds])


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
def pebble_build(request):
    """Which Pebble (pebble_env.PebbleBuild): parametrized by pytest_generate_tests."""
    return request.param


@pytest.fixture
def pebble(request, workspace, pebble_build):
    """A fresh Pebble per test, of the build pebble_build.  Options via @pytest.mark.pebble(...) or
    indirect parametrization: strict (bool), nonce_reject (int %, None = Pebble default 5),
    authz_reuse (int %), env (dict), config (dict: extra keys of Pebble's JSON config, e.g.
    certificateValidityPeriod), defaults (bool: the config its package ships, no PEBBLE_VA_NOSLEEP),
    knot (bool: resolve through the test module's `resolver` fixture, for dns-01)."""
    if not pebble_build.installed():
        if pebble_build.newest:
            # not a skip: the suite must not pass quietly without the newest Pebble
            pytest.fail(f"{pebble_build.id}: {pebble_build.pebble_bin} missing: {pebble_build.where}; "
                        "or run only against Pebble 2.4 with ACMED_PEBBLES=pebble2.4")
        pytest.skip(f"{pebble_build.id}: pebble / pebble-challtestsrv not installed ({pebble_build.where})")
    o = _pebble_options(request)
    # knot=True: Pebble's VA resolves through the test's `resolver` fixture (knot behind it: dns-01)
    dns_server = request.getfixturevalue("resolver").hostport if o.get("knot") else None
    env = pe.PebbleEnv(workspace / "pebble", strict=o.get("strict", False), nonce_reject=o.get("nonce_reject"),
                       authz_reuse=o.get("authz_reuse"), extra_env=o.get("env"), config=o.get("config"),
                       build=pebble_build, defaults=o.get("defaults", False), dns_server=dns_server)
    env.start()
    yield env
    env.stop()


@pytest.fixture
def proxy(pebble, workspace):
    """The fault-injecting proxy in front of `pebble`, same throwaway TLS CA."""
    cert, key = pebble.tls_ca.issue_server_cert("proxy")
    p = FaultProxy(("127.0.0.1", 0), ("127.0.0.1", pebble.port), cert, key, pebble.tls_ca.ca_path,
                   log_path=workspace / "proxy-requests.jsonl", upstream_ari_path=pebble.build.renewal_info_path)
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


@pytest.fixture
def acmed_direct(acmed_bin, workspace, pebble):
    """acmed configured to talk to Pebble itself, no proxy in between."""
    a = Acmed(acmed_bin, workspace, pebble, pebble.directory_url)
    yield a
    a.stop_all()
