#!/usr/bin/python3
# Benchmark (issue 9): N wildcard certificates in one zone, dns-01/rfc2136 against a local knot, beside http-01.
"""One local Pebble 2.4 (PEBBLE_VA_NOSLEEP=1) resolving through a knot_env.Resolver in front of one
knotd serving the zone bench.test (TSIG key allowed to UPDATE it), every ACME request through the
counting proxy (tests/integration/faultproxy.py, no faults). Two runs, each one `acmed run --once`
from a cold state_dir (no account):

  dns-01   N certificates ["*.nI.bench.test", "nI.bench.test"] (two TXT values at the same name),
           challenge dns-01 through an rfc2136 provider at knot
  http-01  N certificates ["nI.bench.test"], acmed answering Pebble's VA on its http-01 port
           (knot serves an A record 127.0.0.1 for every nI.bench.test: Pebble resolves through it)

For each: wall time, CPU time, peak RSS (as bench.py), CA requests (proxy), the UPDATE messages and
DNS queries knot received (mod-stats counters, read before and after), the queries Pebble's VA
made (the Resolver forwards each question it gets to knot once; only a UDP datagram lost on
loopback would make it ask twice), whether every output verifies
against Pebble's root and that no TXT record is left in the zone at the end.

acmed's `dns.resolvers` is knot itself (it serves bench.test authoritatively, so acmed's SOA,
CNAME, NS and A lookups need no recursion), and its propagation check asks knot directly (knot is
the zone's only name server): every query knot counts that did not come through the Resolver is
acmed's.

Run (root: knot listens on port 53 of 127.0.53.x):
  /usr/bin/python3 tests/bench/bench_dns01.py [--certs 100] [--workdir /dev/shm] [--json out.json]
"""

import argparse
import collections
import datetime
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Row, fmt, verify_all  # noqa: E402  (also puts tests/integration on sys.path)
import knot_env as ke  # noqa: E402
import pebble_env as pe  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

KEY_TYPE = "ecdsa-p256"
ZONE = "bench.test"


class DnsRow(Row):
    """bench.Row plus what knot and the Resolver saw."""

    def __init__(self, client, certs, names):
        super().__init__(client, certs)
        self.names = names              # identifiers per certificate
        self.updates = None             # UPDATE messages knot received
        self.queries = None             # queries knot received (all)
        self.pebble_queries = None      # of them: from Pebble's VA, through the Resolver
        self.acmed_queries = None       # the rest: acmed's own (zone, CNAME, NS, propagation)
        self.qtypes = {}                # knot's count by query type
        self.pebble_qtypes = {}         # the Resolver's count by query type
        self.txt_left = None            # TXT records in the zone after the run
        self.records_json = None        # records acmed still remembers (state_dir/dns/records.json)
        self.update_changes = []        # changes per UPDATE, from acmed's debug log (--debug only)
        self.knot_ddns = []             # knot's "DDNS, processing N updates" batches
        self.by_kind = {}               # CA requests by kind (the proxy's classification)
        self.silences = []              # seconds acmed's log said nothing, when >= SILENCE_S
        self.update_rtt = []            # seconds from each UPDATE sent to its answer (--debug only)

    def as_dict(self):
        d = super().as_dict()
        d.update({k: getattr(self, k) for k in ("names", "updates", "queries", "pebble_queries", "acmed_queries",
                                                "qtypes", "pebble_qtypes", "txt_left", "records_json",
                                                "update_changes", "knot_ddns", "by_kind", "silences",
                                                "update_rtt")})
        return d


SILENCE_S = 0.5
LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})([+-]\d{4}) ")


def log_times(stderr):
    """[(epoch seconds, line)] of acmed's timestamped log lines."""
    out = []
    for line in stderr.splitlines():
        m = LOG_TS.match(line)
        if m:
            t = datetime.datetime.strptime(m.group(1) + m.group(2), "%Y-%m-%d %H:%M:%S.%f%z").timestamp()
            out.append((t, line))
    return out


def silences(lines, at_least=SILENCE_S):
    """The gaps between consecutive log lines of at least `at_least` seconds."""
    return [round(b[0] - a[0], 3) for a, b in zip(lines, lines[1:]) if b[0] - a[0] >= at_least]


def update_rtts(lines):
    """With -v: seconds from each "one UPDATE ... with N changes" to the first record published or removed
    after it (its answer: the provider has one UPDATE in flight per zone, and one zone here)."""
    out, sent = [], None
    for t, line in lines:
        if "one UPDATE of zone" in line:
            sent = t
        elif sent is not None and re.search(r"dns-01: (published|removed) TXT", line):
            out.append(round(t - sent, 4))
            sent = None
    return out


