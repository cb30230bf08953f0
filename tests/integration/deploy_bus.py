# A private dbus-daemon with python3-dbusmock standing in for systemd's Manager (tests/unit/data/systemd_mock.py).
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

MOCK_TEMPLATE = Path(__file__).resolve().parent.parent / "unit" / "data" / "systemd_mock.py"
PY = "/usr/bin/python3"
DEST = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"


def available():
    """None when usable, else the reason to skip."""
    for tool in ("dbus-daemon", "busctl"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    if subprocess.run([PY, "-c", "import dbusmock"], capture_output=True).returncode != 0:
        return "python3-dbusmock not installed"
    return None


class PrivateSystemBus:
    """dbus-daemon on DIR/bus plus the systemd mock; `address` goes into DBUS_SYSTEM_BUS_ADDRESS."""

    def __init__(self, directory, results=None, delays=None, early=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.markers = self.dir / "jobs"
        self.markers.mkdir(exist_ok=True)
        self.socket = self.dir / "bus"
        self.address = f"unix:path={self.socket}"
        self.params = {"results": results or {}, "delays": delays or {}, "early": early or [],
                       "marker_dir": str(self.markers)}
        self.daemon = self.mock = None
        self._logs = []

    def start(self, timeout=15.0):
        conf = self.dir / "bus.conf"
        conf.write_text(
            '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n'
            ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
            f"<busconfig><type>session</type><listen>{self.address}</listen><auth>EXTERNAL</auth>\n"
            '<policy context="default"><allow send_destination="*" eavesdrop="true"/>'
            '<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>\n')
        self.daemon = self._spawn(["dbus-daemon", f"--config-file={conf}", "--nofork"], "dbus-daemon.log")
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if time.monotonic() > deadline or self.daemon.poll() is not None:
                raise RuntimeError(f"dbus-daemon did not start, see {self.dir / 'dbus-daemon.log'}")
            time.sleep(0.02)
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        self.mock = self._spawn([PY, "-m", "dbusmock", "--template", str(MOCK_TEMPLATE),
                                 "-p", json.dumps(self.params)], "systemd-mock.log", env=env)
        while True:
            if self._busctl("org.freedesktop.DBus.Mock", "ClearCalls", check=False).returncode == 0:
                return self
            if time.monotonic() > deadline or self.mock.poll() is not None:
                raise RuntimeError(f"systemd mock did not start, see {self.dir / 'systemd-mock.log'}")
            time.sleep(0.05)

    def _spawn(self, argv, log, env=None):
        f = open(self.dir / log, "wb")
        self._logs.append(f)
        return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env)

    def _busctl(self, iface, method, *args, check=True):
        return subprocess.run(["busctl", f"--address={self.address}", "--json=short", "call", DEST, PATH,
                               iface, method, *args], capture_output=True, text=True, check=check, timeout=30)

    def calls(self):
        """[(method, [args...])] the mock received, in order."""
        out = json.loads(self._busctl("org.freedesktop.DBus.Mock", "GetCalls").stdout)
        return [(c[1], [a["data"] for a in c[2]]) for c in out["data"][0]]

    def reloads(self):
        """{unit: number of ReloadOrRestartUnit calls}; asserts every call used mode "replace"."""
        counts = {}
        for method, args in self.calls():
            if method == "ReloadOrRestartUnit":
                assert args[1] == "replace", args
                counts[args[0]] = counts.get(args[0], 0) + 1
        return counts

    def stop(self):
        for p in (self.mock, self.daemon):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in self._logs:
            f.close()
