#!/usr/bin/python3
# Soak benchmark (hardening issue): the acmed daemon for N minutes under a steady mix of load, reloads and CA faults.
"""acmed (`acmed run`, the daemon) with --certs certificates (default 200) that keep renewing,
against a local Pebble 2.4 (PEBBLE_VA_NOSLEEP=1) behind the fault proxy, for --minutes (default 10)
under a steady mix, all of it for the whole run:

  - slow connections to the http-01 listener (--slow clients, one byte a second each) and a flood
    of requests for random tokens (--flood-rate a second, 404s), from loopback addresses other
    than Pebble's validator's (soak_load.py, a process of its own);
  - control-socket churn: connect / `status` / read / disconnect (--ctl-rate a second), clients
    that connect and leave, or send half a request; clients that send requests and never read;
  - `acmed reload` every --reload-every s, the config alternating between two variants (one
    certificate's renew_before, another's exec hook);
  - CA faults from the proxy every --fault-every s, in turn: badNonce on every third POST for
    20 s, every response 2.5 s late for 10 s, a dropped connection (before or after Pebble saw the
    request), and every --outage-cycle-th time a maintenance outage (503 + Let's Encrypt's body)
    of --outage-seconds.

Renewals, two real paths at once:
  - three certificates in four are renewed through the control socket: `acmed renew NAME...
    --force` for a batch of names every --renew-every s (--renew-rate a second in all, round robin);
  - the fourth is renewed by acmed's own scheduler on ARI (RFC 9773): the proxy advertises
    renewalInfo and gives the first certificate of each of these names a window spread over the
    run (set_ari_window); acmed's timer fires inside it and it orders with "replaces". acmed
    obeys such an early replacement once per re-issue floor (max(1 h, lifetime/10)), so each of
    these certificates renews once in the run. Every other certificate's window is 60 days ahead.
  Pebble's certificates live 90 days (certificateValidityPeriod), so the lifetime rule never
  fires. The CA's orders_per_hour is raised to 100 000: it is a safety net against a renewal
  loop, and at ~2 orders a second the default (50) would park the forced renewals.

Measured: acmed's RSS and open descriptors when the first issuance has settled (idle), at the start
of the measured window (after --warmup s of the mix), every 10 s, at its end (under load) and once
the mix has stopped and acmed is idle again; renewals attempted / succeeded / failed (from the
log); log lines per minute; CA requests per renewal (at the proxy); loop lag
(ACMED_LOOP_LAG_REPORT). Growth is flagged: RSS at the end > 10 % above the start, or more
descriptors when idle again than when idle before (the extra ones listed).

Run:  /usr/bin/python3 tests/bench/soak.py [--minutes 10] [--certs 200] [--json FILE] [--keep]
"""

import argparse
import datetime
import itertools
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
import pebble_env as pe  # noqa: E402
from faultproxy import PROBLEM_JSON, FaultProxy, Rule, ari_cert_id  # noqa: E402

KEY_TYPE = "ecdsa-p256"
VALIDITY_S = 90 * 86400
LOG_RX = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3})(?:[+-]\d{4})? acmed (\w+): (?:\[([^\]]+)\] )?(.*)$")
FAIL_RX = re.compile(r"\((\w[\w-]*), failure (\d+)\); next attempt at")
MB = 1024.0


# ---------------------------------------------------------------- acmed's process

def proc_sample(pid):
    """RSS, peak RSS (kB), open descriptors, CPU seconds, threads of a live process; None when gone."""
    st = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "Threads"):
                    st[k] = int(v.split()[0])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    cpu, _ = pe._proc_stat(pid)
    return {"rss_kb": st.get("VmRSS"), "hwm_kb": st.get("VmHWM"), "fds": fds, "cpu_s": cpu,
            "threads": st.get("Threads")}


def socket_names(pid):
    """{inode: what the socket is}: 'tcp listen PORT', 'tcp to PORT' (the remote port: the proxy,
    Pebble), 'udp', 'unix PATH' (or 'unix' when unnamed), from the process's own /proc/net."""
    names = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/{pid}/net/{proto}") as f:
                next(f)
                for line in f:
                    c = line.split()
                    local, remote, st, ino = c[1], c[2], c[3], c[9]
                    lport, rport = int(local.split(":")[1], 16), int(remote.split(":")[1], 16)
                    kind = proto.rstrip("6")
                    if kind == "tcp":
                        names[ino] = f"tcp listen {lport}" if st == "0A" else f"tcp to {rport}"
                    else:
                        names[ino] = f"udp {lport}"
        except (OSError, StopIteration, IndexError, ValueError):
            pass
    try:
        with open(f"/proc/{pid}/net/unix") as f:
            next(f)
            for line in f:
                c = line.split()
                if len(c) >= 7:
                    names[c[6]] = "unix " + (Path(c[7]).name if len(c) > 7 else "(unnamed)")
    except (OSError, StopIteration):
        pass
    return names


