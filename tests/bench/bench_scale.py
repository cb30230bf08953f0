#!/usr/bin/python3
# Scale benchmark (issue 3): 1000 certificates due at once vs uacme, 10 000 valid certificates idle, a CA outage with 1000 due.
"""Three parts, each selectable with --part (repeatable; default: a and b):

  a  N certificates (default 1000) due at once: one `acmed run --once`, max_parallel M (default 20),
     against one local Pebble (PEBBLE_VA_NOSLEEP=1) through the counting fault proxy: wall time,
     CA requests per certificate, peak RSS; beside uacme issuing K certificates (default 50) in a
     loop in the same run, whose throughput is extrapolated to N (said so in the output).
  b  10 000 valid certificates configured (issued locally by a throwaway CA with python3-cryptography,
     not by Pebble): acmed daemon (`acmed -q run`) start-up time until READY=1 arrives on
     NOTIFY_SOCKET, RSS after start and after the idle period, CPU time (utime+stime from
     /proc/PID/stat, and the ns-resolution sum of /proc/PID/task/*/schedstat) and context switches
     over one idle minute (--idle-seconds), CA requests meanwhile.
  c  a CA outage (maintenance 503 on every path, --outage-seconds, default 600) starting just before
     acmed starts with N certificates due: requests during it, time from its end until all issued.

Prints a markdown table with the targets of DESIGN.md "Performance" beside the figures.
--direct (part a) bypasses the proxy (requests counted from Pebble's log); see README.md for why
Pebble 2.4 may wedge under that load (letsencrypt/pebble#554).
Run:  /usr/bin/python3 tests/bench/bench_scale.py [--part a --part b --part c] [--json out.json]
"""

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))
import pebble_env as pe  # noqa: E402
from faultproxy import FaultProxy, classify  # noqa: E402
import bench  # noqa: E402  (uacme runner and row helpers)

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

KEY_TYPE = "ecdsa-p256"
MB = 1024.0


class Figure:
    """One line of the result table."""

    def __init__(self, part, what, value, unit="", target=None, ok=None, note=""):
        self.part, self.what, self.value, self.unit = part, what, value, unit
        self.target, self.ok, self.note = target, ok, note

    def as_dict(self):
        return dict(self.__dict__)


def fmtv(v, unit):
    if v is None:
        return "-"
    if isinstance(v, float):
        s = f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    else:
        s = str(v)
    return f"{s} {unit}".strip()


def verdict(ok):
    return "" if ok is None else ("met" if ok else "**missed**")


def table(figs):
    out = ["| part | measure | value | target | |", "|---|---|---:|---|---|"]
    for f in figs:
        out.append(f"| {f.part} | {f.what} | {fmtv(f.value, f.unit)} | {f.target or ''} | {verdict(f.ok)} |")
    return "\n".join(out)


def start_stack(ws, nonce_reject, extra_env=None):
    pebble = pe.PebbleEnv(ws / "pebble", nonce_reject=nonce_reject, extra_env=extra_env)
    pebble.start()
    cert, key = pebble.tls_ca.issue_server_cert("proxy")
    proxy = FaultProxy(("127.0.0.1", 0), ("127.0.0.1", pebble.port), cert, key, pebble.tls_ca.ca_path,
                       keep_bodies=False).start()
    return pebble, proxy


class PebbleLogCounter:
    """Counts the requests Pebble itself logged ("<METHOD> <path> -> calling handler()"): the
    stand-in for the proxy's log when clients talk to Pebble directly (--direct)."""

    RX = re.compile(r"\b(GET|HEAD|POST) (/\S*) -> calling handler")

    def __init__(self, pebble):
        self.pebble = pebble
        self.directory_url = pebble.directory_url
        self.log = self

    def _lines(self):
        return [m for m in map(self.RX.search, self.pebble.pebble_log.read_text(errors="replace").splitlines()) if m]

    def mark(self):
        return len(self._lines())

    def count(self, since=0):
        return len(self._lines()) - since

    def by_kind(self, since=0):
        c = {}
        for m in self._lines()[since:]:
            k = classify(m.group(2))
            c[k] = c.get(k, 0) + 1
        return c


