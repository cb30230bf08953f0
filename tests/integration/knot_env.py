# Test environment for acmed's dns-01: knotd servers on loopback port 53 (TSIG, held-back secondary, counters), unbound in front of them.
"""Shared by the dns-01 integration tests and the benchmark, used like pebble_env.py.

Knot        one knotd (Debian's knot 3.2) in a workdir: its zones (SOA, NS and their A records
            written from the given records), a TSIG key allowed to UPDATE them, mod-stats counters,
            a log at info level.  It listens on port 53 of its own loopback address (127.0.53.x):
            acmed's propagation check asks each name server of a zone on port 53 of the address
            the zone gives it, so every server of a test zone has its own address.
            Knot(..., primary=p) is a secondary of p that never refreshes by itself (no NOTIFY, SOA
            refresh of a day): it serves the old zone until the test calls refresh().
Unbound     the recursive resolver that Pebble's -dnsserver and acmed's dns.resolvers point at: a
            real unbound (Debian's) whose stub zones are the test zones, each asked at its knot; it
            follows a CNAME chain across zones (knot only follows a CNAME inside the zone, and Go's
            resolver, Pebble's, does not follow one at all: see test_harness_knot.py) and caches
            nothing of them.
Resolver    a Python stand-in for the same, kept for tests/bench/bench_dns01.py only (the tests use
            Unbound and fail without it).
dig()       one query (kdig +json), knsupdate() one UPDATE script (knsupdate), new_tsig() a key.

Port 53 needs root (CI runs as root): skip_reason() says why a test cannot run.  Everything listens
on loopback only; every knotd and unbound started here is killed at the latest when the Python
process exits.
"""

import atexit
import base64
import binascii
import collections
import contextlib
import fcntl
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import pebble_env as pe

KNOTD_BIN = shutil.which("knotd") or "/usr/sbin/knotd"
KNOTC_BIN = shutil.which("knotc") or "/usr/sbin/knotc"
KDIG_BIN = shutil.which("kdig") or "/usr/bin/kdig"
KNSUPDATE_BIN = shutil.which("knsupdate") or "/usr/bin/knsupdate"

ADDRESS_PREFIX = "127.0.53."         # Knot's addresses: 127.0.53.1 ... 127.0.53.254
LOCK_DIR = Path("/tmp/acmed-knot-addresses")   # <address>.lock: one test process per address at a time
SOA_REFRESH = 86400                 # a secondary asks its primary once a day: only refresh() moves it
DEFAULT_TTL = 60

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
          6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 16: "BADSIG"}
RRTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33,
           "DNAME": 39, "OPT": 41, "DS": 43, "CAA": 257, "ANY": 255}
RRTYPE_NAMES = {v: k for k, v in RRTYPES.items()}


def knot_installed():
    return all(os.access(b, os.X_OK) for b in (KNOTD_BIN, KNOTC_BIN, KDIG_BIN, KNSUPDATE_BIN))


def skip_reason(port=53):
    """Why knot tests cannot run here (None: they can)."""
    if not knot_installed():
        return "knot / knot-dnsutils not installed (Debian packages 'knot', 'knot-dnsutils': tests/deps.sh)"
    if port < 1024 and os.geteuid() != 0:
        return f"knotd must listen on port {port} of loopback addresses: needs root (CI runs the tests as root)"
    return None


def fqdn(name):
    """'a.example.test' -> 'a.example.test.' (lower case)."""
    name = name.lower()
    return name if name.endswith(".") else name + "."


def _in_zone(name, zone):
    name, zone = fqdn(name), fqdn(zone)
    return name == zone or name.endswith("." + zone)


def zone_of(name, zones):
    """The longest of `zones` that `name` is in, or None."""
    best = None
    for z in zones:
        if _in_zone(name, z) and (best is None or len(fqdn(z)) > len(fqdn(best))):
            best = z
    return best


# ---------------------------------------------------------------- TSIG

class Tsig(collections.namedtuple("Tsig", "name algorithm secret")):
    """A TSIG key: name ("acmed-test-key"), algorithm ("hmac-sha256"), secret (base64)."""

    @property
    def kdig(self):
        """The -y argument of kdig / knsupdate: 'alg:name:secret'."""
        return f"{self.algorithm}:{self.name}:{self.secret}"

    def write_secret(self, path, mode=0o600):
        """The secret alone (base64 and a newline) in a file of this mode, as acmed's rfc2136 provider reads it."""
        pe._write_private(path, (self.secret + "\n").encode())
        os.chmod(path, mode)
        return Path(path)


def new_tsig(name="acmed-test-key", algorithm="hmac-sha256", size=32):
    return Tsig(name, algorithm, base64.b64encode(secrets.token_bytes(size)).decode())


def _as_tsig(t):
    return t if t is None or isinstance(t, Tsig) else Tsig(*t)


# ---------------------------------------------------------------- queries and updates (Knot's own tools)

class RR(collections.namedtuple("RR", "name ttl type data")):
    """One record of an answer: owner (absolute, lower case), ttl, type name, rdata in presentation
    format (kdig's).  For TXT, strings is the list of its character-strings, value their concatenation."""

    strings = None

    @property
    def value(self):
        return "".join(self.strings) if self.strings is not None else self.data


def _txt_strings(hexdata):
    raw = binascii.unhexlify(hexdata)
    out, i = [], 0
    while i < len(raw):
        n = raw[i]
        out.append(raw[i + 1:i + 1 + n].decode("utf-8", errors="replace"))
        i += 1 + n
    return out


def _rrs(items):
    out = []
    for j in items or []:
        tname = j.get("TYPEname") or RRTYPE_NAMES.get(j.get("TYPE"), str(j.get("TYPE")))
        data = j.get(f"rdata{tname}", j.get("RDATAHEX", ""))
        rr = RR(j["NAME"].lower(), j.get("TTL"), tname, data)
        if tname == "TXT":
            rr.strings = _txt_strings(j.get("RDATAHEX", ""))
        out.append(rr)
    return out


