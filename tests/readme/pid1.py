#!/usr/bin/python3
# What systemd as PID 1 does with acmed's installed units, for a machine that has no systemd running (CI).
"""tests/readme/pid1.py serve STATE_DIR   the manager: holds the sockets, runs the services
   tests/readme/systemctl VERB ...        (the shim on PATH) forwards to it

The README's commands call `systemctl`; without systemd as PID 1 this manager does what PID 1 would
for the verbs the README uses, with the units `meson install` put on the machine:

  daemon-reload               `systemd-analyze verify` of the installed acmed units
  enable|disable [--now] U..  the real `systemctl --root=/ enable|disable` (symlinks), then start|stop
  start|stop|restart U..      acmed.socket: binds its ListenStream (BindIPv6Only=both) and keeps it;
                              acmed.service: runs ExecStart as User=/Group= with UMask=, its
                              Runtime/State/ConfigurationDirectory= made and owned as systemd makes
                              them, NOTIFY_SOCKET (Type=notify: start returns at READY=1), the socket
                              passed as fd 3 (LISTEN_FDS); stop sends SIGTERM
  reload U                    runs ExecReload= the same way
  is-active U                 0 when running

Not applied: the sandbox settings (ProtectSystem=, SystemCallFilter=...); tests/systemd_verify.sh
checks those offline. Standard output and error of a service go to STATE_DIR/<unit>.log.
"""
import grp
import json
import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

UNIT_DIRS = ["/etc/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"]
LIST_KEYS = {"ExecStart", "ExecReload", "ListenStream"}


def unit_file(name):
    for d in UNIT_DIRS:
        p = Path(d) / name
        if p.is_file():
            return p
    return None


def parse_unit(name):
    """{key: value} of the unit and its drop-ins; list keys as lists (an empty assignment resets)."""
    path = unit_file(name)
    if path is None:
        raise RuntimeError(f"Unit {name} not found.")
    files = [path] + sorted(p for d in UNIT_DIRS for p in (Path(d) / f"{name}.d").glob("*.conf"))
    cfg = {}
    for f in files:
        for line in f.read_text().splitlines():
            line = line.strip()
            if not line or line[0] in "#;[" or "=" not in line:
                continue
            k, v = (s.strip() for s in line.split("=", 1))
            if k in LIST_KEYS:
                cfg[k] = [] if v == "" else cfg.get(k, []) + [v]
            else:
                cfg[k] = v
    return cfg


