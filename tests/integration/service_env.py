# Helpers for the service tests: a NOTIFY_SOCKET receiver and acmed started the way systemd starts it.
"""systemd-side stand-ins for tests/integration/test_service.py.

NotifySocket   an AF_UNIX datagram socket (what systemd puts in NOTIFY_SOCKET); a thread
               records every datagram with its arrival time (time.monotonic) and the
               sender's pid (SCM_CREDENTIALS, as systemd checks it for NotifyAccess=main).
ServiceDaemon  acmed started through `bash -c 'export VAR=$$ ...; exec "$@"'` so that
               WATCHDOG_PID / LISTEN_PID hold acmed's own pid (systemd sets them to the pid
               it forks), optionally with a listening socket moved to fd 3 (LISTEN_FDS=1).
"""

import contextlib
import os
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pebble_env as pe

SD_LISTEN_FDS_START = 3


class NotifyMessage:
    def __init__(self, raw, mono, pid):
        self.raw = raw
        self.mono = mono      # time.monotonic() when received
        self.pid = pid        # sender's pid from SCM_CREDENTIALS (None if absent)
        self.fields = {}
        for line in raw.decode(errors="replace").split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                self.fields[k] = v

    def has(self, key, value=None):
        return key in self.fields and (value is None or self.fields[key] == value)

    def __repr__(self):
        return f"<notify pid={self.pid} {self.raw!r}>"


class NotifySocket:
    """Bound at <directory>/notify.sock; .path goes into NOTIFY_SOCKET."""

    def __init__(self, directory):
        self.path = Path(directory) / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.1)
        self._lock = threading.Lock()
        self._msgs = []
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="notify", daemon=True)
        self._thread.start()

    def _loop(self):
        cred_len = socket.CMSG_SPACE(struct.calcsize("iII"))
        while not self._stop:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(65536, cred_len)
            except socket.timeout:
                continue
            except OSError:
                return
            mono = time.monotonic()
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:struct.calcsize("iII")])[0]
            with self._lock:
                self._msgs.append(NotifyMessage(data, mono, pid))

    @property
    def messages(self):
        with self._lock:
            return list(self._msgs)

    def mark(self):
        with self._lock:
            return len(self._msgs)

    def wait_for(self, key, value=None, since=0, timeout=30.0, proc=None):
        """Index of the first message at or after `since` holding key(=value); TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.messages[since:], since):
                if m.has(key, value):
                    return i
            if proc is not None and not proc.alive():
                raise RuntimeError(f"acmed exited ({proc.returncode}) before sending {key}: "
                                   f"{self.messages}\n{proc.stderr[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {key}={value or '*'} datagram within {timeout}s: {self.messages}")
            time.sleep(0.01)

    def close(self):
        self._stop = True
        self._thread.join(2)
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


class ServiceDaemon(pe.AcmedProcess):
    """`acmed -c CONFIG ARGS...` as systemd would start it.

    own_pid_vars: environment variables set to acmed's own pid (e.g. WATCHDOG_PID, LISTEN_PID):
                  a shell exports them as $$ and then execs acmed, so the pid is right.
    listen_sock:  a listening socket handed over as fd 3 (the caller sets LISTEN_FDS=1 in env).
    """

    def __init__(self, acmed_bin, config, args, stderr_path, env=None, own_pid_vars=(), listen_sock=None):
        self.stderr_path = Path(stderr_path)
        self.stdout_path = self.stderr_path.with_suffix(".stdout")
        script = "".join(f"export {v}=$$; " for v in own_pid_vars)
        pass_fds = ()
        redirect = ""
        if listen_sock is not None:
            fd = listen_sock.fileno()
            pass_fds = (fd,)
            # dup the socket onto fd 3 for the exec'd acmed and close the original number
            redirect = f" {SD_LISTEN_FDS_START}<&{fd} {fd}<&-" if fd != SD_LISTEN_FDS_START else ""
        script += 'exec "$@"' + redirect
        # bash, not dash: dash's redirections take single-digit fd numbers only
        self.argv = ["/bin/bash", "-c", script, "acmed-wrapper", str(acmed_bin), "-c", str(config),
                     *[str(a) for a in args]]
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                     env=pe._acmed_env(env), start_new_session=True, pass_fds=pass_fds)
        self.pid = self.proc.pid    # the shell execs acmed: same pid


def exe_of(pid):
    """Basename of /proc/PID/exe (None when gone)."""
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None