def _cpu_of(pid):
    return pe._proc_stat(pid)[0] if pid else None


def party_cpu(pebble):
    """CPU seconds so far of everyone in part a but acmed: this process (the proxy's threads and the
    RSS sampler), Pebble, challtestsrv - to see who, if anyone, is the bottleneck."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"bench+proxy (python)": ru.ru_utime + ru.ru_stime,
            "pebble": _cpu_of(pebble.pebble_proc.pid if pebble.pebble_proc else None),
            "challtestsrv": _cpu_of(pebble.cts_proc.pid if pebble.cts_proc else None)}


def in_flight(log, since):
    """Mean number of requests the proxy was working on (request read -> answer ready), over the span."""
    es = log.select(since=since)
    if not es:
        return 0.0
    span = max(e["mono_done"] for e in es) - min(e["mono"] for e in es)
    return sum(e["mono_done"] - e["mono"] for e in es) / span if span > 0 else 0.0


def cert_list(tag, n):
    return [{"name": f"{tag}{i}", "key_type": KEY_TYPE, "domains": [f"{tag}{i}.{tag}.bench.example.com"]}
            for i in range(n)]


def verify_sample(outputs, certs, root, limit):
    """Verify every output (limit 0) or an even sample of `limit` of them; returns (ok, checked, problem)."""
    pick = certs if not limit or limit >= len(certs) else certs[::max(1, len(certs) // limit)]
    ok, problem = bench.verify_all(
        [lambda c=c: pe.verify_output_dir(outputs[c["name"]], c["domains"], KEY_TYPE, root) for c in pick])
    return ok, len(pick), problem


# ---------------------------------------------------------------- part a

def part_a(a, ws, figs, notes):
    n, k = a.certs, a.uacme_certs
    pebble, real_proxy = start_stack(ws / "a", a.nonce_reject)
    proxy = PebbleLogCounter(pebble) if a.direct else real_proxy
    if a.direct:
        notes.append("a: --direct: clients talk to Pebble itself; requests counted from Pebble's log")
    try:
        d = ws / "a" / "acmed"
        d.mkdir(parents=True)
        certs = cert_list("a", n)
        cfg = d / "acmed.yaml"
        outputs = pe.write_config(cfg, d, proxy.directory_url, pebble.ca_bundle, pebble.http01_port, certs,
                                  extra_ca={"max_parallel": a.max_parallel, "orders_per_hour": 100000})
        print(f"[bench a] acmed: {n} certificates due, max_parallel {a.max_parallel}...", file=sys.stderr,
              flush=True)
        mark = proxy.log.mark()
        cpu0 = party_cpu(pebble)
        lag_path = d / "looplag.json"
        r = pe.run_acmed(["run", "--once", "--timeout", str(int(a.timeout))], timeout=a.timeout + 60, config=cfg,
                         acmed_bin=a.acmed, env={"ACMED_LOOP_LAG_REPORT": str(lag_path)})
        cpu1 = party_cpu(pebble)
        (d / "acmed.stderr").write_text(r.stderr)
        reqs = proxy.log.count(since=mark)
        by_kind = proxy.log.by_kind(since=mark)
        ok, checked, problem = verify_sample(outputs, certs, pebble.root_path, a.verify_sample)
        good = r.rc == 0 and ok == checked
        figs.append(Figure("a", f"acmed: {n} certificates due at once, wall time", r.wall, "s",
                           note=f"rc={r.rc}, {ok}/{checked} outputs verified"))
        figs.append(Figure("a", "acmed: throughput", n / r.wall if r.wall else None, "cert/s"))
        figs.append(Figure("a", "acmed: CA requests per certificate", reqs / n, "", "<= 7", reqs / n <= 7))
        figs.append(Figure("a", "acmed: CPU time", r.cpu, "s",
                           note=f"{r.cpu / n * 1000:.2f} ms per certificate"))
        loop_lag(lag_path, figs, notes)
        figs.append(Figure("a", "acmed: peak RSS", r.maxrss_kb / MB, "MB", "<= 30 MB", r.maxrss_kb / MB <= 30))
        notes.append(f"a: acmed requests by kind: {json.dumps(by_kind, sort_keys=True)}")
        if r.wall:
            share = {k: (cpu1[k] - cpu0[k]) / r.wall * 100 for k in cpu0 if cpu0[k] is not None and cpu1[k] is not None}
            share["acmed"] = r.cpu / r.wall * 100
            notes.append("a: CPU during the acmed row, % of one core (2 cores = 200 %): "
                         + ", ".join(f"{k} {v:.0f} %" for k, v in share.items())
                         + (f"; requests in flight at the proxy, mean {in_flight(real_proxy.log, mark):.2f}"
                            if not a.direct else ""))
        if not good:
            notes.append(f"a: acmed FAILED (rc={r.rc}{', timed out' if r.timed_out else ''}): {problem}")
            notes.append("a: acmed stderr tail:\n```\n" + "\n".join(r.stderr.strip().splitlines()[-12:]) + "\n```")

        if a.skip_uacme or not pe.uacme_installed():
            notes.append("a: uacme not run (--skip-uacme or not installed): no throughput comparison")
            return
        print(f"[bench a] uacme: {k} certificates in a loop...", file=sys.stderr, flush=True)
        row, _ = bench.bench_uacme(ws / "a", pebble, proxy, k, a.timeout)
        if row.result != "ok" or not row.wall:
            notes.append(f"a: uacme {row.result}: {row.note}")
            return
        u_rate = k / row.wall
        u_extra = n / u_rate
        figs.append(Figure("a", f"uacme: {k} certificates in a loop, wall time", row.wall, "s",
                           note=f"{row.requests / k:.1f} requests/cert"))
        figs.append(Figure("a", f"uacme: {n} certificates, extrapolated from {k}", u_extra, "s",
                           note="extrapolated, not measured"))
        ratio = (n / r.wall) / u_rate if good and r.wall else None
        figs.append(Figure("a", "acmed throughput / uacme throughput", ratio, "x", ">= 10x",
                           None if ratio is None else ratio >= 10))
        figs.append(Figure("a", "uacme: peak RSS (max over invocations)", row.rss_kb / MB, "MB"))
        notes.append(f"a: uacme issued {k} certificates (one `uacme issue` per certificate, plus `uacme new`) in "
                     f"{row.wall:.1f} s = {u_rate:.2f} cert/s; its time for {n} is extrapolated from that "
                     f"throughput, not measured. uacme's wall time includes its mount-namespace trust wrapper "
                     f"(~{bench.wrapper_overhead(ws / 'a', pebble) * 1000:.0f} ms per invocation).")
    finally:
        real_proxy.stop()
        pebble.stop()


def loop_lag(path, figs, notes):
    """acmed's ACMED_LOOP_LAG_REPORT (daemon/looplag.c): how late a 10 ms timer on its loop fired."""
    try:
        lag = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        notes.append(f"a: no loop lag report from acmed ({e}): an acmed without daemon/looplag.c?")
        return
    figs.append(Figure("a", "acmed: loop lag p50 / p90 (timer every 10 ms)",
                       f"{lag['p50_ms']:.2f} / {lag['p90_ms']:.2f}", "ms"))
    figs.append(Figure("a", "acmed: loop lag p99", lag["p99_ms"], "ms", "<= 5 ms", lag["p99_ms"] <= 5))
    figs.append(Figure("a", "acmed: loop lag max", lag["max_ms"], "ms",
                       note=f"{lag['samples']} samples, {lag['over_5ms']} later than 5 ms, "
                            f"{lag['over_50ms']} later than 50 ms"))
    notes.append(f"a: loop lag report: {json.dumps(lag, sort_keys=True)}")