class Manager:
    def __init__(self, state):
        self.state = Path(state)
        self.state.mkdir(parents=True, exist_ok=True)
        self.sockets = {}       # unit -> [socket]
        self.services = {}      # unit -> Popen
        self.notify_path = self.state / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_path.unlink(missing_ok=True)
        self.notify.bind(str(self.notify_path))
        os.chmod(self.notify_path, 0o777)       # services run as their own user
        self.notify.settimeout(0.2)
        self.ready = 0                  # READY=1 datagrams received
        self.cond = threading.Condition()
        threading.Thread(target=self._notify_loop, daemon=True).start()

    def _notify_loop(self):
        while True:
            try:
                data = self.notify.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if b"READY=1" in data.split(b"\n"):
                with self.cond:
                    self.ready += 1
                    self.cond.notify_all()

    def _reap_notify(self, p):
        p.wait()
        with self.cond:
            self.cond.notify_all()

    # ---- sockets ----
    def start_socket(self, unit):
        if unit in self.sockets:
            return 0, ""
        cfg = parse_unit(unit)
        socks = []
        for listen in cfg.get("ListenStream", []):
            port = int(listen.rsplit(":", 1)[-1])
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if cfg.get("BindIPv6Only") == "both" else 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::", port))
            s.listen(128)
            socks.append(s)
        self.sockets[unit] = socks
        return 0, ""

    # ---- services ----
    def _dirs(self, cfg, uid, gid):
        for key, base in (("RuntimeDirectory", "/run"), ("StateDirectory", "/var/lib"),
                          ("ConfigurationDirectory", "/etc")):
            if key not in cfg:
                continue
            mode = int(cfg.get(key + "Mode", "0755"), 8)
            for name in cfg[key].split():
                d = Path(base) / name
                d.mkdir(parents=True, exist_ok=True)
                os.chmod(d, mode)
                if key != "ConfigurationDirectory":      # systemd leaves /etc/<dir> to root
                    os.chown(d, uid, gid)

    def _spawn(self, unit, cfg, argv, log):
        user = cfg.get("User")
        uid = pwd.getpwnam(user).pw_uid if user else 0
        gid = grp.getgrnam(cfg.get("Group", user)).gr_gid if user else 0
        umask = int(cfg.get("UMask", "0022"), 8)
        self._dirs(cfg, uid, gid)
        sock_unit = unit.replace(".service", ".socket")
        fds = [s.fileno() for s in self.sockets.get(sock_unit, [])]
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "NOTIFY_SOCKET": str(self.notify_path)}
        if user:
            env.update(USER=user, LOGNAME=user, HOME=pwd.getpwnam(user).pw_dir)
        if fds:
            env.update(LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=":".join([sock_unit] * len(fds)))

        def child():
            os.setsid()
            if user:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            os.umask(umask)

        # The shell moves the sockets to 3, 4... and execs the service: LISTEN_PID is its pid.
        moves = "".join(f"exec {3 + i}<&{fd} {fd}<&-; " for i, fd in enumerate(fds) if fd != 3 + i)
        script = f'{moves}export LISTEN_PID=$$; exec "$@"' if fds else 'exec "$@"'
        return subprocess.Popen(["/bin/sh", "-c", script, "sh"] + argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, preexec_fn=child, pass_fds=fds)

    def start_service(self, unit):
        p = self.services.get(unit)
        if p and p.poll() is None:
            return 0, ""
        cfg = parse_unit(unit)
        argv = shlex.split(cfg["ExecStart"][-1])
        log = open(self.state / f"{unit}.log", "ab")
        with self.cond:
            before = self.ready
        p = self._spawn(unit, cfg, argv, log)
        self.services[unit] = p
        # Type=notify: woken by READY=1, or by the service's exit (a thread waits for it)
        threading.Thread(target=self._reap_notify, args=(p,), daemon=True).start()
        with self.cond:
            self.cond.wait_for(lambda: self.ready > before or p.poll() is not None, timeout=120)
            if self.ready > before:
                return 0, ""
        if p.poll() is not None:
            return 1, f"{unit}: exited with status {p.returncode} before READY=1 (see {log.name})"
        return 1, f"{unit}: no READY=1 within 120 s"

    def stop(self, unit):
        if unit.endswith(".socket"):
            for s in self.sockets.pop(unit, []):
                s.close()
            return 0, ""
        p = self.services.pop(unit, None)
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        cfg = parse_unit(unit) if unit_file(unit) else {}
        for name in cfg.get("RuntimeDirectory", "").split():
            subprocess.run(["rm", "-rf", f"/run/{name}"])
        return 0, ""

    def start(self, unit):
        if unit.endswith(".socket"):
            return self.start_socket(unit)
        if unit.endswith(".service"):
            return self.start_service(unit)
        return 0, ""            # timers and the like: nothing runs here

    def reload(self, unit):
        cfg = parse_unit(unit)
        if not cfg.get("ExecReload"):
            return 1, f"{unit}: no ExecReload="
        user = cfg.get("User")
        argv = shlex.split(cfg["ExecReload"][-1])
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={cfg.get('Group', user)}", "--clear-groups"] + argv
        r = subprocess.run(argv, capture_output=True, text=True)
        return r.returncode, r.stdout + r.stderr

    def handle(self, args):
        now = "--now" in args
        args = [a for a in args if a != "--now"]
        verb, units = args[0], [u if "." in u else u + ".service" for u in args[1:]]
        out, rc = "", 0
        if verb == "daemon-reload":
            files = [str(p) for d in UNIT_DIRS for p in sorted(Path(d).glob("acmed.*")) if p.suffix in
                     (".service", ".socket")]
            r = subprocess.run(["systemd-analyze", "verify"] + files, capture_output=True, text=True)
            return r.returncode, r.stdout + r.stderr
        if verb in ("enable", "disable"):
            r = subprocess.run(["/bin/systemctl", "--root=/", verb] + units, capture_output=True, text=True)
            if r.returncode or not now:
                return r.returncode, r.stdout + r.stderr
            out = r.stdout + r.stderr
            verb = "start" if verb == "enable" else "stop"
        for u in units:
            if verb == "start":
                rc, o = self.start(u)
            elif verb == "stop":
                rc, o = self.stop(u)
            elif verb == "restart":
                rc, o = self.stop(u)
                rc, o = self.start(u) if rc == 0 else (rc, o)
            elif verb == "reload":
                rc, o = self.reload(u)
            elif verb == "is-active":
                p = self.services.get(u)
                rc, o = (0, "active\n") if (p and p.poll() is None) or u in self.sockets else (3, "inactive\n")
            else:
                rc, o = 1, f"systemctl {verb}: not something the test's PID 1 does\n"
            out += o
            if rc:
                break
        return rc, out

    def shutdown(self):
        for u in list(self.services):
            self.stop(u)
        for u in list(self.sockets):
            self.stop(u)
        self.notify.close()


def read_line(c):
    data = b""
    while not data.endswith(b"\n"):
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def serve(state):
    m = Manager(state)
    path = Path(state) / "pid1.sock"
    path.unlink(missing_ok=True)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(8)
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(SystemExit(0)))
    print("ready", flush=True)
    try:
        while True:
            c, _ = srv.accept()
            with c:
                try:
                    rc, out = m.handle(json.loads(read_line(c)))
                except Exception as e:      # an error of the request: said, the manager goes on
                    rc, out = 1, f"pid1: {e}\n"
                c.sendall(json.dumps({"rc": rc, "out": out}).encode() + b"\n")
    finally:
        m.shutdown()


def client(state, args):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(str(Path(state) / "pid1.sock"))
    c.sendall(json.dumps(args).encode() + b"\n")
    r = json.loads(read_line(c))
    sys.stdout.write(r["out"])
    return r["rc"]


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
    else:
        sys.exit(client(os.environ["ACMED_PID1_STATE"], sys.argv[1:]))