class Answer:
    """What a server answered: rcode ("NOERROR", "NXDOMAIN", ...), flags aa/tc/ra, and the sections
    answer/authority/additional (lists of RR).  rcode is None when nothing answered (error says why)."""

    def __init__(self, raw=None, error=None):
        self.raw = raw or {}
        self.error = error
        code = self.raw.get("RCODE")
        self.rcode = None if raw is None else RCODES.get(code, str(code))
        self.aa = bool(self.raw.get("AA"))
        self.tc = bool(self.raw.get("TC"))
        self.ra = bool(self.raw.get("RA"))
        self.answer = _rrs(self.raw.get("answerRRs"))
        self.authority = _rrs(self.raw.get("authorityRRs"))
        self.additional = _rrs(self.raw.get("additionalRRs"))

    def records(self, rtype, name=None):
        return [r for r in self.answer if r.type == rtype and (name is None or r.name == fqdn(name))]

    def txt(self):
        """The TXT values in the answer section (a CNAME chain the server followed included), sorted."""
        return sorted(r.value for r in self.answer if r.type == "TXT")

    def __repr__(self):
        if self.rcode is None:
            return f"Answer(no answer: {self.error})"
        return f"Answer({self.rcode} aa={self.aa} answer={[tuple(r) for r in self.answer]})"


def dig(server, port, name, rtype="A", tcp=False, tsig=None, timeout=2, tries=2, recurse=False):
    """One query with kdig to server:port, recursion wanted only when `recurse` (a resolver answers
    a question without RD from its cache alone); an Answer (rcode None: no answer)."""
    argv = [KDIG_BIN, f"@{server}", "-p", str(port), "+json", "+recurse" if recurse else "+norecurse",
            f"+timeout={timeout}",
            f"+retry={max(0, tries - 1)}", "-t", rtype, "-q", fqdn(name)]
    if tcp:
        argv.append("+tcp")
    if tsig is not None:
        argv += ["-y", _as_tsig(tsig).kdig]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * tries + 10)
    out = p.stdout.strip()
    if not out.startswith("{"):
        return Answer(error=(p.stderr + p.stdout).strip() or f"kdig exited with {p.returncode}")
    try:
        return Answer(json.loads(out))
    except ValueError as e:
        return Answer(error=f"kdig printed no JSON ({e}): {out[:300]}")


class UpdateResult(collections.namedtuple("UpdateResult", "rc stdout stderr")):
    """knsupdate's exit status and output; rcode is the server's answer as knsupdate prints it (a
    TSIG error in place of the header's NOTAUTH: BADSIG, BADKEY), None when nothing answered."""

    @property
    def ok(self):
        return self.rc == 0

    @property
    def rcode(self):
        m = re.search(r"opcode: UPDATE; status: ([A-Z]+)", self.stdout) or \
            re.search(r"update failed with error '([A-Z]+)'", self.stderr)
        if m:
            return m.group(1)
        return "NOERROR" if self.rc == 0 else None


def knsupdate(server, port, commands, tsig=None, tcp=True, timeout=15):
    """Send one UPDATE with knsupdate: `commands` are its command lines ("zone example.test.",
    "add x.example.test. 60 TXT \"v\"", ...); "server", the key and a final "send" are added."""
    lines = [f"server {server} {port}"]
    t = _as_tsig(tsig)
    if t is not None:
        lines.append(f"key {t.algorithm}:{t.name} {t.secret}")
    lines += list(commands)
    if not any(c.strip() == "send" for c in commands):
        lines.append("send")
    lines.append("answer")
    argv = [KNSUPDATE_BIN, "-t", str(timeout)]
    if tcp:
        argv.append("-v")
    p = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=timeout + 15)
    return UpdateResult(p.returncode, p.stdout, p.stderr)


# ---------------------------------------------------------------- loopback addresses for port 53

_addr_lock = threading.Lock()
_addrs_held = {}        # address -> lock file object (held by this process)


def _address_free(address, port):
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((address, port))
            except OSError:
                return False
    return True