# ---------------------------------------------------------------- part b

def make_local_certificates(ws, certs, days_valid=90, days_old=10):
    """One throwaway CA; one leaf + key per certificate, written as acmed's output_dir layout."""
    now = datetime.datetime.utcnow()
    (ws / "state").mkdir(mode=0o700)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acmed bench local CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=days_old + 1))
          .not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    outputs = {}
    for c in certs:
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, c["domains"][0])]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=days_old))
                .not_valid_after(now - datetime.timedelta(days=days_old) + datetime.timedelta(days=days_valid))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in c["domains"]]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(aki, critical=False)
                .sign(ca_key, hashes.SHA256()))
        out = ws / "state" / "live" / c["name"]      # acmed's default output_dir: <state_dir>/live/<name>
        out.mkdir(parents=True)
        leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)
        pe._write_private(out / "privkey.pem", key.private_bytes(serialization.Encoding.PEM,
                                                                 serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption()))
        (out / "cert.pem").write_bytes(leaf_pem)
        (out / "chain.pem").write_bytes(ca_pem)
        (out / "fullchain.pem").write_bytes(leaf_pem + ca_pem)
        outputs[c["name"]] = out
    return outputs


def write_compact_config(path, ws, directory_url, ca_bundle, http01_port, certs):
    """One line per certificate, output_dir left to its default (<state_dir>/live/<name>)."""
    lines = [f"state_dir: {json.dumps(str(ws / 'state'))}", f"runtime_dir: {json.dumps(str(ws / 'run'))}",
             f"listen: [{json.dumps(f'127.0.0.1:{http01_port}')}]", "cas:", "  - name: bench",
             f"    directory: {json.dumps(directory_url)}", f"    ca_bundle: {json.dumps(str(ca_bundle))}",
             "certificates:"]
    for c in certs:
        lines.append(f"  - {{name: {c['name']}, domains: [{', '.join(c['domains'])}], key_type: {c['key_type']}}}")
    Path(path).write_text("\n".join(lines) + "\n")