def fd_table(pid):
    """{fd: target} as `ls -l /proc/PID/fd` shows it; sockets named by what they are
    ("socket:[123] tcp to 14000"), so two idle tables can be compared by kind."""
    out = {}
    socks = socket_names(pid)
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if t.startswith("socket:["):
            t += " " + socks.get(t[8:-1], "?")
        out[int(fd)] = t
    return dict(sorted(out.items()))


def fd_kinds(table):
    kinds = {}
    for t in table.values():
        k = "socket" if t.startswith("socket:") else "pipe" if t.startswith("pipe:") else \
            t if t.startswith("anon_inode:") else "file"
        kinds[k] = kinds.get(k, 0) + 1
    return kinds


def control_status(sock_path, timeout=30.0):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(b'{"cmd":"status"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.decode())["status"]


# ---------------------------------------------------------------- config

def cert_list(n):
    certs = []
    for i in range(n):
        c = {"name": f"s{i:03d}", "key_type": KEY_TYPE, "domains": [f"s{i:03d}.soak.example.com"]}
        if i % 10 == 5:
            c["exec"] = '["/bin/true"]'         # a deploy hook run after each new certificate
        certs.append(c)
    return certs


def write_variant(cfg, ws, proxy, pebble, certs, variant):
    """The config, variant 0 or 1 (a harmless difference: s000's renew_before, s001's exec hook),
    written to a temporary file and renamed over cfg: a reader never sees half of it."""
    cs = [dict(c) for c in certs]
    cs[0]["renew_before"] = '"30d"' if variant == 0 else '"31d"'
    if len(cs) > 1:
        cs[1]["exec"] = '["/bin/true"]' if variant == 0 else '["/bin/echo", "soak variant 1"]'
    tmp = cfg.with_name(cfg.name + ".tmp")
    outputs = pe.write_config(tmp, ws, proxy.directory_url, pebble.ca_bundle, pebble.http01_port, cs,
                              extra_ca={"orders_per_hour": 100000})
    os.replace(tmp, cfg)
    return outputs


# ---------------------------------------------------------------- drivers (threads of this process)

class Driver(threading.Thread):
    """Calls step() every `every` seconds until stopped."""

    def __init__(self, name, every):
        super().__init__(name=name, daemon=True)
        self.every = every
        self.stop_event = threading.Event()
        self.errors = []

    def run(self):
        nxt = time.monotonic()
        while not self.stop_event.is_set():
            try:
                self.step()
            except Exception as e:   # noqa: BLE001 - a driver's failure is reported, not fatal
                self.errors.append(repr(e))
            nxt += self.every
            self.stop_event.wait(max(0.0, nxt - time.monotonic()))

    def stop(self):
        self.stop_event.set()
        self.join(120)


class Renewer(Driver):
    """`acmed renew NAME... --force` for the next batch of names (round robin) every `every` s."""

    def __init__(self, a, cfg, names, batch, every):
        super().__init__("renewer", every)
        self.a, self.cfg, self.batch = a, cfg, batch
        self.cycle = itertools.cycle(names)
        self.calls = self.failed = self.renewing = 0
        self.wall = []

    def step(self):
        names = [next(self.cycle) for _ in range(self.batch)]
        r = pe.run_acmed(["renew", *names, "--force"], timeout=60, config=self.cfg, acmed_bin=self.a.acmed)
        self.calls += 1
        self.wall.append(r.wall)
        if r.rc != 0:
            self.failed += 1
            self.errors.append(f"renew rc={r.rc}: {r.stderr.strip()[-200:]}")
        for line in r.stdout.splitlines():
            if line.startswith("renewing:"):
                self.renewing += len(line.split()) - 1


class Reloader(Driver):
    """Rewrites the config (alternating variant) and runs `acmed reload` every `every` s."""

    def __init__(self, a, cfg, write, every):
        super().__init__("reloader", every)
        self.a, self.cfg, self.write = a, cfg, write
        self.variant = 0
        self.calls = self.failed = 0
        self.wall = []

    def step(self):
        self.variant ^= 1
        self.write(self.variant)
        r = pe.run_acmed(["reload"], timeout=60, config=self.cfg, acmed_bin=self.a.acmed)
        self.calls += 1
        self.wall.append(r.wall)
        if r.rc != 0 or "reloaded:" not in r.stdout:
            self.failed += 1
            self.errors.append(f"reload rc={r.rc}: {(r.stdout + r.stderr).strip()[-200:]}")


class Faults(Driver):
    """One CA fault every `every` s, in turn; an outage every `outage_cycle`-th time."""

    def __init__(self, proxy, every, outage_s, outage_cycle, seed):
        super().__init__("faults", every)
        self.proxy, self.outage_s, self.outage_cycle = proxy, outage_s, outage_cycle
        self.rng = random.Random(seed)
        self.n = 0
        self.rules = []          # (kind, Rule)
        self.small = itertools.cycle(("badNonce", "slow", "drop"))

    def step(self):
        self.n += 1
        p = self.proxy
        now = time.monotonic()
        for _, r in self.rules:                 # keep the proxy's rule list short
            end = r.window_mono()[1]
            if ((end is not None and end < now) or (r.count is not None and r.hits >= r.count)) \
                    and r in p.rules_snapshot():
                p.remove_rule(r)
        if self.outage_cycle and self.n % self.outage_cycle == 0:
            self.rules.append(("outage", p.outage(for_s=self.outage_s)))
            return
        kind = next(self.small)
        if kind == "badNonce":
            body = {"type": "urn:ietf:params:acme:error:badNonce", "detail": "JWS has an invalid anti-replay nonce"}
            r = p.add_rule(Rule("respond", method="POST", nth=range(1, 100000, 3), for_s=20, status=400,
                                headers={"Content-Type": PROBLEM_JSON}, body=body, nonce=True, name="badNonce"),
                           first=True)
        elif kind == "slow":
            r = p.slow(2.5, for_s=10)
        else:
            kind, target, when = self.rng.choice((("drop-before", "newOrder", "before"),
                                                  ("drop-after", "finalize", "after"),
                                                  ("drop-before", "authz", "before"),
                                                  ("drop-after", "cert", "after")))
            r = p.add_rule(Rule("drop", kind=target, when=when, count=1, name=f"{kind}:{target}"), first=True)
        self.rules.append((kind, r))

    def summary(self):
        out = {}
        for kind, r in self.rules:
            k = kind.split(":")[0]
            d = out.setdefault(k, {"times": 0, "requests_hit": 0})
            d["times"] += 1
            d["requests_hit"] += r.hits
        return out


class AriPlan:
    """The proxy's callback on certificate downloads: the first certificate of each ARI-driven name
    gets a renewal window of its own (start spread over the measured run, 60 s long)."""

    def __init__(self, proxy, names, first_at, last_at):
        self.proxy, self.names = proxy, list(names)
        self.first_at, self.last_at = first_at, last_at
        self.lock = threading.Lock()
        self.assigned = {}             # name -> (cert id, window start epoch)
        self.downloads = 0

    def on_cert(self, req, resp):
        if resp.status != 200 or b"-----BEGIN CERTIFICATE-----" not in resp.body:
            return None
        try:
            leaf = pe.read_pem_certs(resp.body)[0]
            cid = ari_cert_id(leaf)
            name = pe.cert_dns_names(leaf)[0].split(".", 1)[0]
        except Exception:   # noqa: BLE001 - not ours to judge here; the output check will
            return None
        with self.lock:
            self.downloads += 1
            if name in self.names and name not in self.assigned:
                k = len(self.assigned)
                span = max(0.0, self.last_at - self.first_at)
                start = max(time.time() + 30, self.first_at + span * k / max(1, len(self.names) - 1))
                self.assigned[name] = (cid, start)
                self.proxy.set_ari_window(cid, start, start + 60)
        return None


# ---------------------------------------------------------------- log

def parse_log(path):
    """[(epoch, level, cert, message)] of acmed's stderr (lines that are not log lines are kept with
    epoch None: a hook's output, say)."""
    out = []
    for line in Path(path).read_text(errors="replace").splitlines():
        m = LOG_RX.match(line)
        if not m:
            out.append((None, "other", None, line))
            continue
        t = time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
        out.append((t, m.group(3), m.group(4), m.group(5)))
    return out


def template(msg):
    """A log message with its variable parts (URLs, numbers, times) blanked: to count by kind."""
    msg = re.sub(r"https?://\S+", "URL", msg)
    msg = re.sub(r"\d{4}-\d\d-\d\dT?[\d:Z.+ -]*", "TIME ", msg)
    msg = re.sub(r"s\d{3}\.soak\.example\.com", "NAME", msg)
    return re.sub(r"\d+", "N", msg)[:150]


def issued_names(lines):
    return {x[2] for x in lines if x[3].startswith("certificate issued")}


def log_figures(lines, t0, t1):
    win = [x for x in lines if x[0] is not None and t0 <= x[0] < t1]
    issued = [x for x in win if x[3].startswith("certificate issued")]
    created = [x for x in win if re.match(r"order \S+ created", x[3])]
    failed = [x for x in win if x[1] == "error" and FAIL_RX.search(x[3])]
    fail_class = {}
    for x in failed:
        c = FAIL_RX.search(x[3]).group(1)
        fail_class[c] = fail_class.get(c, 0) + 1
    per_min = []
    m = t0
    while m + 60 <= t1 + 1e-6:
        per_min.append(sum(1 for x in win if m <= x[0] < m + 60))
        m += 60
    notable = {}
    for x in win:
        if x[1] in ("error", "warning"):
            k = f"{x[1]}: {template(x[3])}"
            notable[k] = notable.get(k, 0) + 1
    other = sum(1 for x in lines if x[0] is None)
    return {"lines": len(win), "issued": len(issued), "issued_names": {x[2] for x in issued},
            "orders_created": len(created), "failed": len(failed), "failed_by_class": fail_class,
            "per_minute": per_min, "notable": notable, "non_log_lines_total": other,
            "ari_renewals_scheduled": sum(1 for x in win if x[3].endswith("(ARI)")),
            "ca_down": sum(1 for x in win if re.match(r"CA \S+ unavailable", x[3])),
            "ca_back": sum(1 for x in win if re.match(r"CA \S+ is back", x[3]))}


# ---------------------------------------------------------------- the run

def wait_settled(sock, timeout):
    """Until no certificate is queued, ordering or starting and the CA is up; returns seconds waited or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            st = control_status(sock)
            busy = [c["name"] for c in st["certificates"] if c["state"] in ("queued", "ordering", "starting")]
            down = [c["name"] for c in st["cas"] if c["state"] != "up"]
            if not busy and not down:
                return time.monotonic() - t0
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1.0)
    return None


def run(a, ws, R):
    notes = R["notes"]
    pebble = pe.PebbleEnv(ws / "pebble", nonce_reject=a.nonce_reject,
                          config={"certificateValidityPeriod": VALIDITY_S}).start()
    cert, key = pebble.tls_ca.issue_server_cert("proxy")
    proxy = FaultProxy(("127.0.0.1", 0), ("127.0.0.1", pebble.port), cert, key, pebble.tls_ca.ca_path,
                       keep_bodies=False).start()
    acmed = load = None
    drivers = []
    try:
        d = ws / "acmed"
        d.mkdir()
        certs = cert_list(a.certs)
        names = [c["name"] for c in certs]
        ari_names = [n for i, n in enumerate(names) if i % 4 == 3]
        forced_names = [n for i, n in enumerate(names) if i % 4 != 3]
        cfg = d / "acmed.yaml"
        outputs = write_variant(cfg, d, proxy, pebble, certs, 0)
        run_s = a.minutes * 60
        # The measured window should start ~ a minute after acmed (first issuance + warm-up).
        t_plan = time.time() + a.first_issue_estimate + a.warmup
        plan = AriPlan(proxy, ari_names, t_plan + 20, t_plan + run_s - 90)
        proxy.enable_ari()
        far = time.time() + 60 * 86400
        proxy.set_ari_window("*", far, far + 86400)
        proxy.add_rule(Rule("callback", kind="cert", fn=plan.on_cert, name="ari-plan"))
        lag_path = d / "looplag.json"
        log_path = d / "acmed.stderr"
        print(f"[soak] acmed daemon with {a.certs} certificates...", file=sys.stderr, flush=True)
        t_exec = time.monotonic()
        acmed = pe.AcmedProcess(["run"], config=cfg, acmed_bin=a.acmed, env={"ACMED_LOOP_LAG_REPORT": str(lag_path)},
                                stderr_path=log_path)
        sock = str(d / "run" / "acmed.sock")
        pe.wait_until(lambda: len(issued_names(parse_log(log_path))) >= a.certs or not acmed.alive(),
                      a.issue_timeout, interval=1.0, what="first issuance")
        if not acmed.alive():
            raise RuntimeError(f"acmed exited ({acmed.returncode}) during the first issuance")
        settle = wait_settled(sock, 120)
        R["first_issuance_s"] = round(time.monotonic() - t_exec, 1)
        time.sleep(2)
        idle0, fds0 = proc_sample(acmed.pid), fd_table(acmed.pid)
        R["idle_before"] = dict(idle0, fd_kinds=fd_kinds(fds0))
        print(f"[soak] first issuance done in {R['first_issuance_s']} s (settled after {settle}); "
              f"RSS {idle0['rss_kb'] / MB:.1f} MB, {idle0['fds']} fds; starting the mix "
              f"(warm-up {a.warmup:.0f} s, then {a.minutes:g} min)...", file=sys.stderr, flush=True)

        spec = {"http_port": pebble.http01_port, "control": sock, "slow": a.slow, "flood_rate": a.flood_rate,
                "flood_threads": a.flood_threads, "ctl_rate": a.ctl_rate, "nonreaders": a.nonreaders,
                "seed": a.seed}
        load = subprocess.Popen([sys.executable, str(HERE / "soak_load.py"), json.dumps(spec)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        batch = max(1, round(a.renew_rate * a.renew_every))
        drivers = [Renewer(a, cfg, forced_names, batch, a.renew_every),
                   Reloader(a, cfg, lambda v: write_variant(cfg, d, proxy, pebble, certs, v), a.reload_every),
                   Faults(proxy, a.fault_every, a.outage_seconds, a.outage_cycle, a.seed)]
        for drv in drivers:
            drv.start()
        time.sleep(a.warmup)

        # ---- the measured window
        t0_wall, t0_mono, mark = time.time(), time.monotonic(), proxy.log.mark()
        start = proc_sample(acmed.pid)
        samples = [dict(start, t=0.0)]
        print(f"[soak] measuring: RSS {start['rss_kb'] / MB:.1f} MB, {start['fds']} fds", file=sys.stderr, flush=True)
        while time.monotonic() - t0_mono < run_s:
            time.sleep(min(a.sample_every, max(0.0, run_s - (time.monotonic() - t0_mono))))
            s = proc_sample(acmed.pid)
            if s is None:
                raise RuntimeError(f"acmed exited ({acmed.poll()}) during the run")
            s["t"] = round(time.monotonic() - t0_mono, 1)
            samples.append(s)
            if len(samples) % 6 == 1:
                print(f"[soak] {s['t']:.0f} s: RSS {s['rss_kb'] / MB:.1f} MB, {s['fds']} fds", file=sys.stderr,
                      flush=True)
        t1_wall, t1_mono = time.time(), time.monotonic()
        end = samples[-1]
        reqs = proxy.log.select(since=mark)
        fds_end_load = fd_table(acmed.pid)

        # ---- stop the mix; idle again
        for drv in drivers:
            drv.stop()
        for r in proxy.rules_snapshot():
            if r.name != "ari-plan":
                proxy.remove_rule(r)
        load.stdin.close()
        load_out = load.stdout.read()
        load.wait(60)
        R["load"] = json.loads(load_out) if load_out.strip() else {"error": f"soak_load.py rc={load.returncode}"}
        settle = wait_settled(sock, a.settle_timeout)
        time.sleep(12)       # acmed's deadline (10 s) for the last http-01 connections, and curl's idle ones
        idle1, fds1 = proc_sample(acmed.pid), fd_table(acmed.pid)
        R["idle_after"] = dict(idle1, fd_kinds=fd_kinds(fds1), settled_after_s=settle)
        R["fds_idle_before"], R["fds_idle_after"], R["fds_end_under_load"] = fds0, fds1, fds_end_load

        # ---- figures
        lines = parse_log(log_path)
        lf = log_figures(lines, t0_wall, t1_wall)
        ok = bad = 0
        problems = []
        for c in certs:
            try:
                pe.verify_output_dir(outputs[c["name"]], c["domains"], KEY_TYPE, pebble.root_path)
                ok += 1
            except (AssertionError, OSError, ValueError) as e:
                bad += 1
                problems.append(str(e)[:300])
        kinds = {}
        for e in reqs:
            kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
        order_reqs = sum(v for k, v in kinds.items() if k != "renewalInfo")
        ari_in_window = [n for n in ari_names if n in lf["issued_names"]]
        rss = [s["rss_kb"] for s in samples]
        fds = [s["fds"] for s in samples]
        R.update({
            "window_s": round(t1_mono - t0_mono, 1),
            "start": start, "end": end, "samples": samples,
            "rss_mb": {"start": start["rss_kb"] / MB, "end": end["rss_kb"] / MB, "min": min(rss) / MB,
                       "max": max(rss) / MB, "peak_hwm": end["hwm_kb"] / MB,
                       "idle_before": idle0["rss_kb"] / MB, "idle_after": idle1["rss_kb"] / MB},
            "fds": {"start": start["fds"], "end": end["fds"], "min": min(fds), "max": max(fds),
                    "idle_before": idle0["fds"], "idle_after": idle1["fds"]},
            "cpu_s": end["cpu_s"] - start["cpu_s"],
            "rss_slope_kb_min": slope_kb_per_min(samples),
            "renewals": {"orders_created": lf["orders_created"], "succeeded": lf["issued"], "failed": lf["failed"],
                         "failed_by_class": lf["failed_by_class"], "ca_down": lf["ca_down"],
                         "ca_back": lf["ca_back"],
                         "ari_driven": f"{len(ari_in_window)}/{len(ari_names)} ARI-driven names renewed in the window"},
            "log": {"lines": lf["lines"], "per_minute": lf["per_minute"], "notable": lf["notable"],
                    "non_log_lines_total": lf["non_log_lines_total"]},
            "ca_requests": {"total": len(reqs), "by_kind": kinds, "order_path": order_reqs,
                            "per_renewal": order_reqs / lf["issued"] if lf["issued"] else None},
            "outputs": {"verified": ok, "broken": bad, "problems": problems[:5]},
            "drivers": {"renew": {"calls": drivers[0].calls, "failed": drivers[0].failed,
                                  "names_renewing": drivers[0].renewing, "batch": batch,
                                  "wall_max_s": max(drivers[0].wall, default=None),
                                  "errors": drivers[0].errors[:5]},
                        "reload": {"calls": drivers[1].calls, "failed": drivers[1].failed,
                                   "wall_max_s": max(drivers[1].wall, default=None), "errors": drivers[1].errors[:5]},
                        "faults": drivers[2].summary(), "fault_errors": drivers[2].errors[:5]},
            "ari_plan": {"names": len(ari_names), "windows_set": len(plan.assigned)},
        })
    finally:
        for drv in drivers:
            drv.stop_event.set()
        if load is not None and load.poll() is None:
            load.kill()
        if acmed is not None:
            rc = acmed.stop(timeout=30)
            R["acmed_exit"] = rc
            try:
                R["loop_lag"] = json.loads((ws / "acmed" / "looplag.json").read_text())
            except (OSError, ValueError) as e:
                notes.append(f"no loop lag report ({e})")
        proxy.stop()
        pebble.stop()


def slope_kb_per_min(samples, skip_s=60.0):
    """Least-squares slope of RSS over the samples after the first skip_s seconds, kB a minute."""
    pts = [(s["t"], s["rss_kb"]) for s in samples if s["t"] >= skip_s]
    if len(pts) < 3:
        return None
    mt = sum(t for t, _ in pts) / len(pts)
    mr = sum(r for _, r in pts) / len(pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    return sum((t - mt) * (r - mr) for t, r in pts) / den * 60 if den else None


def growth(R):
    """The findings: RSS up more than 10 % over the window, or descriptors left over when idle again."""
    out = []
    r = R["rss_mb"]
    fds = [s["fds"] for s in R["samples"]]
    if len(fds) >= 6 and min(fds[-3:]) > max(fds[:3]):
        out.append(f"descriptors under load rose from {fds[:3]} (first samples) to {fds[-3:]} (last samples)")
    if r["end"] > 1.10 * r["start"]:
        out.append(f"RSS grew {r['start']:.1f} -> {r['end']:.1f} MB (+{(r['end'] / r['start'] - 1) * 100:.0f} %) "
                   f"over the window")
    if r["idle_after"] > 1.10 * r["idle_before"]:
        out.append(f"idle RSS grew {r['idle_before']:.1f} -> {r['idle_after']:.1f} MB")
    b, e = R["fds_idle_before"], R["fds_idle_after"]
    if len(e) > len(b):
        def kind(t):    # a socket by what it is, not its inode (a connection made again is the same)
            return t.split("] ", 1)[1] if t.startswith("socket:[") and "] " in t else t
        before = sorted(kind(t) for t in b.values())
        extra = [kind(t) for t in e.values()]
        for t in before:
            if t in extra:
                extra.remove(t)
        out.append(f"descriptors idle before {len(b)}, idle after {len(e)}; extra: {extra[:20]}")
    return out


def report(a, R):
    r, f, rn, ca, lg = R["rss_mb"], R["fds"], R["renewals"], R["ca_requests"], R["log"]
    pm = lg["per_minute"]
    lag = R.get("loop_lag") or {}
    L = R["load"]
    rows = [
        ("RSS start / end of the window (under load)", f"{r['start']:.1f} / {r['end']:.1f} MB"),
        ("RSS min / max over the window (every 10 s)", f"{r['min']:.1f} / {r['max']:.1f} MB"),
        ("RSS idle before the mix / idle after it", f"{r['idle_before']:.1f} / {r['idle_after']:.1f} MB"),
        ("peak RSS (VmHWM, whole life)", f"{r['peak_hwm']:.1f} MB"),
        ("RSS trend after the first minute (least squares)",
         f"{R['rss_slope_kb_min']:+.1f} kB/min" if R.get("rss_slope_kb_min") is not None else "-"),
        ("fds start / end (under load)", f"{f['start']} / {f['end']}"),
        ("fds min / max over the window", f"{f['min']} / {f['max']}"),
        ("fds idle before / idle after", f"{f['idle_before']} / {f['idle_after']}"),
        ("renewals: orders created / certificates issued / failed",
         f"{rn['orders_created']} / {rn['succeeded']} / {rn['failed']}"),
        ("  failures by class", json.dumps(rn["failed_by_class"]) if rn["failed_by_class"] else "-"),
        ("  ARI-driven", rn["ari_driven"]),
        ("CA outages seen by acmed (down / back)", f"{rn['ca_down']} / {rn['ca_back']}"),
        ("outputs verified at the end", f"{R['outputs']['verified']}/{R['outputs']['verified'] + R['outputs']['broken']}"),
        ("log lines per minute min / median / max",
         f"{min(pm)} / {statistics.median(pm):.0f} / {max(pm)}" if pm else "-"),
        ("CA requests in the window (renewalInfo included)", f"{ca['total']}"),
        ("CA requests per issued certificate (renewalInfo left out)",
         f"{ca['per_renewal']:.2f}" if ca["per_renewal"] else "-"),
        ("acmed CPU over the window", f"{R['cpu_s']:.1f} s ({R['cpu_s'] / R['window_s'] * 100:.1f} % of a core)"),
        ("loop lag p50 / p99 / max (whole life)",
         f"{lag.get('p50_ms', 0):.2f} / {lag.get('p99_ms', 0):.2f} / {lag.get('max_ms', 0):.1f} ms" if lag else "-"),
        ("reloads ok / failed (max wall)", f"{R['drivers']['reload']['calls'] - R['drivers']['reload']['failed']} / "
                                           f"{R['drivers']['reload']['failed']} ({R['drivers']['reload']['wall_max_s'] or 0:.2f} s)"),
        ("renew calls ok / failed (names asked)", f"{R['drivers']['renew']['calls'] - R['drivers']['renew']['failed']} / "
                                                  f"{R['drivers']['renew']['failed']} ({R['drivers']['renew']['names_renewing']})"),
        ("http-01 flood: requests, rate, statuses",
         f"{L['flood']['requests']}, {L['flood']['rate']}/s, {json.dumps(L['flood']['status'])}"
         + (f", errors {json.dumps(L['flood']['errors'])}" if L["flood"]["errors"] else "")),
        ("http-01 flood latency p50 / p99 / max",
         f"{L['flood']['latency_ms_p50']:.1f} / {L['flood']['latency_ms_p99']:.1f} / {L['flood']['latency_ms_max']:.0f} ms"),
        ("slow clients: connections, closed by acmed, bytes each (max)",
         f"{L['slow']['opened']}, {L['slow']['closed_by_acmed']}, {L['slow']['bytes_per_closed_conn_max']}"),
        ("control: status ok / failed, p99 / max",
         f"{L['control']['status_ok']} / {L['control']['status_failed']}, "
         f"{L['control']['status_ms_p99'] or 0:.0f} / {L['control']['status_ms_max'] or 0:.0f} ms"
         + (f", errors {json.dumps(L['control']['errors'])}" if L["control"]["errors"] else "")),
        ("control: non-readers opened, dropped by acmed",
         f"{L['nonreaders']['opened']}, {L['nonreaders']['closed_by_acmed_before_we_did']}"),
        ("CA faults (times, requests hit)", ", ".join(f"{k} {v['times']}x/{v['requests_hit']}"
                                                      for k, v in R["drivers"]["faults"].items())),
        ("acmed exit on SIGTERM", str(R.get("acmed_exit"))),
    ]
    print(f"\nacmed soak: {a.certs} certificates, {R['window_s'] / 60:.1f} min measured after {a.warmup:.0f} s of "
          f"warm-up; Pebble 2.4 (VA nosleep, 90-day certificates) behind the fault proxy; "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} CPUs, load average at the end "
          f"{open('/proc/loadavg').read().split()[0]}\n")
    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    print(f"\n- log lines per minute: {pm}")
    print("- RSS (MB) / fds every 10 s: " + " ".join(f"{s['rss_kb'] / MB:.1f}/{s['fds']}" for s in R["samples"]))
    print(f"- CA requests by kind: {json.dumps(ca['by_kind'], sort_keys=True)}")
    print(f"- fds idle before: {json.dumps(R['idle_before']['fd_kinds'])}; after: "
          f"{json.dumps(R['idle_after']['fd_kinds'])}")
    if lg["notable"]:
        print("- warnings and errors in the window, by kind:")
        for k, v in sorted(lg["notable"].items(), key=lambda kv: -kv[1])[:15]:
            print(f"    {v:6d}  {k}")
    for k in ("renew", "reload"):
        if R["drivers"][k]["errors"]:
            print(f"- {k} errors: {R['drivers'][k]['errors']}")
    if R["outputs"]["problems"]:
        print(f"- output problems: {R['outputs']['problems']}")
    for n in R["notes"]:
        print(f"- {n}")
    g = growth(R)
    R["growth"] = g
    print("\nGROWTH: " + ("; ".join(g) if g else "none (RSS within 10 % of the start, no descriptor left over)"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the measured window (default 10)")
    ap.add_argument("--certs", type=int, default=200, help="certificates (default 200)")
    ap.add_argument("--acmed", default=str(pe.REPO / "build-rel" / "acmed"),
                    help="acmed binary (default build-rel/acmed: meson setup build-rel -Dbuildtype=release)")
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds of the mix before measuring (default 30)")
    ap.add_argument("--renew-rate", type=float, default=2.0, help="forced renewals a second (default 2)")
    ap.add_argument("--renew-every", type=float, default=5.0, help="seconds between `acmed renew` calls (default 5)")
    ap.add_argument("--reload-every", type=float, default=4.0, help="seconds between reloads (default 4)")
    ap.add_argument("--fault-every", type=float, default=25.0, help="seconds between CA faults (default 25)")
    ap.add_argument("--outage-cycle", type=int, default=6, help="every Nth fault is an outage (default 6; 0: none)")
    ap.add_argument("--outage-seconds", type=float, default=8.0, help="length of an outage (default 8)")
    ap.add_argument("--slow", type=int, default=40, help="slow http-01 clients (default 40)")
    ap.add_argument("--flood-rate", type=float, default=300.0, help="http-01 404 requests a second (default 300)")
    ap.add_argument("--flood-threads", type=int, default=4)
    ap.add_argument("--ctl-rate", type=float, default=5.0, help="control-socket clients a second (default 5)")
    ap.add_argument("--nonreaders", type=int, default=4, help="control clients that never read, at a time (default 4)")
    ap.add_argument("--nonce-reject", type=int, default=0, help="Pebble's own badNonce %% (default 0: the proxy's)")
    ap.add_argument("--sample-every", type=float, default=10.0)
    ap.add_argument("--first-issue-estimate", type=float, default=20.0,
                    help="seconds the first issuance is expected to take (places the ARI windows)")
    ap.add_argument("--issue-timeout", type=float, default=900.0)
    ap.add_argument("--settle-timeout", type=float, default=180.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--workdir", default="/tmp", help="where the work directory is made (default /tmp)")
    a = ap.parse_args()
    a.acmed = Path(a.acmed)
    if not pe.pebble_installed():
        print("pebble / pebble-challtestsrv not installed", file=sys.stderr)
        return 2
    if not (a.acmed.is_file() and os.access(a.acmed, os.X_OK)):
        print(f"no acmed binary at {a.acmed}", file=sys.stderr)
        return 2
    ws = Path(tempfile.mkdtemp(prefix="acmed-soak-", dir=a.workdir))
    os.chmod(ws, 0o700)
    R = {"notes": [], "argv": sys.argv, "acmed": str(a.acmed),
         "started": datetime.datetime.now().isoformat(timespec="seconds")}
    rc = 1
    try:
        run(a, ws, R)
        report(a, R)
        rc = 0
    finally:
        if a.json:
            R2 = {k: (sorted(v) if isinstance(v, set) else v) for k, v in R.items()}
            Path(a.json).write_text(json.dumps(R2, indent=2, default=str))
        if a.keep or rc:
            print(f"\nwork directory kept: {ws}", file=sys.stderr)
        else:
            shutil.rmtree(ws, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
