# The http-01 listener under a slow-connection attack, with a low descriptor limit: a renewal still succeeds.
"""The hardening issue's probe, replayed against the real daemon and Pebble:

hundreds of connections to port 80 from a few addresses, each sending one byte a second and
opened again as soon as acmed closes it, while acmed runs with 128 (soft) / 256 (hard) file
descriptors. Then: `acmed renew --force` gets a new certificate from Pebble (whose validator
connects from 127.0.0.1, an address the attack does not use), `acmed status` and `acmed reload`
answer, the log says "connection limit reached" once for the whole attack, never "too many open
files", and no connection outlives the deadline (counted in bytes sent at one a second, never
timed).
"""
import json
import os
import resource
import select
import socket
import threading

import pytest

import pebble_env as pe

pytestmark = [pytest.mark.acmed, pytest.mark.slow]

ATTACKERS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
PER_ADDRESS = 150               # the listener admits 16 per address
PER_ADDRESS_CAP = 16
DEADLINE_S = 10
MIN_ROUNDS = 15                 # one byte per round, a round at least a second
ISSUE_TIMEOUT = 90
REQUEST = b"GET /.well-known/acme-challenge/slowloris HTTP/1.1\r\nHost: example.org\r\n" + b"X: y\r\n" * 100


class SlowLoris(threading.Thread):
    """Keeps PER_ADDRESS connections open from each address, one byte a second on each, and opens
    a new one whenever acmed closes one. Counts what it sees: connections made and refused at
    connect(), closures (with how many bytes the connection had taken), rounds."""

    def __init__(self, port, addrs, per_address):
        super().__init__(daemon=True)
        self.port, self.addrs, self.per_address = port, addrs, per_address
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.rounds = 0
        self.opened = 0
        self.connect_errors = 0
        self.closed_bytes = []          # bytes sent on each connection acmed closed
        self.conns = {}                 # socket -> [addr, bytes sent]

    def _open(self, addr):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((addr, 0))
            s.settimeout(2.0)
            s.connect(("127.0.0.1", self.port))
            s.setblocking(False)
        except OSError:
            s.close()
            with self.lock:
                self.connect_errors += 1
            return
        self.conns[s] = [addr, 0]
        with self.lock:
            self.opened += 1

    def _reap(self):
        """Connections acmed closed: EOF or reset."""
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
                continue        # an answer would be a 4xx; the close follows
            with self.lock:
                self.closed_bytes.append(self.conns[s][1])
            del self.conns[s]
            s.close()

    def run(self):
        while not self.stop_event.is_set():
            per = {a: 0 for a in self.addrs}
            for addr, _ in self.conns.values():
                per[addr] += 1
            for addr in self.addrs:
                for _ in range(self.per_address - per[addr]):
                    self._open(addr)
            self._reap()
            for s, st in list(self.conns.items()):
                if st[1] >= len(REQUEST):
                    continue
                try:
                    s.send(REQUEST[st[1]:st[1] + 1])
                    st[1] += 1
                except OSError:
                    pass        # reset: _reap sees it next round
            with self.lock:
                self.rounds += 1
            self.stop_event.wait(1.0)
        for s in self.conns:
            s.close()

    def stop(self):
        self.stop_event.set()
        self.join(30)

    def snapshot(self):
        with self.lock:
            return self.rounds, self.opened, list(self.closed_bytes)


def _raise_own_fd_limit(want=4096):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _low_limit_wrapper(acmed):
    """acmed started with 128 descriptors (soft) and 256 (hard), as a sparse service might be."""
    path = acmed.ws / "acmed-lowfd.sh"
    path.write_text(f'#!/bin/bash\nulimit -Sn 128 && ulimit -Hn 256 && exec "{acmed.bin}" "$@"\n')
    os.chmod(path, 0o755)
    return path


def _cli(acmed, *args, timeout=60):
    r = pe.run_acmed(list(args), timeout=timeout, config=acmed.config, acmed_bin=acmed.bin)
    acmed.runs.append((args, r))
    (acmed.ws / f"acmed-run{len(acmed.runs)}.stderr").write_text(r.stderr)
    return r