def task_cpu_ns_and_switches(pid):
    """Sum over the process's threads of schedstat run time (ns) and of context switches."""
    ns = switches = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None, None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns += int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return ns, switches


def wait_settled(pid, window=1.0, quiet_ms=5.0, timeout=180.0):
    """READY=1 comes before the certificates are looked at (they are inspected after it, a few
    at a time, between the loop's other events). Wait until the process's threads used less than
    quiet_ms of CPU over the last `window` seconds: (seconds waited, CPU seconds used meanwhile),
    (None, CPU) on timeout."""
    t0 = time.monotonic()
    ns0, _ = task_cpu_ns_and_switches(pid)
    if ns0 is None:
        return None, None
    hist = [(t0, ns0)]
    while time.monotonic() - t0 < timeout:
        time.sleep(0.1)
        ns, _ = task_cpu_ns_and_switches(pid)
        if ns is None:
            return None, None
        now = time.monotonic()
        hist.append((now, ns))
        old = [h for h in hist if now - h[0] >= window]
        if old:
            t_old, ns_old = old[-1]
            if (ns - ns_old) / 1e6 < quiet_ms:
                return t_old - t0, (ns_old - ns0) / 1e9
    return None, (hist[-1][1] - ns0) / 1e9


def start_until_ready(a, cfg, sock, stderr_path):
    """Start `acmed -q run` with NOTIFY_SOCKET; (process, seconds from exec to READY=1 or None, messages)."""
    t0 = time.monotonic()
    proc = pe.AcmedProcess(["-q", "run"], config=cfg, acmed_bin=a.acmed,
                           env={"NOTIFY_SOCKET": sock.getsockname()}, stderr_path=stderr_path)
    messages = []
    while time.monotonic() - t0 < a.timeout:
        try:
            msg = sock.recv(4096).decode(errors="replace")
        except socket.timeout:
            if not proc.alive():
                break
            continue
        messages.append(msg)
        if "READY=1" in msg.split("\n"):
            return proc, time.monotonic() - t0, messages
    return proc, None, messages


