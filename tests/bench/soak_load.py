#!/usr/bin/python3
# Soak benchmark load (run by soak.py as a process of its own): slow http-01 clients, a 404 flood, control-socket churn.
"""Started by soak.py as `soak_load.py SPEC_JSON`; runs until its stdin is closed, then prints one
JSON object with what each part saw and exits.  A process of its own so that its few hundred
requests a second do not compete for the GIL with the fault proxy in soak.py's process.

SPEC_JSON keys: http_port (acmed's http-01 listener on 127.0.0.1), control (path of acmed.sock),
slow (slow clients, one byte a second each), flood_rate (requests a second), flood_threads,
ctl_rate (status requests a second), nonreaders (control clients that never read), seed.

Every client uses loopback addresses other than 127.0.0.1: Pebble's validator connects from
127.0.0.1, and acmed admits at most 16 connections per address (CH_MAX_PER_ADDR).
"""

import json
import os
import random
import select
import socket
import string
import sys
import threading
import time

SLOW_ADDRS = ["127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"]
FLOOD_ADDR = "127.0.2.{}"
# A request that never ends within acmed's 10 s deadline at one byte a second.
SLOW_REQUEST = (b"GET /.well-known/acme-challenge/slowsoak HTTP/1.1\r\nHost: soak.example.com\r\n"
                + b"X-Soak: y\r\n" * 100)
TOKEN_CHARS = string.ascii_letters + string.digits + "-_"


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class Part(threading.Thread):
    def __init__(self, name):
        super().__init__(name=name, daemon=True)
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def stop(self):
        self.stop_event.set()