def _try_hold(address, port):
    """Take `address` for this process (a lock file shared with other test processes) if nothing
    listens on address:port; True when taken."""
    if address in _addrs_held:
        return False
    LOCK_DIR.mkdir(mode=0o755, exist_ok=True)
    f = open(LOCK_DIR / f"{address}.lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return False
    if not _address_free(address, port):
        f.close()
        return False
    _addrs_held[address] = f
    return True


def reserve_address(port=53, address=None):
    """A loopback address (127.0.53.x) where nothing listens on `port`, held until release_address()."""
    with _addr_lock:
        if address is not None:
            if not _try_hold(address, port):
                raise RuntimeError(f"{address}@{port} is taken (something listens there, or another test holds it)")
            return address
        candidates = list(range(1, 255))
        random.shuffle(candidates)       # concurrent test runs start at different places
        for i in candidates:
            a = f"{ADDRESS_PREFIX}{i}"
            if _try_hold(a, port):
                return a
    raise RuntimeError(f"no free address {ADDRESS_PREFIX}x with port {port} free")


def release_address(address):
    with _addr_lock:
        f = _addrs_held.pop(address, None)
        if f is not None:
            f.close()


# ---------------------------------------------------------------- knotd

_live = set()           # every Knot / Unbound with a running process: killed at exit whatever happened


@atexit.register
def _kill_all():
    for k in list(_live):
        with contextlib.suppress(Exception):
            k.kill()


class KnotError(RuntimeError):
    pass


class Knot:
    """One knotd in `workdir` (config, zone files, journal, control socket, log).

    address:      its loopback address (None: a free 127.0.53.x); port: 53 by default
    zones:        {"example.test": ["www 60 A 127.0.0.1", "txt TXT \"hello\"", ...]}: zone-file
                  lines relative to the zone; the SOA, NS records (ns1 = this server, ns2... = the
                  secondaries reserved) and their A records are added
    tsig:         (name, algorithm, secret_b64) or a Tsig: UPDATEs signed by it are allowed (all
                  record types, all names of the zones); None: no UPDATE is allowed
    primary:      a Knot: this one is its secondary for `zones` (default: all of the primary's);
                  it takes one of the addresses the primary reserved with `secondaries`
    secondaries:  how many secondaries this primary will have (their addresses go into the NS sets
                  now and into the transfer ACL; NOTIFY is never sent to them)
    start:        start knotd now (else call start())
    log_level:    of its log (knot.log in workdir): "info" shows loads, DDNS, transfers, control
                  commands; refused UPDATEs (TSIG, ACL) only show at "debug"
    update_names: None, or the only names the TSIG key may update (update-owner: name, equal):
                  an UPDATE touching another name is refused whole
    extra_ns:     more NS names (ns<N+1>... after the secondaries'), all at this server's address: a
                  zone with many name servers

    The zones are never written back to their files (zonefile-sync: -1): every change is in the
    journal, so a restarted knotd serves them still.

    What tests use: hostport ("127.0.53.x:53"); query(name, type), txt(name), serial(zone),
    wait_txt(), wait_serial(); set_txt(), add_record(), remove_record() (knotc transactions;
    transaction(zone) held open holds UPDATEs back too: knot answers them once it closes);
    update(commands) (knsupdate signed by its key); stats(); log_text(), wait_log(rx); refresh(zone),
    retransfer(zone) on a secondary; stop(), kill() (SIGKILL), start() again (same address, journal).

    Refused UPDATEs: header NOTAUTH with TSIG error BADSIG (the key's name, another secret) or
    BADKEY (a name it does not know, or another algorithm); unsigned: NOTAUTH (no TSIG); a zone it
    does not serve: NOTAUTH.  Nothing of it is logged at info level.
    """

    def __init__(self, workdir, address=None, port=53, zones=None, tsig=None, primary=None, secondaries=0,
                 start=True, timeout=30.0, log_level="info", update_names=None, extra_ns=0):
        reason = skip_reason(port)
        if reason:
            raise KnotError(reason)
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.tsig = _as_tsig(tsig)
        self.primary = primary
        self.update_names = update_names
        self.extra_ns = extra_ns
        self.timeout = timeout
        self.log_level = log_level
        self.proc = None
        self._txn = threading.Lock()
        self._stdout = None
        if primary is not None:
            if not primary.reserved or (address is not None and address not in primary.reserved):
                raise KnotError("a secondary takes an address its primary reserved: Knot(..., secondaries=N) "
                                f"reserved {primary.reserved}")
            self.address = address or primary.reserved[0]
            self.zones = {fqdn(z): [] for z in (zones or primary.zones)}
            unknown = [z for z in self.zones if z not in primary.zones]
            if unknown:
                raise KnotError(f"the primary serves no zone {unknown}")
            primary.reserved.remove(self.address)
            primary._held.remove(self.address)      # this secondary releases it when it is done
            self.reserved = []
            self.nameservers = list(primary.nameservers)
            self._held = [self.address]
        else:
            self._held = [reserve_address(port, address)]
            try:
                for _ in range(secondaries):
                    self._held.append(reserve_address(port))
            except BaseException:
                for a in self._held:
                    release_address(a)
                raise
            self.address = self._held[0]
            self.reserved = self._held[1:]
            self.secondary_addresses = list(self.reserved)
            self.nameservers = list(self._held)
            self.zones = {fqdn(z): list(recs) for z, recs in (zones or {}).items()}
        self.run_dir = self.dir / "run"
        self.db_dir = self.dir / "db"
        self.zone_dir = self.dir / "zones"
        for d in (self.run_dir, self.db_dir, self.zone_dir):
            d.mkdir(exist_ok=True)
        self.socket_path = self.run_dir / "knot.sock"
        self.log_path = self.dir / "knot.log"
        self.config_path = self.dir / "knot.conf"
        try:
            self._write_zones()
            self._write_config()
        except BaseException:
            self._after_exit()
            raise
        if start:
            self.start()           # on failure it kills knotd and releases the addresses

    # -------------------------------------------------------- files

    @property
    def hostport(self):
        """"127.0.53.1:53" (Pebble's -dnsserver, acmed's resolvers)."""
        return f"{self.address}:{self.port}"

    @property
    def is_secondary(self):
        return self.primary is not None

    def ns_names(self, zone):
        """The zone's name servers: [(ns1.<zone>., address), ...], this primary first (extra_ns more
        names at its own address at the end)."""
        z = fqdn(zone)
        addrs = list(self.nameservers) + [self.address] * self.extra_ns
        return [(f"ns{i + 1}.{z}", a) for i, a in enumerate(addrs)]

    def _write_zones(self):
        if self.is_secondary:
            return
        for zone, records in self.zones.items():
            lines = [f"$ORIGIN {zone}", f"$TTL {DEFAULT_TTL}",
                     f"@ SOA ns1.{zone} hostmaster.{zone} 1 {SOA_REFRESH} 3600 604800 {DEFAULT_TTL}"]
            lines += [f"@ NS {name}" for name, _ in self.ns_names(zone)]
            lines += [f"{name} A {addr}" for name, addr in self.ns_names(zone)]
            lines += list(records)
            (self.zone_dir / f"{zone[:-1]}.zone").write_text("\n".join(lines) + "\n")

    def _write_config(self):
        q = json.dumps
        c = ["server:",
             f"    rundir: {q(str(self.run_dir))}",
             f"    listen: {self.address}@{self.port}",
             "    udp-workers: 2",
             "    tcp-workers: 2",
             "    background-workers: 2",
             "control:",
             f"    listen: {q(str(self.socket_path))}",
             "log:",
             f"  - target: {q(str(self.log_path))}",
             f"    any: {self.log_level}",
             "database:",
             f"    storage: {q(str(self.db_dir))}",
             "mod-stats:",
             "  - id: counters",
             "    request-protocol: on",
             "    server-operation: on",
             "    response-code: on",
             "    query-type: on"]
        if self.tsig is not None:
            c += ["key:", f"  - id: {self.tsig.name}", f"    algorithm: {self.tsig.algorithm}",
                  f"    secret: {self.tsig.secret}"]
        if self.is_secondary:
            c += ["remote:", "  - id: primary", f"    address: {self.primary.address}@{self.primary.port}",
                  f"    via: {self.address}"]
        acls = []
        if self.tsig is not None:
            acl = ["  - id: update", f"    key: {self.tsig.name}", "    action: update"]
            if self.update_names is not None:
                # a policy narrowed to names (as BIND's update-policy ... name ...): an UPDATE that
                # touches any other name is refused whole
                acl += ["    update-owner: name", "    update-owner-match: equal",
                        f"    update-owner-name: [{', '.join(fqdn(n) for n in self.update_names)}]"]
            acls.append(acl)
        if not self.is_secondary and self.secondary_addresses:
            acls.append(["  - id: transfer", f"    address: [{', '.join(self.secondary_addresses)}]",
                         "    action: transfer"])
        if acls:
            c.append("acl:")
            for a in acls:
                c += a
        c += ["template:",
              "  - id: default",
              f"    storage: {q(str(self.zone_dir))}",
              '    file: "%s.zone"',
              "    zonefile-sync: -1",
              "    zonefile-load: whole",
              "    journal-content: " + ("all" if self.is_secondary else "changes"),
              "    semantic-checks: off",
              "    serial-policy: increment",
              "    global-module: mod-stats/counters"]
        if acls:
            c.append(f"    acl: [{', '.join(a[0].split()[-1] for a in acls)}]")
        if self.is_secondary:
            c += ["    master: primary",
                  f"    refresh-min-interval: {SOA_REFRESH}",
                  f"    retry-min-interval: {SOA_REFRESH}"]
        c.append("zone:")
        c += [f"  - domain: {z}" for z in self.zones]
        self.config_path.write_text("\n".join(c) + "\n")

    # -------------------------------------------------------- process

    def start(self, timeout=None):
        """Start knotd (again: it keeps its journal) and wait until it serves every zone."""
        timeout = timeout or self.timeout
        if self.proc is not None and self.proc.poll() is None:
            return self
        for a in self._held:
            if a not in _addrs_held:
                reserve_address(self.port, a)
        self._stdout = open(self.dir / "knotd.out", "ab")
        self.proc = subprocess.Popen([KNOTD_BIN, "-c", str(self.config_path)], stdout=self._stdout,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(self.dir),
                                     start_new_session=True)
        _live.add(self)
        try:
            for zone in self.zones:
                self._wait_zone(zone, timeout)
        except BaseException:
            self.kill()
            raise
        # an unbound in front of this address forgets what it learnt while knotd was stopped
        for u in [x for x in list(_live) if isinstance(x, Unbound)]:
            if any(addr == self.address for addr, _ in u.routes.values()):
                u.forget(self.address)
        return self

    def _wait_zone(self, zone, timeout):
        """Until it answers a SOA query for zone with the SOA, authoritatively (polled over UDP with
        a short timeout: a query sent while knotd starts may get no answer at all)."""
        last = [None]

        def served():
            if self.proc.poll() is not None:
                raise KnotError(f"knotd exited with {self.proc.returncode}; {self.log_path}:\n"
                                + self.log_text()[-3000:]
                                + (self.dir / "knotd.out").read_text(errors="replace")[-2000:])
            try:
                r = _ask(self.address, self.port, zone, RRTYPES["SOA"], timeout=0.1, tries=1)
            except (OSError, TimeoutError, ValueError) as e:
                last[0] = e
                return False
            last[0] = f"rcode {RCODES.get(r['flags'] & 15)}, flags {r['flags']:#06x}, answer {r['an']}"
            return (r["flags"] & 0x040F) == 0x0400 and any(x[0] == fqdn(zone) and x[1] == 6 for x in r["an"])
        try:
            pe.wait_until(served, timeout, interval=0.02, what=f"knotd at {self.hostport} serving {zone}")
        except TimeoutError as e:
            raise KnotError(f"{e}: last answer {last[0]}; {self.log_path}:\n{self.log_text()[-3000:]}") from None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        """Stop knotd (SIGTERM, SIGKILL after timeout) and release its addresses."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._after_exit()
        return self.proc.returncode if self.proc is not None else None

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._after_exit()

    def _after_exit(self):
        _live.discard(self)
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = None
        for a in self._held:
            release_address(a)

    def __enter__(self):
        return self if self.alive() else self.start()

    def __exit__(self, *exc):
        self.stop()

    # -------------------------------------------------------- what it serves

    def query(self, name, rtype="A", tcp=False, tsig=None):
        """Ask this server (kdig): an Answer."""
        return dig(self.address, self.port, name, rtype, tcp=tcp, tsig=tsig)

    def txt(self, name):
        """The TXT values it serves at name (sorted; [] for none)."""
        a = self.query(name, "TXT")
        if a.rcode not in ("NOERROR", "NXDOMAIN"):
            raise KnotError(f"{self.hostport} answered {a} to TXT {name}")
        return a.txt()

    def serial(self, zone):
        a = self.query(zone, "SOA")
        soa = a.records("SOA", zone)
        if not soa:
            raise KnotError(f"{self.hostport}: no SOA for {zone}: {a}")
        return int(soa[0].data.split()[2])

    def wait_txt(self, name, values, timeout=30.0):
        """Until it serves exactly these TXT values at name."""
        want = sorted(values)
        return pe.wait_until(lambda: self.txt(name) == want or None, timeout, interval=0.05,
                             what=f"{self.hostport} serving TXT {want} at {name}")

    def wait_serial(self, zone, serial, timeout=30.0):
        return pe.wait_until(lambda: self.serial(zone) == serial or None, timeout, interval=0.05,
                             what=f"{self.hostport} serving {zone} at serial {serial}")

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, rx, timeout=30.0):
        """The first line of its log matching rx, once it is there."""
        rx = re.compile(rx)

        def seen():
            for line in self.log_text().splitlines():
                if rx.search(line):
                    return line
            return None
        return pe.wait_until(seen, timeout, interval=0.05, what=f"knot log line matching {rx.pattern!r}")

    # -------------------------------------------------------- counters

    def stats_raw(self):
        """`knotc stats`: {"mod-stats.server-operation[update]": 3, "server.zone-count": 2, ...}
        (knot leaves out the counters still at 0)."""
        out = self.knotc("stats")
        got = {}
        for line in out.splitlines():
            m = re.match(r"^(\S+) = (\d+)$", line.strip())
            if m:
                got[m.group(1)] = int(m.group(2))
        return got

    def stats(self):
        """Counters since knotd started: {"query": n, "update": n, "notify": n, "axfr": n, "ixfr": n,
        "invalid": n} (mod-stats server-operation: the messages it received, by opcode / kind) and
        {"udp4": n, "tcp4": n, ...} (request-protocol), "NOERROR", "REFUSED"... (response-code),
        "qtype:TXT"... (query-type), "request-bytes:update"... (the other groups, prefixed).
        "update" counts every UPDATE received, refused ones too.  response-code counts the answers
        knot gives at once (queries, refused UPDATEs; knot 3.2 files a NOTAUTH without TSIG under
        "BADKEY"), not those to accepted UPDATEs, sent once applied."""
        out = dict.fromkeys(("query", "update", "notify", "axfr", "ixfr", "invalid", "udp4", "tcp4"), 0)
        for k, v in self.stats_raw().items():
            m = re.match(r"^mod-stats\.([a-z-]+)\[([^\]]+)\]$", k)
            if not m:
                continue
            group, key = m.groups()
            if group == "query-type":
                key = f"qtype:{key}"
            elif group not in ("server-operation", "request-protocol", "response-code"):
                key = f"{group}:{key}"
            out[key] = out.get(key, 0) + v
        return out

    # -------------------------------------------------------- the zones through knotc

    def knotc(self, *args, check=True, timeout=30):
        p = subprocess.run([KNOTC_BIN, "-s", str(self.socket_path), "-t", "10"] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise KnotError(f"knotc {' '.join(map(str, args))}: {(p.stderr + p.stdout).strip()}")
        return p.stdout

    def zone(self, name):
        """The zone of this server that name is in (absolute)."""
        z = zone_of(name, self.zones)
        if z is None:
            raise KnotError(f"{name} is in no zone of {self.hostport} ({sorted(self.zones)})")
        return z

    @contextlib.contextmanager
    def transaction(self, zone):
        """knotc zone-begin ... zone-commit (zone-abort if the body fails); yields the zone."""
        zone = fqdn(zone)
        with self._txn:
            self.knotc("zone-begin", zone)
            try:
                yield zone
            except BaseException:
                self.knotc("zone-abort", zone, check=False)
                raise
            self.knotc("zone-commit", zone)

    @staticmethod
    def txt_rdata(value):
        """A TXT value as zone-file rdata: quoted, in strings of at most 255 bytes."""
        raw = value.encode()
        chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
        out = []
        for ch in chunks:
            s = "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else
                        ("\\" + chr(b) if b in (34, 92) else f"\\{b:03d}") for b in ch)
            out.append(f'"{s}"')
        return " ".join(out)

    def set_txt(self, name, values, ttl=DEFAULT_TTL):
        """Make the TXT RRset at name exactly `values` (none: no TXT there), in one new serial."""
        zone = self.zone(name)
        with self.transaction(zone):
            # zone-unset of what is not there would log an error: look first (in the transaction,
            # UPDATEs wait, so nothing changes in between)
            if self._has(zone, name, "TXT", self.knotc("zone-get", zone)):
                self.knotc("zone-unset", zone, fqdn(name), "TXT")
            for v in values:
                self.knotc("zone-set", zone, fqdn(name), ttl, "TXT", self.txt_rdata(v))

    @staticmethod
    def _has(zone, name, rtype, listing):
        """Whether a `knotc zone-get/zone-read ZONE` listing has records of rtype at name."""
        for line in listing.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[0] == f"[{fqdn(zone)}]" and parts[1].lower() == fqdn(name) \
                    and parts[3] == rtype:
                return True
        return False

    def add_record(self, zone, line):
        """Add one record: "owner [ttl] TYPE rdata" (owner relative to zone, or absolute with a dot)."""
        owner, rest = line.split(None, 1)
        first, _, after = rest.partition(" ")
        ttl = DEFAULT_TTL
        if first.isdigit():
            ttl, rest = int(first), after
        rtype, _, rdata = rest.strip().partition(" ")
        with self.transaction(zone) as z:
            self.knotc("zone-set", z, owner, ttl, rtype, rdata.strip())

    def remove_record(self, zone, owner, rtype=None, rdata=None):
        """Remove the records at owner: all of them, those of rtype, or the one of rtype with rdata."""
        args = [owner] + ([rtype] if rtype else []) + ([rdata] if rtype and rdata is not None else [])
        with self.transaction(zone) as z:
            self.knotc("zone-unset", z, *args)

    def records(self, zone):
        """`knotc zone-read`: the zone as this server holds it, one record a line."""
        return self.knotc("zone-read", fqdn(zone))

    # -------------------------------------------------------- secondary

    def refresh(self, zone=None, timeout=30.0):
        """Secondary: ask the primary now (knotc zone-refresh) and wait until this server serves the
        primary's current serial of the zone (every zone when None); returns {zone: serial}."""
        if not self.is_secondary:
            raise KnotError("refresh() is for a secondary")
        zones = [fqdn(zone)] if zone else list(self.zones)
        got = {}
        for z in zones:
            want = self.primary.serial(z)
            self.knotc("zone-refresh", z)
            self.wait_serial(z, want, timeout)
            got[z] = want
        return got

    def retransfer(self, zone, timeout=30.0):
        """Secondary: a full transfer now (knotc zone-retransfer), waited for like refresh()."""
        if not self.is_secondary:
            raise KnotError("retransfer() is for a secondary")
        want = self.primary.serial(zone)
        self.knotc("zone-retransfer", fqdn(zone))
        self.wait_serial(zone, want, timeout)
        return want

    def update(self, commands, tsig="own", tcp=True):
        """knsupdate to this server, signed by its own TSIG key unless tsig is given (None: unsigned)."""
        return knsupdate(self.address, self.port, commands, self.tsig if tsig == "own" else tsig, tcp=tcp)

    def __repr__(self):
        return f"Knot({self.hostport}{' secondary' if self.is_secondary else ''} {sorted(self.zones)})"


# ---------------------------------------------------------------- unbound: the recursive resolver in front of knot

UNBOUND_BIN = shutil.which("unbound") or "/usr/sbin/unbound"
UNBOUND_CONTROL_BIN = shutil.which("unbound-control") or "/usr/sbin/unbound-control"
UNBOUND_MISSING = ("unbound is not installed: the dns-01 tests resolve through a real recursive resolver "
                   "(Debian package 'unbound': apt-get install unbound, or tests/deps.sh)")
NO_ROOT = "192.0.2.1"       # TEST-NET-1: the root's only "server", never queried (do-not-query-address)

_QUERY_LINE = re.compile(r"\] unbound\[\d+:\d+\] info: ([0-9.]+|[0-9a-fA-F:]+) (\S*\.) (\S+) (IN|CH|HS|CLASS\d+)"
                         r"(?: ([A-Z]+|RCODE\d+) ([0-9.]+) ([01]) (\d+))?$")


def unbound_installed():
    return all(os.access(b, os.X_OK) for b in (UNBOUND_BIN, UNBOUND_CONTROL_BIN))


class UnboundError(RuntimeError):
    pass


class Unbound:
    """A real recursive resolver (Debian's unbound 1.17) on 127.0.0.1:<free port>, UDP and TCP, in
    front of the knot servers: what Pebble's -dnsserver and acmed's dns.resolvers point at.  Knot
    answers a CNAME into another zone with the CNAME alone (see test_harness_knot.py) and Pebble's
    Go resolver follows none: unbound follows the chain across the test zones, as a host's resolver
    or Let's Encrypt's would.

    servers:  Knot objects: each zone of theirs becomes a stub zone asked at that server's address
              (the first server given for a zone; add_zone() sets one too, knot or (address, port))
    cache:    True: it caches the test zones' answers, as a host's resolver does (below: it does not)
    workdir:  its config (unbound.conf), log (unbound.log: every question and reply), pid file and
              stdout; None: a temporary directory, removed by stop()

    Its config (_config()) makes it answer from knot every time: nothing inside the test zones is
    cached (stub-no-cache), so a TXT value changed in knot, or a record added where it answered
    NXDOMAIN a moment ago, is seen at once; no DNSSEC (module-config "iterator"); a question for a
    name outside the test zones is REFUSED, and a CNAME leading out of them SERVFAILs at once (the
    root is a server it may not ask): nothing leaves the loopback and nothing waits for the internet.
    A knotd stopped is what it is to any resolver: unbound keeps asking it, backing off, and answers
    SERVFAIL some seconds later, or not before a client's 2 s x 3 tries are over (which one depends on
    the round-trip times it measured before: after its readiness questions alone, no answer within
    6 s; after a few more, SERVFAIL at ~4.5 s).  Knot.start() makes it forget() that outage at once.

    What tests use: hostport ("127.0.0.1:port", for Pebble's -dnsserver and acmed's resolvers);
    query(name, type, tcp=) (kdig, recursion wanted: an Answer), txt(name); queries and asked(name,
    rtype): the questions it got, [(name, type)] in order, from its log (log-queries); replies(...):
    [(name, type, rcode, from_cache)] (log-replies); log_text(); forget(address), control(args)
    (unbound-control); add_zone(); start(), stop(), kill().  Every unbound started here is killed
    at the latest when the Python process exits."""

    READY_LABEL = "_unbound-ready"      # its own readiness questions: left out of queries

    def __init__(self, servers=(), workdir=None, port=None, timeout=30.0, cache=False):
        if not unbound_installed():
            raise UnboundError(UNBOUND_MISSING)
        self.routes = {}
        for k in servers:
            for z in k.zones:
                self.routes.setdefault(fqdn(z), (k.address, k.port))
        self._tmp = workdir is None
        self.dir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="acmed-unbound-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fixed_port = port
        self.port = port or pe.free_port()
        self.timeout = timeout
        self.cache = cache
        self.config_path = self.dir / "unbound.conf"
        self.log_path = self.dir / "unbound.log"
        self.out_path = self.dir / "unbound.out"
        self.control_path = self.dir / "unbound.ctl"
        self.proc = None
        self._out = None

    @property
    def hostport(self):
        return f"127.0.0.1:{self.port}"

    # -------------------------------------------------------- config

    def _config(self):
        q = json.dumps
        c = ["server:",
             f"    interface: 127.0.0.1@{self.port}",      # UDP and TCP
             "    do-ip6: no",
             "    so-reuseport: no",                        # a port someone else holds: bind fails, start() moves on
             "    num-threads: 1",
             '    username: ""',                            # no privilege drop, no chroot: runs as the test does
             '    chroot: ""',
             f"    directory: {q(str(self.dir))}",
             f"    pidfile: {q(str(self.dir / 'unbound.pid'))}",
             f"    logfile: {q(str(self.log_path))}",
             "    use-syslog: no",
             "    verbosity: 1",
             "    log-queries: yes",                        # queries / asked()
             "    log-replies: yes",                        # replies(): rcode, from cache
             "    access-control: 127.0.0.0/8 allow",
             # knot is on 127.0.53.x: unbound refuses to send queries to 127.0.0.0/8 unless told
             "    do-not-query-localhost: no",
             # its outgoing UDP ports stay in the kernel's ephemeral range, where pebble_env.free_port()
             # never hands out a listener's port
             f"    outgoing-port-avoid: 0-{pe._ephemeral_low() - 1}",
             '    module-config: "iterator"',               # no DNSSEC validation: the test zones are unsigned
             # knot sees exactly the question asked (not x.zone A first), one query per question and zone
             "    qname-minimisation: no",
             # nothing is served old: no stale answers, no prefetch (the stub zones are not cached at all)
             "    serve-expired: no",
             "    prefetch: no",
             # .test is one of unbound's default local zones (RFC 6761: NXDOMAIN for all of it)
             '    local-zone: "test." nodefault',
             # a question for any name outside the test zones: REFUSED at once ...
             '    local-zone: "." refuse',
             # ... the stub zones excepted, resolved normally
             ] + [f"    local-zone: {q(z)} transparent" for z in sorted(self.routes)] + \
            [f"    domain-insecure: {q(z)}" for z in sorted(self.routes)] + \
            [  # local zones only screen clients' questions, not the CNAME targets it chases: the
               # root's only server is one it may not ask, so a chain leaving the test zones SERVFAILs
               # at once instead of waiting for the internet's root servers
             f"    do-not-query-address: {NO_ROOT}",
             "stub-zone:",
             '    name: "."',
             f"    stub-addr: {NO_ROOT}"]
        for z, (addr, port) in sorted(self.routes.items()):
            c += ["stub-zone:",
                  f"    name: {q(z)}",
                  f"    stub-addr: {addr}@{port}",
                  "    stub-first: no",         # knot or SERVFAIL, never the root
                  # every question reaches knot: no stale TXT, no stale NXDOMAIN; cache=True: a
                  # resolver as hosts have, keeping answers (a negative one for the SOA's TTL)
                  f"    stub-no-cache: {'no' if self.cache else 'yes'}"]
        # unbound-control over a unix socket of its own (no certificates): forget()
        c += ["remote-control:", "    control-enable: yes", f"    control-interface: {q(str(self.control_path))}"]
        return "\n".join(c) + "\n"

    def _write_config(self):
        self.config_path.write_text(self._config())

    # -------------------------------------------------------- process

    def start(self, timeout=None):
        """Start unbound (-d: in the foreground, a child of this process) and wait until it answers
        from knot for every stub zone.  A port taken meanwhile (its bind fails): another one."""
        timeout = timeout or self.timeout
        if self.alive():
            return self
        for attempt in range(5):
            self._write_config()
            self._out = open(self.out_path, "ab")
            self.proc = subprocess.Popen([UNBOUND_BIN, "-d", "-c", str(self.config_path)], stdout=self._out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(self.dir),
                                         start_new_session=True)
            _live.add(self)
            try:
                self._wait_ready(list(self.routes), timeout)
                return self
            except UnboundError:
                self.kill()
                text = self.log_text() + self.out_path.read_text(errors="replace")
                if self.fixed_port is None and attempt < 4 and re.search(r"can't bind socket|Address already in use",
                                                                         text):
                    self.port = pe.free_port()
                    continue
                raise
            except BaseException:
                self.kill()
                raise
        raise UnboundError("unbound could not bind a port")

    def _wait_ready(self, zones, timeout):
        """Until a question for a name in each zone (RD set) gets knot's answer through unbound
        (polled over UDP with a short timeout; these names are left out of queries).  With no zone:
        until it answers at all (REFUSED)."""
        last = [None]
        names = [(f"{self.READY_LABEL}.{z}", z) for z in zones] or [(f"{self.READY_LABEL}.example.", None)]
        for name, zone in names:
            def answered():
                if self.proc.poll() is not None:
                    raise UnboundError(f"unbound exited with {self.proc.returncode}; {self.log_path}:\n"
                                       + self.log_text()[-3000:]
                                       + self.out_path.read_text(errors="replace")[-2000:])
                try:
                    r = _ask("127.0.0.1", self.port, name, RRTYPES["SOA"], timeout=0.1, tries=1, rd=True)
                except (OSError, TimeoutError, ValueError) as e:
                    last[0] = e
                    return False
                rcode = r["flags"] & 15
                last[0] = f"rcode {RCODES.get(rcode)}, flags {r['flags']:#06x}, authority {r['ns']}"
                # NOERROR / NXDOMAIN come from knot only (not from a local zone: REFUSED; not from
                # a stub it cannot reach: SERVFAIL)
                return rcode == 5 if zone is None else rcode in (0, 3)
            try:
                pe.wait_until(answered, timeout, interval=0.02, what=f"unbound at {self.hostport} answering {name}")
            except TimeoutError as e:
                raise UnboundError(f"{e}: last answer {last[0]}; {self.log_path}:\n{self.log_text()[-3000:]}") \
                    from None

    def add_zone(self, zone, server, timeout=None):
        """Send the questions for zone to a Knot, or to (address, port); a running unbound reloads
        its config (SIGHUP) and is waited for."""
        self.routes[fqdn(zone)] = (server.address, server.port) if isinstance(server, Knot) else tuple(server)
        if self.alive():
            self._write_config()
            self.proc.send_signal(signal.SIGHUP)
            self._wait_ready([fqdn(zone)], timeout or self.timeout)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def control(self, *args, timeout=30):
        """unbound-control ARGS through its socket: the output (UnboundError when it fails)."""
        p = subprocess.run([UNBOUND_CONTROL_BIN, "-c", str(self.config_path)] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise UnboundError(f"unbound-control {' '.join(map(str, args))}: {(p.stderr + p.stdout).strip()}")
        return p.stdout

    def forget(self, address=None):
        """Forget what it learnt about a server (all when None): timeouts, lameness (flush_infra),
        and drop the questions still under way (flush_requestlist: their askers get no answer and
        ask again).  Knot.start() calls it for its address: a knotd started again is asked at once,
        not after the backoff unbound built up while it was stopped (its default: a server that
        timed out is asked again seconds later, a question under way waits on that)."""
        if self.alive():
            self.control("flush_infra", address or "all")
            self.control("flush_requestlist")

    def stop(self, timeout=10.0):
        """SIGTERM (SIGKILL after timeout); a temporary workdir is removed."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._after_exit()
        if self._tmp:
            shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode if self.proc is not None else None

    def kill(self):
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._after_exit()

    def _after_exit(self):
        _live.discard(self)
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self):
        return self if self.alive() else self.start()

    def __exit__(self, *exc):
        self.stop()

    # -------------------------------------------------------- asking it, and what it was asked

    def query(self, name, rtype="A", tcp=False):
        """Ask it (kdig, recursion wanted): an Answer."""
        return dig("127.0.0.1", self.port, name, rtype, tcp=tcp, recurse=True)

    def txt(self, name):
        """The TXT values it answers at name, the CNAME chain followed (sorted; [] for none)."""
        a = self.query(name, "TXT")
        if a.rcode not in ("NOERROR", "NXDOMAIN"):
            raise UnboundError(f"{self.hostport} answered {a} to TXT {name}")
        return a.txt()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _log_entries(self):
        """(name, type, rcode or None, from_cache or None) for each question (rcode None) and each
        reply logged; unbound writes each line whole (and flushes it), a line still being written
        is left for the next call."""
        out = []
        text = self.log_text()
        for line in text.splitlines()[:None if text.endswith("\n") else -1]:
            m = _QUERY_LINE.search(line)
            if m and not m.group(2).lower().startswith(self.READY_LABEL + "."):
                out.append((m.group(2).lower(), m.group(3), m.group(5), None if m.group(5) is None
                            else m.group(7) == "1"))
        return out

    @property
    def queries(self):
        """The questions it got, [(name, type)] in order (its own readiness questions left out)."""
        return [(n, t) for n, t, rcode, _ in self._log_entries() if rcode is None]

    def asked(self, name=None, rtype=None):
        """The questions it got (for name / of rtype when given)."""
        return [x for x in self.queries if (name is None or x[0] == fqdn(name)) and (rtype is None or x[1] == rtype)]

    def replies(self, name=None, rtype=None):
        """Its replies, [(name, type, rcode, from_cache)] in order (for name / of rtype when given)."""
        return [(n, t, rcode, cached) for n, t, rcode, cached in self._log_entries() if rcode is not None
                and (name is None or n == fqdn(name)) and (rtype is None or t == rtype)]

    def __repr__(self):
        return f"Unbound({self.hostport} {sorted(self.routes)})"


# ---------------------------------------------------------------- DNS messages; the bench's stand-in resolver

def _read_name(msg, off):
    labels, jumped, end, hops = [], False, off, 0
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped = True
            hops += 1
            if hops > 64:
                raise ValueError("compression loop")
            continue
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n])
        off += n
    return b".".join(labels).decode("ascii", errors="replace").lower() + ".", (end if jumped else off)


def _name_wire(name):
    out = b""
    for label in fqdn(name).rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


_NAME_RDATA = {2: (0, 1), 5: (0, 1), 12: (0, 1), 39: (0, 1), 15: (2, 1), 33: (6, 1), 6: (0, 2)}


def _parse(msg):
    """A DNS message -> dict(id, flags, qd=[(name, type, class)], an/ns/ar=[(name, type, class, ttl, rdata)]),
    the names inside rdata of NS, CNAME, PTR, DNAME, MX, SRV and SOA made uncompressed."""
    ident, flags, qd, an, ns, ar = struct.unpack("!6H", msg[:12])
    off = 12
    out = {"id": ident, "flags": flags, "qd": [], "an": [], "ns": [], "ar": []}
    for _ in range(qd):
        name, off = _read_name(msg, off)
        t, c = struct.unpack("!HH", msg[off:off + 4])
        off += 4
        out["qd"].append((name, t, c))
    for sect, count in (("an", an), ("ns", ns), ("ar", ar)):
        for _ in range(count):
            name, off = _read_name(msg, off)
            t, c, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
            off += 10
            rdata = msg[off:off + rdlen]
            if t in _NAME_RDATA:
                fixed, names = _NAME_RDATA[t]
                p = off + fixed
                wire = msg[off:p]
                for _ in range(names):
                    n, p = _read_name(msg, p)
                    wire += _name_wire(n)
                rdata = wire + msg[p:off + rdlen]
            off += rdlen
            out[sect].append((name, t, c, ttl, rdata))
    return out


def _build(ident, flags, qd, an=(), ns=(), ar=()):
    msg = struct.pack("!6H", ident, flags, len(qd), len(an), len(ns), len(ar))
    for name, t, c in qd:
        msg += _name_wire(name) + struct.pack("!HH", t, c)
    for sect in (an, ns, ar):
        for name, t, c, ttl, rdata in sect:
            msg += _name_wire(name) + struct.pack("!HHIH", t, c, ttl, len(rdata)) + rdata
    return msg


def _ask(server, port, name, qtype, timeout=2.0, tries=3, rd=False):
    """One query (EDNS, 1232 bytes; RD set when rd) over UDP, TCP when truncated: the parsed answer."""
    ident = random.randint(0, 0xFFFF)
    query = _build(ident, 0x0100 if rd else 0, [(fqdn(name), qtype, 1)], ar=[(".", 41, 1232, 0, b"")])
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            try:
                s.sendto(query, (server, port))
                while True:
                    data, _ = s.recvfrom(65535)
                    r = _parse(data)
                    if r["id"] == ident:
                        break
            except (socket.timeout, ConnectionRefusedError):
                continue
        if r["flags"] & 0x0200:
            with socket.create_connection((server, port), timeout=timeout) as s:
                s.sendall(struct.pack("!H", len(query)) + query)
                n = struct.unpack("!H", _recv_exact(s, 2))[0]
                r = _parse(_recv_exact(s, n))
        return r
    raise TimeoutError(f"no answer from {server}@{port} to {name} type {qtype}")


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


class Resolver:
    """The benchmark's (tests/bench/bench_dns01.py) stand-in for a recursive resolver; the tests use
    Unbound, the real thing.  On 127.0.0.1:<free port> (UDP and TCP): each question is
    sent to the server of the longest zone it is in (servers: Knot objects, or add_zone()), and a
    CNAME answered is followed into the next zone (up to 8 times), the chain and the final records
    returned together, RA set and AA clear, as unbound or Let's Encrypt's resolvers answer.  A name
    in no zone gets REFUSED.  Nothing is cached: every question reaches knot.

    queries: what it was asked, [(name, type name, "udp"|"tcp")], e.g. Pebble's TXT lookups."""

    MAX_CHAIN = 8

    def __init__(self, servers=(), port=None):
        self.routes = {}
        for k in servers:
            for z in k.zones:
                self.routes.setdefault(fqdn(z), (k.address, k.port))
        self.port = port or pe.free_port()
        self.queries = []
        self._lock = threading.Lock()
        self._udp = None
        self._tcp = None
        self._threads = []
        self._stopping = threading.Event()

    @property
    def hostport(self):
        return f"127.0.0.1:{self.port}"

    def add_zone(self, zone, server):
        """Route zone to a Knot, or to (address, port)."""
        self.routes[fqdn(zone)] = (server.address, server.port) if isinstance(server, Knot) else tuple(server)

    def answer(self, query, transport):
        """The reply (bytes) to one query message."""
        q = _parse(query)
        rd = q["flags"] & 0x0100
        if not q["qd"]:
            return _build(q["id"], 0x8000 | rd | 0x0080 | 1, [])
        name, qtype, qclass = q["qd"][0]
        with self._lock:
            self.queries.append((name, RRTYPE_NAMES.get(qtype, str(qtype)), transport))
        edns = [r for r in q["ar"] if r[1] == 41]
        size = max(512, min(edns[0][2], 1232)) if edns else 512
        opt = [(".", 41, 1232, 0, b"")] if edns else []
        rcode, chain, authority = 0, [], []
        current, seen = name, {name}
        for _ in range(self.MAX_CHAIN + 1):
            zone = zone_of(current, self.routes)
            if zone is None:
                rcode = 5 if not chain else rcode
                authority = []
                break
            try:
                r = _ask(*self.routes[zone], current, qtype)
            except (OSError, TimeoutError):
                rcode, authority = 2, []
                break
            rcode = r["flags"] & 0x000F
            authority = [x for x in r["ns"] if x[1] == 6]
            chain += [x for x in r["an"] if x not in chain]
            # follow the CNAMEs the answer has, from the current name
            target = current
            while True:
                nxt = [x for x in r["an"] if x[0] == target and x[1] == 5]
                if not nxt or qtype == 5:
                    break
                target = _read_name(nxt[0][4], 0)[0]
            if rcode != 0 or target == current or qtype == 5 or \
                    any(x[0] == target and x[1] == qtype for x in r["an"]) or target in seen:
                break
            seen.add(target)
            current = target
        flags = 0x8000 | rd | 0x0080 | rcode       # QR, RD as asked, RA
        reply = _build(q["id"], flags, [(name, qtype, qclass)], chain, authority, opt)
        if transport == "udp" and len(reply) > size:
            reply = _build(q["id"], flags | 0x0200, [(name, qtype, qclass)], ar=opt)
        return reply

    def start(self):
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", self.port))
        self._udp.settimeout(0.2)
        resolver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.settimeout(10)
                with contextlib.suppress(OSError, ValueError, struct.error, IndexError):
                    while True:
                        n = struct.unpack("!H", _recv_exact(self.request, 2))[0]
                        reply = resolver.answer(_recv_exact(self.request, n), "tcp")
                        self.request.sendall(struct.pack("!H", len(reply)) + reply)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self._tcp = Server(("127.0.0.1", self.port), Handler)
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._tcp.serve_forever, kwargs={"poll_interval": 0.1},
                                          daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def _serve_udp(self):
        while not self._stopping.is_set():
            try:
                data, peer = self._udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError, ValueError, struct.error, IndexError):
                self._udp.sendto(self.answer(data, "udp"), peer)

    def stop(self):
        self._stopping.set()
        if self._tcp is not None:
            self._tcp.shutdown()
            self._tcp.server_close()
        for t in self._threads:
            t.join(timeout=5)
        if self._udp is not None:
            self._udp.close()

    def asked(self, name=None, rtype=None):
        """The queries it got (for name / of rtype when given)."""
        with self._lock:
            return [q for q in self.queries
                    if (name is None or q[0] == fqdn(name)) and (rtype is None or q[1] == rtype)]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