def part_b(a, ws, figs, notes):
    n = a.idle_certs
    pebble, proxy = start_stack(ws / "b", a.nonce_reject)
    d = ws / "b" / "acmed"
    d.mkdir(parents=True)
    proc = None
    try:
        certs = cert_list("b", n)
        print(f"[bench b] issuing {n} certificates locally...", file=sys.stderr, flush=True)
        t = time.monotonic()
        make_local_certificates(d, certs)
        notes.append(f"b: {n} leaf certificates + keys made locally in {time.monotonic() - t:.1f} s "
                     f"(one throwaway CA, 90-day certificates 10 days old: none due for 50 days)")
        cfg = d / "acmed.yaml"
        write_compact_config(cfg, d, proxy.directory_url, pebble.ca_bundle, pebble.http01_port, certs)
        notes.append(f"b: config {cfg.stat().st_size / 1024:.0f} KiB: one flow-style line per certificate, default "
                     f"output_dir (block style with an explicit output_dir per "
                     f"certificate needs ~300 bytes each; acmed accepts up to 16 MiB)")
        sock_path = d / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(sock_path))
        sock.settimeout(0.5)
        print(f"[bench b] starting the acmed daemon with {n} certificates...", file=sys.stderr, flush=True)
        mark = proxy.log.mark()
        proc, startup, messages = start_until_ready(a, cfg, sock, d / "acmed.stderr")
        if startup is None:
            notes.append(f"b: acmed never sent READY=1 (alive={proc.alive()}, messages={messages!r}); stderr tail:\n"
                         "```\n" + "\n".join(proc.stderr.strip().splitlines()[-12:]) + "\n```")
            figs.append(Figure("b", f"start-up with {n} certificates (until READY=1)", None, "s", "<= 2 s", False))
            return
        rss_ready = proc.rss_kb()
        looked, looked_cpu = wait_settled(proc.pid)
        time.sleep(a.settle)
        cpu0, (ns0, sw0) = proc.cpu_seconds(), task_cpu_ns_and_switches(proc.pid)
        t_idle = time.monotonic()
        print(f"[bench b] ready after {startup:.2f} s; idle for {a.idle_seconds} s...", file=sys.stderr, flush=True)
        time.sleep(a.idle_seconds)
        cpu1, (ns1, sw1) = proc.cpu_seconds(), task_cpu_ns_and_switches(proc.pid)
        idle = time.monotonic() - t_idle
        rss_idle, hwm = proc.rss_kb(), proc.hwm_kb()
        alive = proc.alive()
        reqs = proxy.log.count(since=mark)
        per_min = 60.0 / idle
        cpu_ms = (ns1 - ns0) / 1e6 * per_min if ns0 is not None and ns1 is not None else None
        figs.append(Figure("b", f"first start-up with {n} certificates never seen (exec to READY=1)", startup,
                           "s", "<= 2 s", startup <= 2.0,
                           note="every key and certificate parsed"))
        figs.append(Figure("b", "RSS at READY=1", rss_ready / MB, "MB"))
        figs.append(Figure("b", f"READY=1 to every certificate looked at ({n} never seen)", looked, "s",
                           note="" if looked_cpu is None else f"{looked_cpu:.2f} s CPU meanwhile; "
                           "until then status shows them as starting"))
        figs.append(Figure("b", f"idle RSS (after {idle:.0f} s idle)", rss_idle / MB, "MB", "<= 40 MB",
                           rss_idle / MB <= 40))
        figs.append(Figure("b", "peak RSS (VmHWM)", hwm / MB, "MB"))
        figs.append(Figure("b", "CPU per idle minute (schedstat, all threads)", cpu_ms, "ms", "<= 10 ms",
                           None if cpu_ms is None else cpu_ms <= 10))
        if cpu0 is not None and cpu1 is not None:
            figs.append(Figure("b", "CPU per idle minute (utime+stime, clock ticks)", (cpu1 - cpu0) * 1000 * per_min,
                               "ms", "<= 10 ms", (cpu1 - cpu0) * 1000 * per_min <= 10,
                               note=f"{1000 / os.sysconf('SC_CLK_TCK'):.0f} ms resolution"))
        if sw0 is not None and sw1 is not None:
            figs.append(Figure("b", "context switches per idle minute", round((sw1 - sw0) * per_min), ""))
        figs.append(Figure("b", "CA requests from start to end of idle period", reqs, ""))
        notes.append(f"b: CPU measured from {a.settle:.0f} s after every certificate was looked at (the CPU went "
                     f"quiet: < 5 ms over 1 s) for {idle:.1f} s, scaled to one minute; "
                     f"daemon still running at the end: {alive}")
        if reqs:
            notes.append(f"b: requests by kind: {json.dumps(proxy.log.by_kind(since=mark), sort_keys=True)}")
        # A restart: what every later start costs (the inspection cache is used).
        proc.stop()
        proc, restart, messages = start_until_ready(a, cfg, sock, d / "acmed-restart.stderr")
        figs.append(Figure("b", f"restart with {n} certificates (exec to READY=1)", restart, "s", "<= 2 s",
                           None if restart is None else restart <= 2.0,
                           note="files unchanged since the last start: state_dir/live.json trusted"))
        if restart is not None:
            looked, looked_cpu = wait_settled(proc.pid)
            figs.append(Figure("b", "restart: READY=1 to every certificate looked at", looked, "s",
                               note="" if looked_cpu is None else f"{looked_cpu:.2f} s CPU meanwhile"))
    finally:
        if proc is not None:
            proc.stop()
        proxy.stop()
        pebble.stop()