class SlowClients(Part):
    """`n` connections from SLOW_ADDRS, one byte a second on each; a new one whenever acmed closes one.
    Counts the bytes each closed connection had taken: acmed's 10 s deadline keeps that near 10."""

    def __init__(self, port, n):
        super().__init__("slow")
        self.port, self.n = port, n
        self.conns = {}            # socket -> [addr, bytes sent]
        self.opened = self.connect_errors = self.rounds = 0
        self.closed_bytes = []

    def _open(self, addr):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((addr, 0))
            s.settimeout(2.0)
            s.connect(("127.0.0.1", self.port))
            s.setblocking(False)
        except OSError:
            s.close()
            self.connect_errors += 1
            return
        self.conns[s] = [addr, 0]
        self.opened += 1

    def _reap(self):
        p = select.poll()
        by_fd = {s.fileno(): s for s in self.conns}
        for fd in by_fd:
            p.register(fd, select.POLLIN)
        for fd, _ in p.poll(0):
            s = by_fd[fd]
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                continue            # an answer (408/400); the close follows
            self.closed_bytes.append(self.conns.pop(s)[1])
            s.close()

    def run(self):
        per_addr = max(1, -(-self.n // len(SLOW_ADDRS)))
        while not self.stop_event.is_set():
            count = {a: 0 for a in SLOW_ADDRS}
            for addr, _ in self.conns.values():
                count[addr] += 1
            want = self.n - len(self.conns)
            for addr in SLOW_ADDRS:
                while want > 0 and count[addr] < per_addr:
                    self._open(addr)
                    count[addr] += 1
                    want -= 1
            self._reap()
            for s, st in self.conns.items():
                if st[1] < len(SLOW_REQUEST):
                    try:
                        s.send(SLOW_REQUEST[st[1]:st[1] + 1])
                        st[1] += 1
                    except OSError:
                        pass        # reset: _reap sees it next round
            self.rounds += 1
            self.stop_event.wait(1.0)
        for s in self.conns:
            s.close()

    def result(self):
        cb = self.closed_bytes
        return {"clients": self.n, "opened": self.opened, "closed_by_acmed": len(cb),
                "connect_errors": self.connect_errors, "rounds": self.rounds,
                "bytes_per_closed_conn_max": max(cb) if cb else None,
                "bytes_per_closed_conn_median": pct(cb, 50)}


class Flood(Part):
    """`rate` requests a second in all (`threads` threads, each from its own address) for random
    tokens: each a new connection, `Connection: close`; acmed should answer 404 to every one."""

    def __init__(self, port, rate, threads, seed):
        super().__init__("flood")
        self.port, self.rate, self.nthreads = port, rate, threads
        self.rng = random.Random(seed)
        self.status = {}
        self.errors = {}
        self.lat = []
        self.sent = 0
        self.t0 = self.t1 = None

    def _one(self, addr, token):
        req = (f"GET /.well-known/acme-challenge/{token} HTTP/1.1\r\nHost: soak.example.com\r\n"
               "Connection: close\r\n\r\n").encode()
        t = time.monotonic()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((addr, 0))
            s.settimeout(5.0)
            s.connect(("127.0.0.1", self.port))
            s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            parts = data.split(b" ", 2)
            key = parts[1].decode() if len(parts) > 1 and data.startswith(b"HTTP/") else "garbled"
            table = self.status
        except OSError as e:
            key, table = type(e).__name__, self.errors
        finally:
            s.close()
        with self.lock:
            table[key] = table.get(key, 0) + 1
            self.sent += 1
            if len(self.lat) < 200000:
                self.lat.append(time.monotonic() - t)

    def _loop(self, k):
        addr = FLOOD_ADDR.format(k + 1)
        rng = random.Random(self.rng.random())
        step = self.nthreads / self.rate
        nxt = time.monotonic()
        while not self.stop_event.is_set():
            self._one(addr, "".join(rng.choice(TOKEN_CHARS) for _ in range(43)))
            nxt += step
            now = time.monotonic()
            if nxt > now:
                self.stop_event.wait(nxt - now)
            elif now - nxt > 1.0:
                nxt = now            # behind by more than a second: no burst to catch up

    def run(self):
        self.t0 = time.monotonic()
        ts = [threading.Thread(target=self._loop, args=(k,), daemon=True) for k in range(self.nthreads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.t1 = time.monotonic()

    def result(self):
        span = (self.t1 or time.monotonic()) - (self.t0 or time.monotonic())
        ms = [x * 1000 for x in self.lat]
        return {"target_rate": self.rate, "requests": self.sent,
                "rate": round(self.sent / span, 1) if span > 0 else None, "status": self.status,
                "errors": self.errors, "latency_ms_p50": pct(ms, 50), "latency_ms_p99": pct(ms, 99),
                "latency_ms_max": max(ms) if ms else None}


def _unix(path, timeout=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


class ControlChurn(Part):
    """Connect, `status`, read the answer, disconnect, `rate` times a second; one in five instead
    connects and leaves at once, one in five sends half a request and leaves."""

    def __init__(self, path, rate, seed):
        super().__init__("control")
        self.path, self.rate = path, rate
        self.rng = random.Random(seed)
        self.counts = {"status_ok": 0, "status_failed": 0, "connect_close": 0, "half_request": 0}
        self.errors = {}
        self.lat = []
        self.answer_bytes = 0

    def _status(self):
        t = time.monotonic()
        with _unix(self.path) as s:
            s.sendall(b'{"cmd":"status"}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        ok = json.loads(buf.decode()).get("ok") is True
        self.lat.append(time.monotonic() - t)
        self.answer_bytes = len(buf)
        return "status_ok" if ok else "status_failed"

    def run(self):
        while not self.stop_event.is_set():
            r = self.rng.random()
            try:
                if r < 0.2:
                    _unix(self.path).close()
                    key = "connect_close"
                elif r < 0.4:
                    with _unix(self.path) as s:
                        s.sendall(b'{"cmd":"sta')
                    key = "half_request"
                else:
                    key = self._status()
                self.counts[key] += 1
            except (OSError, ValueError) as e:
                n = type(e).__name__
                self.errors[n] = self.errors.get(n, 0) + 1
            self.stop_event.wait(1.0 / self.rate)

    def result(self):
        ms = [x * 1000 for x in self.lat]
        return dict(self.counts, errors=self.errors, status_ms_p50=pct(ms, 50), status_ms_p99=pct(ms, 99),
                    status_ms_max=max(ms) if ms else None, status_answer_bytes=self.answer_bytes)


class NonReaders(Part):
    """`n` control clients at a time that send requests and never read: half send one `status`,
    half 40 of them (more answer bytes than acmed queues for one client: it stops reading theirs).
    Each is held `hold` s (longer than acmed's 60 s idle timeout), then closed; at that point we
    look whether acmed had already closed it."""

    def __init__(self, path, n, hold, seed):
        super().__init__("nonreaders")
        self.path, self.n, self.hold = path, n, hold
        self.rng = random.Random(seed)
        self.opened = self.closed_by_acmed = self.still_open = self.errors = 0
        self.conns = []                # [socket, opened at]

    def _open(self):
        try:
            s = _unix(self.path)
            s.setblocking(False)
            reqs = 1 if self.rng.random() < 0.5 else 40
            data = b'{"cmd":"status"}\n' * reqs
            try:
                s.send(data)
            except BlockingIOError:
                pass
            self.conns.append([s, time.monotonic()])
            self.opened += 1
        except OSError:
            self.errors += 1

    def _close(self, s):
        eof = False
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    eof = True
                    break
        except BlockingIOError:
            pass
        except OSError:
            eof = True
        if eof:
            self.closed_by_acmed += 1
        else:
            self.still_open += 1
        s.close()

    def run(self):
        while not self.stop_event.is_set():
            now = time.monotonic()
            for c in [c for c in self.conns if now - c[1] >= self.hold]:
                self.conns.remove(c)
                self._close(c[0])
            if len(self.conns) < self.n:
                self._open()
            self.stop_event.wait(self.hold / max(1, self.n) / 2)
        for s, _ in self.conns:
            s.close()

    def result(self):
        return {"at_a_time": self.n, "hold_s": self.hold, "opened": self.opened,
                "closed_by_acmed_before_we_did": self.closed_by_acmed, "still_open_at_our_close": self.still_open,
                "connect_errors": self.errors}


def main(spec):
    seed = spec.get("seed", 1)
    parts = [SlowClients(spec["http_port"], spec["slow"]),
             Flood(spec["http_port"], spec["flood_rate"], spec["flood_threads"], seed),
             ControlChurn(spec["control"], spec["ctl_rate"], seed + 1),
             NonReaders(spec["control"], spec["nonreaders"], spec.get("nonreader_hold", 75), seed + 2)]
    for p in parts:
        p.start()
    sys.stdin.read()           # soak.py closes our stdin to stop us
    for p in parts:
        p.stop()
    for p in parts:
        p.join(30)
    out = {p.name: p.result() for p in parts}
    out["load_cpu_s"] = sum(os.times()[:2])
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
