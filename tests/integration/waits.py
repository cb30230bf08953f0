# Waits on what acmed itself reports (its log, its control socket, sd_notify), so that no test sleeps a fixed time.
"""Helpers for tests that must not depend on how fast the machine is.

A test never sleeps a fixed time to let "nothing happen", and never asserts how long something
took.  It waits (with a generous timeout that only bounds a failure) for an event proving that
acmed has done the work in question, then asserts events, their order and counts:

log_lines(text)        acmed's stderr lines with their time stamps (run acmed with TZ=UTC);
wait_log(proc, rx, n)  the first n lines matching rx, once acmed has logged them;
daemon_status(acmed)   `acmed status --json` answered by the running daemon: the daemon serves its
                       control socket from the event loop, which runs only after start-up has
                       looked at every certificate and armed its timer, so an answer proves that
                       start-up scheduling is over (and that timers due before the request ran);
wait_wall(t)           until the wall clock reaches t, an instant acmed announced (a slot or a
                       probe time it logged): what acmed would do then can be checked afterwards;
notify_drain(ns)       every datagram already queued on a NotifySocket has been received;
FrozenClock            the fault proxy's clock for its own self-checks: rule windows (for_s, after_s)
                       move only when the test advances it.
"""
import calendar
import json
import re
import socket
import time
import uuid

import pebble_env as pe

LOG_RX = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3})[+-]\d{4} acmed (\w+): (?:\[([^\]]+)\] )?(.*)$")
STAMP_RX = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
DEFAULT_TIMEOUT = 180.0


def utc_epoch(text):
    """'YYYY-MM-DD HH:MM:SS' as acmed prints it under TZ=UTC -> epoch seconds (int)."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


class LogLine:
    """One line of acmed's stderr: stamp (epoch seconds, millisecond resolution), level, cert, msg."""

    def __init__(self, index, stamp, level, cert, msg, text):
        self.index, self.stamp, self.level, self.cert, self.msg, self.text = index, stamp, level, cert, msg, text

    def times(self):
        """Every 'YYYY-MM-DD HH:MM:SS' instant in the message (e.g. 'next probe at ...'), as epoch seconds."""
        return [utc_epoch(m) for m in STAMP_RX.findall(self.msg)]

    def __repr__(self):
        return self.text


def log_lines(text):
    """acmed's log lines (other lines, e.g. sanitizer output, are left out)."""
    out = []
    for i, line in enumerate(text.splitlines()):
        m = LOG_RX.match(line)
        if m:
            out.append(LogLine(i, utc_epoch(m.group(1)) + int(m.group(2)) / 1000.0, m.group(3), m.group(4),
                               m.group(5), line))
    return out


def grep(text, rx, cert=None):
    """The log lines whose message matches rx (and of certificate cert, when given)."""
    rx = re.compile(rx)
    return [x for x in log_lines(text) if rx.search(x.msg) and (cert is None or x.cert == cert)]


def wait_log(proc, rx, count=1, timeout=DEFAULT_TIMEOUT, what=None):
    """Wait until acmed (an AcmedProcess) has logged `count` lines whose message matches rx; returns them.
    Fails at once if acmed exits before."""
    def seen():
        got = grep(proc.stderr, rx)
        if len(got) >= count:
            return got[:count]
        if not proc.alive():
            raise AssertionError(f"acmed exited ({proc.returncode}) after {len(got)} of {count} lines "
                                 f"matching {rx!r}:\n{proc.stderr[-4000:]}")
        return None
    try:
        return pe.wait_until(seen, timeout, interval=0.05, what=what or f"{count} log lines matching {rx!r}")
    except TimeoutError as e:
        raise AssertionError(f"{e}:\n{proc.stderr[-4000:]}") from None


def daemon_status(acmed, proc, timeout=DEFAULT_TIMEOUT):
    """`acmed status --json` as answered by the running daemon `proc` (not read from state_dir)."""
    def answered():
        if not proc.alive():
            raise AssertionError(f"acmed exited ({proc.returncode}):\n{proc.stderr[-4000:]}")
        r = pe.run_acmed(["status", "--json"], timeout=60, config=acmed.config, acmed_bin=acmed.bin)
        if r.rc != 0:
            return None
        try:
            st = json.loads(r.stdout)
        except ValueError:
            return None
        return st if st.get("daemon") is True else None
    return pe.wait_until(answered, timeout, interval=0.1, what="the daemon answering `acmed status --json`")


def wait_wall(t, timeout=DEFAULT_TIMEOUT):
    """Until time.time() >= t: t is an instant acmed announced, not a guess at how long work takes."""
    pe.wait_until(lambda: time.time() >= t, timeout, interval=0.02, what=f"the wall clock at {t}")


def notify_drain(ns, timeout=60.0):
    """Send a datagram of our own to the NotifySocket `ns` and wait for it: datagrams are received in
    order, so everything queued before it (e.g. by an acmed that has exited) is in ns.messages.
    Returns the sentinel's index: ns.messages[:index] are the others."""
    token = f"ACMED_TEST_SENTINEL={uuid.uuid4().hex}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(token.encode(), str(ns.path))
    finally:
        s.close()
    key, value = token.split("=", 1)
    return ns.wait_for(key, value, timeout=timeout)


class FrozenClock:
    """Stands in for the `time` module inside faultproxy (monkeypatch.setattr(faultproxy, "time", clock)):
    monotonic() and time() stand still until advance(); sleep() and the rest are the real ones."""

    def __init__(self):
        self._mono = time.monotonic()
        self._wall = time.time()

    def monotonic(self):
        return self._mono

    def time(self):
        return self._wall

    def advance(self, seconds):
        self._mono += seconds
        self._wall += seconds

    def __getattr__(self, name):
        return getattr(time, name)