# ---------------------------------------------------------------- part c

def part_c(a, ws, figs, notes):
    n = a.certs
    pebble, proxy = start_stack(ws / "c", a.nonce_reject)
    try:
        d = ws / "c" / "acmed"
        d.mkdir(parents=True)
        certs = cert_list("c", n)
        cfg = d / "acmed.yaml"
        outputs = pe.write_config(cfg, d, proxy.directory_url, pebble.ca_bundle, pebble.http01_port, certs,
                                  extra_ca={"max_parallel": a.max_parallel, "orders_per_hour": 100000})
        budget = a.outage_seconds + a.timeout
        print(f"[bench c] {a.outage_seconds} s outage with {n} certificates due (acmed --timeout {budget:.0f})...",
              file=sys.stderr, flush=True)
        outage = proxy.outage(for_s=a.outage_seconds)
        start, end = outage.window_mono()
        r = pe.run_acmed(["run", "--once", "--timeout", str(int(budget))], timeout=budget + 60, config=cfg,
                         acmed_bin=a.acmed)
        t_exit = time.monotonic()
        during = proxy.log.between(start, end)
        issued = proxy.log.select(kind="cert", status=200)
        ok, checked, problem = verify_sample(outputs, certs, pebble.root_path, a.verify_sample)
        figs.append(Figure("c", f"requests during a {a.outage_seconds:.0f} s outage, {n} due", len(during), "",
                           "<= 25", len(during) <= 25))
        if len(issued) >= n:
            after = max(e["mono_done"] for e in issued) - end
            figs.append(Figure("c", "CA back -> all issued", after, "s", "<= 120 s", after <= 120))
            first = min((e["mono"] for e in proxy.log.between(end)), default=None)
            if first is not None:
                figs.append(Figure("c", "CA back -> first request (probe)", first - end, "s"))
        else:
            figs.append(Figure("c", "CA back -> all issued", None, "s", "<= 120 s", False,
                               note=f"only {len(issued)}/{n} issued"))
        figs.append(Figure("c", "CA back -> acmed exited", t_exit - end, "s", note=f"rc={r.rc}, {ok}/{checked} "
                                                                                 f"outputs verified"))
        figs.append(Figure("c", "peak RSS", r.maxrss_kb / MB, "MB"))
        probes = [round(e["mono"] - start, 1) for e in during]
        notes.append(f"c: requests during the outage at (s after its start): {probes}")
        if r.rc != 0 or ok != checked:
            notes.append(f"c: acmed FAILED (rc={r.rc}): {problem}; stderr tail:\n```\n"
                         + "\n".join(r.stderr.strip().splitlines()[-12:]) + "\n```")
    finally:
        proxy.stop()
        pebble.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", action="append", choices=("a", "b", "c"),
                    help="part to run (repeatable; default: a and b - c takes more than --outage-seconds)")
    ap.add_argument("--acmed", default=str(pe.acmed_binary()), help="acmed binary (default $ACMED_BIN or build/acmed)")
    ap.add_argument("--certs", type=int, default=1000, help="certificates due in parts a and c (default 1000)")
    ap.add_argument("--max-parallel", type=int, default=20,
                    help="CA max_parallel in parts a and c (default 20: Pebble 2.4 wedges at 50)")
    ap.add_argument("--uacme-certs", type=int, default=50,
                    help="certificates uacme issues in part a; extrapolated to --certs (default 50)")
    ap.add_argument("--skip-uacme", action="store_true")
    ap.add_argument("--direct", action="store_true",
                    help="part a: acmed and uacme talk to Pebble directly (no proxy in the way); requests are "
                         "then counted from Pebble's log")
    ap.add_argument("--idle-certs", type=int, default=10000, help="certificates configured in part b (default 10000)")
    ap.add_argument("--idle-seconds", type=float, default=60.0, help="part b idle period (default 60)")
    ap.add_argument("--settle", type=float, default=2.0, help="part b: seconds after READY=1 before measuring CPU")
    ap.add_argument("--outage-seconds", type=float, default=600.0, help="part c outage length (default 600)")
    ap.add_argument("--nonce-reject", type=int, default=0,
                    help="PEBBLE_WFE_NONCEREJECT %% (default 0: uacme gives up after 2 badNonce retries)")
    ap.add_argument("--timeout", type=float, default=900.0, help="per acmed run / uacme invocation, seconds")
    ap.add_argument("--verify-sample", type=int, default=0,
                    help="verify only this many outputs, evenly spread (default 0: all)")
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--workdir", default="/tmp",
                    help="where the work directory (state_dir, outputs, Pebble) is made (default /tmp; "
                         "e.g. /dev/shm to keep a file system's inode allocation out of acmed's CPU time)")
    a = ap.parse_args()
    a.acmed = Path(a.acmed)
    parts = sorted(set(a.part or ["a", "b"]))
    if not pe.pebble_installed():
        print("pebble / pebble-challtestsrv not installed", file=sys.stderr)
        return 2
    if not (a.acmed.is_file() and os.access(a.acmed, os.X_OK)):
        print(f"no acmed binary at {a.acmed}", file=sys.stderr)
        return 2

    ws = Path(tempfile.mkdtemp(prefix="acmed-bscale-", dir=a.workdir))
    figs, notes = [], []
    try:
        for p in parts:
            (ws / p).mkdir()
            {"a": part_a, "b": part_b, "c": part_c}[p](a, ws, figs, notes)
    finally:
        print(f"\nPebble 2.4 on loopback, PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT={a.nonce_reject}, "
              f"single-name {KEY_TYPE} certificates, every CA request through the counting proxy; "
              f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs; parts {', '.join(parts)}\n")
        print(table(figs))
        if notes:
            print()
            for n in notes:
                print(f"- {n}")
        if a.json:
            Path(a.json).write_text(json.dumps({"figures": [f.as_dict() for f in figs], "notes": notes}, indent=2))
        if a.keep:
            print(f"\nwork directory kept: {ws}", file=sys.stderr)
        else:
            shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