def rfc2136_provider(knot, tsig, secret_path):
    tsig.write_secret(secret_path)
    return (f"\n  - {{name: primary, type: rfc2136, server: {pe._y(knot.hostport)}, tsig_key: {tsig.name}, "
            f"tsig_algorithm: {tsig.algorithm}, tsig_secret_file: {pe._y(secret_path)}}}")


def txt_records(listing):
    """The TXT records of a `knotc zone-read` listing."""
    return [line for line in listing.splitlines() if len(line.split()) >= 4 and line.split()[3] == "TXT"]


def bench_run(kind, acmed_bin, ws, pebble, proxy, knot, resolver, tsig, n, timeout, debug, max_parallel=None,
              wrapper=()):
    dns01 = kind == "dns-01"
    row = DnsRow(kind, n, 2 if dns01 else 1)
    if not (acmed_bin.is_file() and os.access(acmed_bin, os.X_OK)):
        row.result = f"FAILED: no binary at {acmed_bin}"
        return row, ""
    d = ws / kind
    d.mkdir()
    if dns01:
        certs = [{"name": f"n{i}", "key_type": KEY_TYPE, "domains": [f"*.n{i}.{ZONE}", f"n{i}.{ZONE}"],
                  "challenge": "dns-01", "dns_provider": "primary"} for i in range(n)]
        top = {"dns": f"{{resolvers: [{pe._y(knot.hostport)}], propagation_timeout: 30s}}",
               "dns_providers": rfc2136_provider(knot, tsig, d / "tsig.secret")}
    else:
        certs = [{"name": f"n{i}", "key_type": KEY_TYPE, "domains": [f"n{i}.{ZONE}"]} for i in range(n)]
        top = None
    cfg = d / "acmed.yaml"
    outputs = pe.write_config(cfg, d, proxy.directory_url, pebble.ca_bundle, pebble.http01_port, certs,
                              extra_ca=dict({"orders_per_hour": 100000},
                                            **({"max_parallel": max_parallel} if max_parallel else {})),
                              extra_top=top)
    lag_path = d / "looplag.json"
    ddns_mark = len(knot.log_text().splitlines())
    mark = proxy.log.mark()
    rq0 = len(resolver.queries)
    st0 = knot.stats()
    argv = list(wrapper) + [str(acmed_bin), "-c", str(cfg)] + (["-v"] if debug else []) + \
        ["run", "--once", "--timeout", str(int(timeout))]
    r = pe.run_measured(argv, timeout + 30, env=pe._acmed_env({"ACMED_LOOP_LAG_REPORT": str(lag_path)}))
    st1 = knot.stats()
    rq = resolver.queries[rq0:]
    row.requests = proxy.log.count(since=mark)
    row.by_kind = dict(sorted(proxy.log.by_kind(since=mark).items()))
    row.wall, row.cpu, row.rss_kb = r.wall, r.cpu, r.maxrss_kb
    (d / "acmed.stderr").write_text(r.stderr)
    try:
        row.lag = json.loads(lag_path.read_text())
    except (OSError, ValueError):
        row.lag = None
    row.updates = st1["update"] - st0["update"]
    row.queries = st1["query"] - st0["query"]
    row.qtypes = {k[6:]: st1[k] - st0.get(k, 0) for k in sorted(st1) if k.startswith("qtype:")
                  and st1[k] - st0.get(k, 0)}
    row.pebble_queries = len(rq)
    row.pebble_qtypes = dict(sorted(collections.Counter(q[1] for q in rq).items()))
    row.acmed_queries = row.queries - row.pebble_queries
    lines = log_times(r.stderr)
    row.silences = silences(lines)
    row.update_rtt = update_rtts(lines) if debug else []
    row.update_changes = [int(m) for m in re.findall(r"one UPDATE of zone \S+ to \S+ with (\d+) change", r.stderr)]
    row.knot_ddns = [int(m) for m in re.findall(r"DDNS, processing (\d+) updates",
                                                "\n".join(knot.log_text().splitlines()[ddns_mark:]))]
    # what is left in the zone once acmed has exited (it removes its records before it exits)
    row.txt_left = len(txt_records(knot.records(ZONE)))
    rec = d / "state" / "dns" / "records.json"
    try:
        row.records_json = len(json.loads(rec.read_text())["records"]) if rec.exists() else 0
    except (OSError, ValueError, KeyError):
        row.records_json = None
    row.ok, problem = verify_all(
        [lambda c=c: pe.verify_output_dir(outputs[c["name"]], c["domains"], KEY_TYPE, pebble.root_path)
         for c in certs])
    problems = []
    if r.rc != 0 or row.ok != n:
        problems.append(f"rc={r.rc}{' (timeout)' if r.timed_out else ''}, {row.ok}/{n} verified")
    if row.txt_left:
        problems.append(f"{row.txt_left} TXT left in {ZONE}")
    if row.records_json:
        problems.append(f"{row.records_json} records still in records.json")
    row.result = "ok" if not problems else "FAILED: " + "; ".join(problems)
    row.note = problem
    return row, r.stderr


