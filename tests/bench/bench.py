#!/usr/bin/python3
# Benchmark: acmed vs uacme against one local Pebble (PEBBLE_VA_NOSLEEP=1) through the counting proxy; prints a markdown table.
"""Measures, in one run, against one local Pebble through the request-counting proxy:

  acmed  cold start (no state, no account) to files on disk, 1 certificate   (one `run --once`)
  acmed  cold start to files on disk, N certificates (default 100)           (one `run --once`)
  uacme  new account + 1 certificate
  uacme  new account + N certificates in a loop (uacme does one per invocation)

for each: wall time, CPU time, CA requests (counted by the proxy), peak RSS (VmHWM
of the client process, sampled), and whether the files verify against Pebble's root.
It always completes: a failing or missing acmed is reported in the table.

Run:  /usr/bin/python3 tests/bench/bench.py [--certs 100] [--json out.json]
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import pebble_env as pe  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

KEY_TYPE = "ecdsa-p256"


class Row:
    def __init__(self, client, certs):
        self.client, self.certs = client, certs
        self.wall = self.cpu = None
        self.requests = None
        self.rss_kb = 0
        self.ok = 0
        self.result = "not run"
        self.note = ""
        self.lag = None         # acmed's ACMED_LOOP_LAG_REPORT

    def as_dict(self):
        return {k: getattr(self, k) for k in ("client", "certs", "wall", "cpu", "requests", "rss_kb", "ok",
                                              "result", "note", "lag")}


def verify_all(checks):
    """checks: callables raising AssertionError; returns (number ok, first problem)."""
    ok, first = 0, ""
    for check in checks:
        try:
            check()
            ok += 1
        except (AssertionError, OSError, ValueError) as e:
            first = first or str(e)[:200]
    return ok, first


def bench_acmed(acmed_bin, ws, pebble, proxy, n, timeout, wrapper=()):
    row = Row("acmed", n)
    if not (acmed_bin.is_file() and os.access(acmed_bin, os.X_OK)):
        row.result = f"FAILED: no binary at {acmed_bin}"
        return row, ""
    d = ws / f"acmed-{n}"
    d.mkdir()
    certs = [{"name": f"c{i}", "key_type": KEY_TYPE, "domains": [f"c{i}.acmed{n}.bench.example.com"]}
             for i in range(n)]
    cfg = d / "acmed.yaml"
    outputs = pe.write_config(cfg, d, proxy.directory_url, pebble.ca_bundle, pebble.http01_port, certs,
                                extra_ca={"orders_per_hour": 100000})
    mark = proxy.log.mark()
    lag_path = d / "looplag.json"
    argv = list(wrapper) + [str(acmed_bin), "-c", str(cfg), "run", "--once", "--timeout", str(int(timeout))]
    r = pe.run_measured(argv, timeout + 30, env=pe._acmed_env({"ACMED_LOOP_LAG_REPORT": str(lag_path)}))
    row.wall, row.cpu, row.rss_kb = r.wall, r.cpu, r.maxrss_kb
    try:
        row.lag = json.loads(lag_path.read_text())
    except (OSError, ValueError):
        row.lag = None
    row.requests = proxy.log.count(since=mark)
    row.ok, problem = verify_all(
        [lambda c=c: pe.verify_output_dir(outputs[c["name"]], c["domains"], KEY_TYPE, pebble.root_path)
         for c in certs])
    if r.rc == 0 and row.ok == n:
        row.result = "ok"
    else:
        row.result = f"FAILED: rc={r.rc}{' (timeout)' if r.timed_out else ''}, {row.ok}/{n} verified"
        row.note = problem
    return row, r.stderr


def bench_uacme(ws, pebble, proxy, n, timeout):
    row = Row("uacme", n)
    if not pe.uacme_installed():
        row.result = "FAILED: uacme not installed"
        return row, ""
    d = ws / f"uacme-{n}"
    d.mkdir()
    webroot = d / "webroot"
    domains_list = [[f"c{i}.uacme{n}.bench.example.com"] for i in range(n)]
    mark = proxy.log.mark()
    wall = cpu = 0.0
    rss = 0
    failures = []
    with pe.Http01Responder(pebble.http01_port, webroot):
        u = pe.Uacme(d, proxy.directory_url, pebble.tls_ca, webroot)
        runs = [("new", u.new_account(timeout=timeout))]
        if runs[0][1].rc == 0:
            for domains in domains_list:
                runs.append((domains[0], u.issue(domains, KEY_TYPE, timeout=timeout)))
    for what, r in runs:
        wall += r.wall
        cpu += r.cpu
        rss = max(rss, r.maxrss_kb)
        if r.rc != 0:
            failures.append(f"{what}: rc={r.rc}: {r.stderr.strip().splitlines()[-1:]}")
    row.wall, row.cpu, row.rss_kb = wall, cpu, rss
    row.requests = proxy.log.count(since=mark)
    row.ok, problem = verify_all([lambda dm=dm: pe.verify_uacme_output(u, dm, KEY_TYPE, pebble.root_path)
                                  for dm in domains_list])
    row.result = "ok" if not failures and row.ok == n else f"FAILED: {row.ok}/{n} verified"
    row.note = (failures[0] if failures else problem)[:200]
    return row, ""


def wrapper_overhead(ws, pebble, reps=10):
    """Wall time of the mount-namespace wrapper uacme runs in (see pebble_env.Uacme), per invocation."""
    u = pe.Uacme(ws / "wrapper", "https://127.0.0.1:9/dir", pebble.tls_ca, ws / "wrapper")
    times = [pe.run_measured(u.wrapper() + ["/bin/true"], 10).wall for _ in range(reps)]
    return statistics.median(times)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows):
    out = ["| client | certificates | wall s | s/cert | CPU s | CA requests | requests/cert | peak RSS MB | result |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        per = (r.wall / r.certs) if r.wall is not None else None
        rpc = (r.requests / r.certs) if r.requests is not None else None
        out.append(f"| {r.client} | {r.certs} | {fmt(r.wall, '.3f')} | {fmt(per, '.3f')} | {fmt(r.cpu, '.2f')} | "
                   f"{fmt(r.requests, 'd')} | {fmt(rpc, '.1f')} | {r.rss_kb / 1024:.1f} | {r.result} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--certs", type=int, default=100, help="certificates in the bulk runs (default 100)")
    ap.add_argument("--acmed", default=str(pe.acmed_binary()), help="acmed binary (default $ACMED_BIN or build/acmed)")
    ap.add_argument("--skip-acmed", action="store_true")
    ap.add_argument("--skip-uacme", action="store_true")
    ap.add_argument("--nonce-reject", type=int, default=0,
                    help="PEBBLE_WFE_NONCEREJECT %% (default 0: uacme gives up after 2 badNonce retries)")
    ap.add_argument("--timeout", type=float, default=600, help="per acmed run / uacme invocation, seconds")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--workdir", default="/tmp",
                    help="where the work directory (state_dir, outputs, Pebble) is made (default /tmp; "
                         "e.g. /dev/shm to keep a file system's inode allocation out of the CPU figures)")
    ap.add_argument("--acmed-wrapper", default="",
                    help="command prefix for acmed, e.g. \"valgrind --tool=callgrind\" or \"perf record -g\" "
                         "(its figures then include the wrapper)")
    a = ap.parse_args()
    if not pe.pebble_installed():
        print("pebble / pebble-challtestsrv not installed", file=sys.stderr)
        return 2

    ws = Path(tempfile.mkdtemp(prefix="acmed-bench-", dir=a.workdir))
    pebble = pe.PebbleEnv(ws / "pebble", nonce_reject=a.nonce_reject)
    pebble.start()
    cert, key = pebble.tls_ca.issue_server_cert("proxy")
    proxy = FaultProxy(("127.0.0.1", 0), ("127.0.0.1", pebble.port), cert, key, pebble.tls_ca.ca_path,
                       keep_bodies=False).start()
    rows, acmed_err = [], ""
    try:
        if not a.skip_acmed:
            for n in (1, a.certs):
                print(f"[bench] acmed, {n} certificate(s)...", file=sys.stderr, flush=True)
                row, err = bench_acmed(Path(a.acmed), ws, pebble, proxy, n, a.timeout,
                                       shlex.split(a.acmed_wrapper))
                rows.append(row)
                acmed_err = acmed_err or (err if row.result != "ok" else "")
        if not a.skip_uacme:
            for n in (1, a.certs):
                print(f"[bench] uacme, {n} certificate(s)...", file=sys.stderr, flush=True)
                rows.append(bench_uacme(ws, pebble, proxy, n, a.timeout)[0])
        overhead = wrapper_overhead(ws, pebble) if not a.skip_uacme and pe.uacme_installed() else None
    finally:
        proxy.stop()
        pebble.stop()

    print(f"\nPebble 2.4 on loopback, PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT={a.nonce_reject}, "
          f"single-name {KEY_TYPE} certificates, every request through the counting proxy; "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs\n")
    print(table(rows))
    by = {(r.client, r.certs): r for r in rows}
    notes = []
    ac, ua = by.get(("acmed", a.certs)), by.get(("uacme", a.certs))
    if ac and ua and ac.result == "ok" and ua.result == "ok" and ac.wall and ua.wall:
        notes.append(f"throughput, {a.certs} certificates: acmed {a.certs / ac.wall:.1f}/s, "
                     f"uacme {a.certs / ua.wall:.1f}/s: acmed is {ua.wall / ac.wall:.1f}x uacme")
    if ac and ac.cpu is not None:
        notes.append(f"acmed CPU per certificate, {a.certs} certificates: {ac.cpu / a.certs * 1000:.2f} ms "
                     f"(DESIGN.md second stage: <= 3 ms)"
                     + (f"; uacme {ua.cpu / a.certs * 1000:.1f} ms" if ua and ua.cpu else ""))
    if ac and ac.lag:
        notes.append(f"acmed loop lag, {a.certs} certificates (10 ms timer, {ac.lag['samples']} samples): "
                     f"p50 {ac.lag['p50_ms']:.2f} ms, p99 {ac.lag['p99_ms']:.2f} ms, max {ac.lag['max_ms']:.2f} ms")
    if a.acmed_wrapper:
        notes.append(f"acmed ran under `{a.acmed_wrapper}`: its wall, CPU and RSS figures include the wrapper")
    if a.workdir != "/tmp":
        notes.append(f"work directory under {a.workdir}")
    if overhead is not None:
        notes.append(f"uacme wall times include its mount-namespace trust wrapper "
                     f"(unshare + mount, ~{overhead * 1000:.0f} ms per invocation); uacme's RSS is its own")
    notes.append("acmed figures are one process from cold start (account creation included) until exit "
                 "with every file written; uacme 1 = `new` + `issue`")
    for r in rows:
        if r.note:
            notes.append(f"{r.client} {r.certs}: {r.note}")
    print()
    for n in notes:
        print(f"- {n}")
    if acmed_err:
        tail = "\n".join(acmed_err.strip().splitlines()[-15:])
        print(f"\nacmed stderr (tail):\n```\n{tail}\n```")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": [r.as_dict() for r in rows], "notes": notes}, indent=2))
    if a.keep:
        print(f"\nwork directory kept: {ws}", file=sys.stderr)
    else:
        shutil.rmtree(ws, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