def test_renewal_and_status_under_slow_connection_attack(acmed, pebble, proxy):
    if _raise_own_fd_limit() < len(ATTACKERS) * PER_ADDRESS + 200:
        pytest.skip("this test process cannot hold the attack's connections")
    c = {"name": "loris", "key_type": "ecdsa-p256", "domains": ["loris.attack.example.com"]}
    acmed.write_config([c])
    acmed.bin = _low_limit_wrapper(acmed)
    d = acmed.spawn("run")
    out = acmed.outputs["loris"]
    pe.wait_until(lambda: (out / "fullchain.pem").exists() or not d.alive(), ISSUE_TIMEOUT,
                  what="the first certificate")
    assert d.alive(), d.stderr[-3000:]
    first = (out / "cert.pem").read_bytes()
    # the soft limit was raised to the hard one, and the listener keeps a reserve below it
    assert "to stay within the limit of 256 file descriptors" in d.stderr, d.stderr[-3000:]

    loris = SlowLoris(pebble.http01_port, ATTACKERS, PER_ADDRESS)
    loris.start()
    try:
        d.wait_for_stderr(r"connection limit reached", timeout=30)
        pe.wait_until(lambda: loris.snapshot()[0] >= 3, 60, what="three rounds of the attack")

        # a renewal against Pebble while the attack goes on
        mark = proxy.log.mark()
        r = _cli(acmed, "renew", "--force", "loris")
        assert r.rc == 0, r.describe()
        pe.wait_until(lambda: (out / "cert.pem").read_bytes() != first or not d.alive(), ISSUE_TIMEOUT,
                      what="the renewed certificate")
        assert d.alive(), d.stderr[-3000:]
        pe.verify_output_dir(out, c["domains"], c["key_type"], pebble.root_path)
        # one order created (a newOrder resent after Pebble's 5 % badNonce is the same order)
        assert proxy.log.count(kind="newOrder", method="POST", status=201, since=mark) == 1, \
            proxy.log.by_kind(since=mark)

        # the control socket answers
        r = _cli(acmed, "status", "--json")
        assert r.rc == 0, r.describe()
        st = json.loads(r.stdout)
        assert [x["name"] for x in st["certificates"]] == ["loris"]
        r = _cli(acmed, "reload")
        assert r.rc == 0, r.describe()
        assert "reloaded" in r.stdout, r.stdout

        # long enough for admitted connections to meet their deadline, counted in rounds
        pe.wait_until(lambda: loris.snapshot()[0] >= MIN_ROUNDS, 120, what=f"{MIN_ROUNDS} rounds of the attack")
    finally:
        loris.stop()
    rounds, opened, closed_bytes = loris.snapshot()

    # acmed refused most of them at once, closed the admitted ones at their deadline, and no
    # connection lived much more than DEADLINE_S rounds of one byte each
    assert opened > len(ATTACKERS) * PER_ADDRESS, (opened, rounds)
    refused = sum(1 for b in closed_bytes if b <= 1)        # closed before its first byte went out
    timed_out = sum(1 for b in closed_bytes if b >= 2)      # admitted, then closed: the deadline
    assert refused >= len(ATTACKERS) * (PER_ADDRESS - PER_ADDRESS_CAP), (refused, len(closed_bytes))
    assert timed_out >= len(ATTACKERS) * PER_ADDRESS_CAP, (timed_out, sorted(closed_bytes)[-20:])
    assert max(closed_bytes) <= DEADLINE_S + 2, sorted(closed_bytes)[-20:]

    # the attack over, its episode ends (after 10 s without a refusal) and says so
    d.wait_for_stderr(r"connection limit no longer reached", timeout=60)
    assert d.alive(), d.stderr[-3000:]
    assert d.stop() == 0
    log = d.stderr
    # one line when an episode begins, one when it ends: one episode for the whole attack (a
    # second only if the attacker stalled for 10 s on a loaded machine), not a line per refusal
    starts, ends = log.count("connection limit reached"), log.count("connection limit no longer reached")
    assert starts == ends and 1 <= starts <= 2, log[-3000:]
    assert "most open from 127.0.0." in log
    assert "too many open files" not in log.lower(), log[-3000:]
    assert sum(1 for line in log.splitlines() if "http-01" in line) <= 2 * starts + 2, log[-3000:]
    assert len(log.splitlines()) < 100, f"{len(log.splitlines())} log lines"