def per(v, n):
    return None if v is None else v / n


def table(rows):
    out = ["| run | certificates | names/cert | wall s | CPU s | CPU ms/cert | peak RSS MB | CA requests | "
           "requests/cert | UPDATEs | UPDATEs/cert | DNS queries | from Pebble | from acmed | acmed q/cert | "
           "TXT left | result |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        cpu_ms = per(r.cpu, r.certs / 1000) if r.cpu is not None else None
        out.append(f"| {r.client} | {r.certs} | {r.names} | {fmt(r.wall, '.2f')} | {fmt(r.cpu, '.2f')} | "
                   f"{fmt(cpu_ms, '.1f')} | {r.rss_kb / 1024:.1f} | {fmt(r.requests, 'd')} | "
                   f"{fmt(per(r.requests, r.certs), '.2f')} | {fmt(r.updates, 'd')} | "
                   f"{fmt(per(r.updates, r.certs), '.3f')} | {fmt(r.queries, 'd')} | {fmt(r.pebble_queries, 'd')} | "
                   f"{fmt(r.acmed_queries, 'd')} | {fmt(per(r.acmed_queries, r.certs), '.2f')} | "
                   f"{fmt(r.txt_left, 'd')} | {r.result} |")
    return "\n".join(out)


def qtype_table(rows):
    types = sorted({t for r in rows for t in list(r.qtypes) + list(r.pebble_qtypes)})
    out = ["| run | " + " | ".join(f"knot {t} (Pebble / acmed)" for t in types) + " |",
           "|---|" + "---:|" * len(types)]
    for r in rows:
        cells = []
        for t in types:
            k, p = r.qtypes.get(t, 0), r.pebble_qtypes.get(t, 0)
            cells.append(f"{k} ({p} / {k - p})")
        out.append(f"| {r.client} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def distribution(values):
    if not values:
        return "-"
    c = collections.Counter(values)
    return ", ".join(f"{k}x{v}" if v > 1 else str(k) for k, v in sorted(c.items(), reverse=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--certs", type=int, default=100, help="certificates in each run (default 100)")
    ap.add_argument("--acmed", default=str(pe.acmed_binary()), help="acmed binary (default $ACMED_BIN or build/acmed)")
    ap.add_argument("--max-parallel", type=int, default=None,
                    help="the CA's max_parallel (orders in flight at once; default: acmed's default, 4)")
    ap.add_argument("--skip-http01", action="store_true", help="only the dns-01 run")
    ap.add_argument("--timeout", type=float, default=600, help="per acmed run, seconds (default 600)")
    ap.add_argument("--debug", action="store_true",
                    help="run acmed with -v (debug log; adds the changes carried by each UPDATE to the output, "
                         "and its own CPU to the figures)")
    ap.add_argument("--acmed-wrapper", default="",
                    help="command prefix for acmed, e.g. \"strace -f -tt -o /tmp/s.out\" (its figures then include it)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (acmed's stderr in <run>/acmed.stderr)")
    ap.add_argument("--workdir", default="/tmp",
                    help="where the work directory is made (default /tmp; /dev/shm recommended, see README)")
    a = ap.parse_args()
    if not pe.pebble_installed():
        print("pebble / pebble-challtestsrv not installed", file=sys.stderr)
        return 2
    reason = ke.skip_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2

    ws = Path(tempfile.mkdtemp(prefix="acmed-bench-dns01-", dir=a.workdir))
    tsig = ke.new_tsig("acmed-bench")
    # an A record for every base name: Pebble's http-01 validator resolves them through knot
    knot = ke.Knot(ws / "knot", zones={ZONE: [f"n{i} A 127.0.0.1" for i in range(a.certs)]}, tsig=tsig)
    resolver = pebble = proxy = None
    rows, errs = [], {}
    try:
        resolver = ke.Resolver([knot]).start()
        pebble = pe.PebbleEnv(ws / "pebble", nonce_reject=0, dns_server=resolver.hostport)
        pebble.start()
        cert, key = pebble.tls_ca.issue_server_cert("proxy")
        proxy = FaultProxy(("127.0.0.1", 0), ("127.0.0.1", pebble.port), cert, key, pebble.tls_ca.ca_path,
                           keep_bodies=False).start()
        for kind in ("dns-01",) + (() if a.skip_http01 else ("http-01",)):
            print(f"[bench] {kind}, {a.certs} certificates...", file=sys.stderr, flush=True)
            row, err = bench_run(kind, Path(a.acmed), ws, pebble, proxy, knot, resolver, tsig, a.certs,
                                 a.timeout, a.debug, a.max_parallel, shlex.split(a.acmed_wrapper))
            rows.append(row)
            if row.result != "ok":
                errs[kind] = err
    finally:
        if proxy:
            proxy.stop()
        if pebble:
            pebble.stop()
        if resolver:
            resolver.stop()
        knot.stop()

    print(f"\nPebble 2.4 on loopback, PEBBLE_VA_NOSLEEP=1, resolving through a CNAME-following resolver in front "
          f"of knotd ({knot.hostport}, zone {ZONE}); {KEY_TYPE}; every CA request through the counting proxy; "
          f"CA max_parallel {a.max_parallel or '4 (default)'}; "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print(table(rows))
    print("\nQueries knot received, by type (of them through the Resolver, i.e. Pebble's VA / the rest, acmed's):\n")
    print(qtype_table(rows))
    notes = []
    by = {r.client: r for r in rows}
    dn, hp = by.get("dns-01"), by.get("http-01")
    if dn and dn.updates is not None:
        changes = 4 * a.certs
        notes.append(f"dns-01: {dn.updates} UPDATE messages for {changes} changes "
                     f"({2 * a.certs} TXT added, {2 * a.certs} removed): "
                     f"{changes / dn.updates if dn.updates else 0:.1f} changes per UPDATE on average")
        if dn.update_changes:
            notes.append(f"dns-01: changes per UPDATE (acmed's debug log, largest first): "
                         f"{distribution(dn.update_changes)}")
        if dn.update_rtt:
            rtt = sorted(dn.update_rtt)
            slow = [x for x in rtt if x >= SILENCE_S]
            notes.append(f"dns-01: UPDATE sent -> answered (acmed's debug log): "
                         f"median {rtt[len(rtt) // 2] * 1000:.1f} ms, max {rtt[-1] * 1000:.0f} ms; "
                         f"{len(slow)} took >= {SILENCE_S} s")
        if any(b > 1 for b in dn.knot_ddns):
            notes.append(f"dns-01: knot applied the UPDATEs in {len(dn.knot_ddns)} batches "
                         f"(its log: \"DDNS, processing N updates\", N = UPDATE messages; largest first): "
                         f"{distribution(dn.knot_ddns)}")
        notes.append(f"dns-01: TXT records in {ZONE} after the run: {dn.txt_left}; records acmed still "
                     f"remembers (state_dir/dns/records.json): {dn.records_json}")
    if dn and hp and dn.wall and hp.wall:
        notes.append(f"dns-01 / http-01: wall {dn.wall / hp.wall:.2f}x, CPU {dn.cpu / hp.cpu:.2f}x, "
                     f"CA requests {dn.requests / hp.requests:.2f}x (a dns-01 order here has two authorizations)")
    for r in rows:
        if r.silences:
            notes.append(f"{r.client}: acmed's log was silent >= {SILENCE_S} s {len(r.silences)} times, "
                         f"{sum(r.silences):.2f} s in all ({', '.join(f'{x:.2f}' for x in r.silences[:8])}"
                         f"{', ...' if len(r.silences) > 8 else ''} s)"
                         + (": nothing moved; where --debug showed it, knot answered an UPDATE ~1 s late "
                            "(README)" if r.client == "dns-01" else ""))
    for r in rows:
        if r.by_kind:
            notes.append(f"{r.client}: CA requests by kind, per certificate: "
                         + ", ".join(f"{k} {v / r.certs:.2f}" for k, v in r.by_kind.items()))
    for r in rows:
        if r.lag:
            notes.append(f"{r.client}: acmed loop lag (10 ms timer, {r.lag['samples']} samples): p50 "
                         f"{r.lag['p50_ms']:.2f} ms, p99 {r.lag['p99_ms']:.2f} ms, max {r.lag['max_ms']:.2f} ms")
    if a.acmed_wrapper:
        notes.append(f"acmed ran under `{a.acmed_wrapper}`: its wall, CPU and RSS figures include the wrapper")
    if a.debug:
        notes.append("acmed ran with -v (debug log): its CPU figures include the logging")
    if a.workdir != "/tmp":
        notes.append(f"work directory under {a.workdir}")
    for r in rows:
        if r.note:
            notes.append(f"{r.client}: {r.note}")
    print()
    for n in notes:
        print(f"- {n}")
    for kind, err in errs.items():
        tail = "\n".join(err.strip().splitlines()[-15:])
        print(f"\n{kind}: acmed stderr (tail):\n```\n{tail}\n```")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": [r.as_dict() for r in rows], "notes": notes,
                                            "loadavg": os.getloadavg()}, indent=2))
    if a.keep:
        print(f"\nwork directory kept: {ws}", file=sys.stderr)
    else:
        shutil.rmtree(ws, ignore_errors=True)
    return 0 if all(r.result == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
