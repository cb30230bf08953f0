# acmed as a systemd service, driven as systemd and an admin would: notify, watchdog, reload, status, renew, sockets.
"""Issue 4's "Done when" list (what test_deploy.py does not already cover):

- NOTIFY_SOCKET datagrams in order across start, reload and stop (READY=1, STATUS=, RELOADING=1 +
  MONOTONIC_USEC, READY=1, STOPPING=1), WATCHDOG=1 at half of WATCHDOG_USEC when WATCHDOG_PID is
  acmed's pid (and none when it names another process);
- `acmed reload` adding, removing and changing certificates; a broken YAML on reload (through the
  CLI and through a bare SIGHUP): the daemon keeps serving with the old configuration;
- `acmed status` table and `--json`, from the running daemon and from state_dir without one;
- `acmed renew NAME | --force | unknown names | without a daemon`;
- the http-01 listener taken from an inherited socket (LISTEN_FDS/LISTEN_PID).

Every daemon is a child of its own session; the acmed fixture stops it at teardown.
"""
import datetime
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives import serialization

import pebble_env as pe
import waits
from faultproxy import PROBLEM_JSON, Response, Rule
from service_env import NotifySocket, ServiceDaemon

pytestmark = pytest.mark.acmed

STATUS_TOP = {"daemon", "generated_at", "cas", "certificates"}
STATUS_CA = {"name", "state", "next_probe", "waiting", "running"}
STATUS_CERT = {"name", "ca", "domains", "key_type", "output_dir", "not_before", "not_after", "days_left", "state",
               "next_action", "next_at", "failures", "last_error", "last_error_at", "order_url", "ari",
               "issuer", "issued_by", "test_ca"}
TABLE_COLUMNS = ("NAME", "DOMAINS", "NOT AFTER", "DAYS", "ISSUER", "STATE", "NEXT", "LAST ERROR")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ISSUE_TIMEOUT = 180       # a failure bound only: every wait is for an event


# ---------------------------------------------------------------- helpers

def cert(name, key_type="ecdsa-p256", n=2, tag="svc"):
    base = f"{name}.{tag}.example.com"
    return {"name": name, "key_type": key_type, "domains": [base] + [f"www{k}.{base}" for k in range(1, n)]}


def start(acmed, env=None, own_pid_vars=(), listen_sock=None, config=None, args=("run",)):
    """acmed -c CONFIG run, as systemd would start it; registered for teardown with the fixture's daemons."""
    n = len(acmed.daemons) + 1
    d = ServiceDaemon(acmed.bin, config or acmed.config, list(args), acmed.ws / f"acmed-daemon{n}.stderr", env=env,
                      own_pid_vars=own_pid_vars, listen_sock=listen_sock)
    acmed.daemons.append(d)
    return d


def cli(acmed, *args, config=None, env=None, timeout=60):
    r = pe.run_acmed(list(args), timeout=timeout, config=config or acmed.config, acmed_bin=acmed.bin, env=env)
    acmed.runs.append((args, r))
    (acmed.ws / f"acmed-run{len(acmed.runs)}.stderr").write_text(r.stderr)
    return r


def status_json(acmed, config=None):
    r = cli(acmed, "status", "--json", config=config)
    assert r.rc == 0, r.describe()
    try:
        return json.loads(r.stdout)
    except ValueError as e:
        raise AssertionError(f"`acmed status --json` printed no JSON ({e}):\n{r.stdout}") from e


def status_json_timed(acmed, config=None):
    """(status, t0, t1): the wall clock read before and after `acmed status --json`, which acmed
    generated in between."""
    t0 = time.time()
    st = status_json(acmed, config=config)
    return st, t0, time.time()


def by_name(st):
    return {c["name"]: c for c in st["certificates"]}


def wait_issued(acmed, d, certs, timeout=ISSUE_TIMEOUT):
    """Wait until every certificate's files are there and check them; returns {name: leaf}."""
    def ready():
        if not d.alive():
            raise AssertionError(f"acmed exited ({d.returncode}):\n{d.stderr[-3000:]}")
        return all((acmed.outputs[c["name"]] / "fullchain.pem").exists() for c in certs)
    pe.wait_until(ready, timeout, what="certificates " + ", ".join(c["name"] for c in certs))
    return {c["name"]: pe.verify_output_dir(acmed.outputs[c["name"]], c["domains"], c["key_type"],
                                            acmed.pebble.root_path) for c in certs}


def order_names(entry):
    p = entry.get("payload")
    if not isinstance(p, dict):
        return set()
    return {i.get("value") for i in p.get("identifiers", []) if isinstance(i, dict)}


def orders_for(proxy, c, since=0, status=None):
    """newOrder requests (since a log mark) asking for any of c's names."""
    names = set(c["domains"])
    return proxy.log.select(kind="newOrder", since=since, status=status, where=lambda e: order_names(e) & names)


def epoch(rfc3339):
    return datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def z(dt):
    """A naive-UTC datetime (cryptography's not_valid_after) as acmed prints it."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def http01_get(port, token):
    """Status code of GET http://127.0.0.1:PORT/.well-known/acme-challenge/TOKEN."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/acme-challenge/{token}", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def refuses(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def reject_first_orders(proxy, c, times=1):
    """newOrder for c's names is answered 400 rejectedIdentifier (after Pebble made the order) `times` times."""
    names = set(c["domains"])
    lock = threading.Lock()
    left = [times]
    detail = f"policy forbids issuing for {c['domains'][0]}"

    def fn(req, resp):
        ids = {i.get("value") for i in (req.payload or {}).get("identifiers", []) if isinstance(i, dict)} \
            if isinstance(req.payload, dict) else set()
        with lock:
            if not (ids & names) or left[0] <= 0:
                return None
            left[0] -= 1
        headers = [("Content-Type", PROBLEM_JSON)]
        if resp.get_header("Replay-Nonce"):
            headers.append(("Replay-Nonce", resp.get_header("Replay-Nonce")))
        body = json.dumps({"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": detail}).encode()
        return Response(400, headers, body)

    proxy.add_rule(Rule("callback", kind="newOrder", method="POST", fn=fn, name=f"reject-{c['name']}"))
    return detail


# ---------------------------------------------------------------- 1. sd_notify

def test_notify_ready_reload_stop_in_order(acmed, pebble, workspace):
    one, two = cert("n1"), cert("n2", n=1)
    acmed.write_config([one])
    ns = NotifySocket(workspace)
    try:
        d = start(acmed, env={"NOTIFY_SOCKET": str(ns.path)})
        i_ready = ns.wait_for("READY", "1", proc=d)
        # Type=notify: READY=1 means the http-01 listener is up
        assert not refuses(pebble.http01_port), "READY=1 sent before the http-01 listener accepts connections"
        wait_issued(acmed, d, [one])
        i_status = ns.wait_for("STATUS", since=i_ready, proc=d)
        msgs = ns.messages
        assert re.match(r"1 certificate\b", msgs[i_status].fields["STATUS"]), msgs[i_status]
        assert all(not m.has("RELOADING") and not m.has("STOPPING") for m in msgs), msgs
        assert all(m.pid == d.pid for m in msgs), f"datagrams not from acmed's pid {d.pid}: {msgs}"

        # SIGHUP (what `systemctl reload` ends up in) with a second certificate added
        acmed.write_config([one, two])
        mark = ns.mark()
        t_hup = time.monotonic_ns() // 1000
        d.send_signal(signal.SIGHUP)
        i_rel = ns.wait_for("RELOADING", "1", since=mark, proc=d)
        rel = ns.messages[i_rel]
        # systemd (Type=notify-reload) wants MONOTONIC_USEC in the same datagram as RELOADING=1
        assert "MONOTONIC_USEC" in rel.fields, rel
        usec = int(rel.fields["MONOTONIC_USEC"])
        t_recv = int(rel.mono * 1e6)
        assert t_hup <= usec <= t_recv + 1000, \
            f"MONOTONIC_USEC={usec} not between SIGHUP ({t_hup}) and its arrival ({t_recv}) on CLOCK_MONOTONIC"
        assert not any(m.has("READY") for m in ns.messages[mark:i_rel]), "READY=1 before RELOADING=1"
        i_ready2 = ns.wait_for("READY", "1", since=i_rel + 1, proc=d)
        pe.wait_until(lambda: any(m.fields.get("STATUS", "").startswith("2 certificates")
                                  for m in ns.messages[i_ready2:]), 10,
                      what=f"STATUS= '2 certificates ...' after the reload: {ns.messages[i_rel:]}")
        wait_issued(acmed, d, [one, two])

        # SIGTERM: STOPPING=1, exit 0
        mark = ns.mark()
        d.send_signal(signal.SIGTERM)
        assert d.wait(30) == 0, d.stderr[-3000:]
        msgs = ns.messages[:waits.notify_drain(ns)]    # all acmed sent, received
        stops = [i for i, m in enumerate(msgs) if m.has("STOPPING", "1")]
        assert stops and stops[0] >= mark, f"no STOPPING=1 after SIGTERM: {msgs[mark:]}"
        assert not any(m.has("READY") or m.has("RELOADING") for m in msgs[stops[0]:]), msgs[stops[0]:]
        # the whole life, in order: READY, RELOADING, READY, STOPPING
        seq = [k for m in msgs for k in ("READY", "RELOADING", "STOPPING") if m.has(k, "1")]
        dedup = [k for i, k in enumerate(seq) if i == 0 or seq[i - 1] != k]
        assert dedup == ["READY", "RELOADING", "READY", "STOPPING"], msgs
        assert not any(m.has("WATCHDOG") for m in msgs), "WATCHDOG=1 without WATCHDOG_USEC"
        assert all(m.pid == d.pid for m in msgs), msgs
    finally:
        ns.close()


def test_watchdog_keepalive_at_half_the_interval(acmed, workspace):
    """WATCHDOG_USEC=400000 with WATCHDOG_PID=acmed: acmed arms its keep-alive at half of it (it logs
    the period it chose), WATCHDOG=1 keeps coming from acmed's pid, and never more often than that
    period allows; with WATCHDOG_PID naming another process, no keep-alive is ever armed."""
    one = cert("wd", n=1)
    acmed.write_config([one])
    ns = NotifySocket(workspace)
    try:
        env = {"NOTIFY_SOCKET": str(ns.path), "WATCHDOG_USEC": "400000"}
        t_spawn = time.monotonic()
        d = start(acmed, env=env, own_pid_vars=("WATCHDOG_PID",), args=("run", "-v"))
        ns.wait_for("READY", "1", proc=d)
        waits.wait_log(d, r"^watchdog: keep-alive every ", what="the keep-alive armed")
        armed = waits.grep(d.stderr, r"^watchdog: keep-alive every ")
        assert [x.msg for x in armed] == ["watchdog: keep-alive every 200 ms"], armed
        wait_issued(acmed, d, [one])
        mark = ns.mark()
        pe.wait_until(lambda: sum(m.has("WATCHDOG", "1") for m in ns.messages[mark:]) >= 10 or not d.alive(),
                      ISSUE_TIMEOUT, what="10 more WATCHDOG=1")
        assert d.alive(), d.stderr[-3000:]
        pings = [m for m in ns.messages if m.has("WATCHDOG", "1")]
        t_now = time.monotonic()                 # after every ping counted was received
        assert all(m.pid == d.pid for m in pings), pings
        # all of them were sent after acmed started: at one per 200 ms at most
        assert len(pings) <= (t_now - t_spawn) / 0.2 + 1, f"{len(pings)} WATCHDOG=1 in {t_now - t_spawn:.1f} s"
        assert d.stop() == 0

        # WATCHDOG_PID naming another process: the watchdog is not acmed's (sd_watchdog_enabled(3))
        mark = ns.mark()
        d2 = start(acmed, env=dict(env, WATCHDOG_PID=str(os.getpid())), args=("run", "-v"))
        ns.wait_for("READY", "1", since=mark, proc=d2)
        waits.daemon_status(acmed, d2)      # its loop runs: the watchdog decision is behind it
        assert not waits.grep(d2.stderr, r"^watchdog"), d2.stderr[-3000:]
        assert not any(m.has("WATCHDOG") for m in ns.messages[mark:]), ns.messages[mark:]
        assert d2.stop() == 0
    finally:
        ns.close()


# ---------------------------------------------------------------- 2. reload: add, remove, change

def test_reload_adds_removes_and_changes(acmed, proxy):
    a, b, c = cert("ra"), cert("rb", "ecdsa-p384", n=1), cert("rc", "rsa-2048")
    acmed.write_config([a, b, c])
    d = start(acmed)
    old = wait_issued(acmed, d, [a, b, c])
    assert len(proxy.log.select(kind="newOrder", status=201)) == 3
    snap = {x["name"]: pe.snapshot_files(acmed.outputs[x["name"]]) for x in (a, b, c)}
    before = by_name(status_json(acmed))
    assert set(before) == {"ra", "rb", "rc"}

    a2 = dict(a, key_type="rsa-2048")
    dd = cert("rd", n=3)
    outputs_b = acmed.outputs["rb"]
    acmed.write_config([a2, c, dd])
    mark = proxy.log.mark()
    r = cli(acmed, "reload")
    assert r.rc == 0, r.describe()
    assert r.stdout.strip() == "reloaded: 3 certificates (1 added, 1 removed, 1 changed)", r.stdout

    def done():
        if not d.alive():
            raise AssertionError(d.stderr[-3000:])
        if not (acmed.outputs["rd"] / "fullchain.pem").exists():
            return False
        key = serialization.load_pem_private_key((acmed.outputs["ra"] / "privkey.pem").read_bytes(), None)
        return pe.key_type_of(key) == "rsa-2048"
    pe.wait_until(done, ISSUE_TIMEOUT, what="ra re-issued with rsa-2048 and rd issued")
    new_a = pe.verify_output_dir(acmed.outputs["ra"], a2["domains"], "rsa-2048", acmed.pebble.root_path)
    assert pe.der(new_a) != pe.der(old["ra"])
    pe.verify_output_dir(acmed.outputs["rd"], dd["domains"], dd["key_type"], acmed.pebble.root_path)

    # the removed certificate: files left in place, untouched, no order; the unchanged one: nothing at all
    assert pe.snapshot_files(outputs_b) == snap["rb"]
    assert pe.snapshot_files(acmed.outputs["rc"]) == snap["rc"]
    assert not orders_for(proxy, c, since=mark), "unchanged certificate rc was ordered again"
    assert not orders_for(proxy, b, since=mark), "removed certificate rb was ordered again"
    assert len(orders_for(proxy, a, since=mark, status=201)) == 1
    assert len(orders_for(proxy, dd, since=mark, status=201)) == 1
    # (a newOrder answered badNonce is sent again: count the orders made)
    assert proxy.log.count(kind="newOrder", status=201, since=mark) == 2, proxy.log.by_kind(since=mark)

    after = by_name(status_json(acmed))
    assert set(after) == {"ra", "rc", "rd"}
    assert after["ra"]["key_type"] == "rsa-2048"
    # unchanged: same certificate, same timer
    for k in ("not_after", "next_action", "next_at", "state", "failures"):
        assert after["rc"][k] == before["rc"][k], (k, before["rc"], after["rc"])
    assert d.alive()


# ---------------------------------------------------------------- 3. a broken YAML on reload

def test_broken_yaml_on_reload_keeps_the_daemon_serving(acmed, pebble, proxy, workspace):
    certs = [cert("ok1"), cert("ok2", "rsa-2048", n=1)]
    acmed.write_config(certs)
    cfg = acmed.config
    good_text = cfg.read_text()
    # the CLI needs a configuration to find runtime_dir: a copy of the running one, for status
    good = workspace / "good.yaml"
    shutil.copy(cfg, good)
    d = start(acmed)
    wait_issued(acmed, d, certs)
    snap = {c["name"]: pe.snapshot_files(acmed.outputs[c["name"]]) for c in certs}
    before = by_name(status_json(acmed))
    mark = proxy.log.mark()

    # `acmed reload` with an unknown key: exit 1, FILE:LINE:COL of that key
    lines = good_text.splitlines()
    at = next(i for i, x in enumerate(lines) if "key_type" in x) + 1
    lines.insert(at, "    colour: blue")
    cfg.write_text("\n".join(lines) + "\n")
    r = cli(acmed, "reload")
    assert r.rc == 1, r.describe()
    assert re.search(re.escape(str(cfg)) + rf":{at + 1}:\d+: \S", r.stderr), \
        f"no {cfg}:{at + 1}:COL: in:\n{r.stderr}"
    assert "reloaded" not in r.stdout

    def still_serving(tag):
        assert d.alive(), f"{tag}: acmed exited:\n{d.stderr[-3000:]}"
        st = status_json(acmed, config=good)
        assert st["daemon"] is True, tag
        now = by_name(st)
        assert set(now) == set(before), (tag, sorted(now))
        for name, c in now.items():
            for k in ("domains", "key_type", "not_after", "state", "next_action", "next_at", "failures"):
                assert c[k] == before[name][k], (tag, name, k, before[name][k], c[k])
        assert http01_get(pebble.http01_port, "no-such-token") == 404, tag

    still_serving("after `acmed reload` of a file with an unknown key")

    # a bare SIGHUP with a YAML syntax error: logged with FILE:LINE:COL, the old configuration stays
    cfg.write_text(good_text.replace("certificates:\n", "certificates:\n  - name: [unclosed\n", 1))
    loc = re.compile(re.escape(str(cfg)) + r":(\d+):(\d+): \S")
    n_before = len(loc.findall(d.stderr))
    d.send_signal(signal.SIGHUP)
    pe.wait_until(lambda: len(loc.findall(d.stderr)) > n_before or not d.alive(), 15,
                  what="the daemon logging FILE:LINE:COL after SIGHUP")
    line = int(loc.findall(d.stderr)[-1][0])
    assert 1 <= line <= len(cfg.read_text().splitlines()) + 1, d.stderr[-2000:]
    still_serving("after SIGHUP with a YAML syntax error")

    # a valid file the daemon itself refuses (state_dir cannot change): the CLI gets the daemon's answer
    moved = good_text.replace(str(workspace / "state"), str(workspace / "state2"), 1)
    assert moved != good_text
    cfg.write_text(moved)
    r = cli(acmed, "reload")
    assert r.rc == 1, r.describe()
    assert "reload failed" in r.stderr and "state_dir" in r.stderr, r.stderr
    still_serving("after a refused state_dir change")

    # nothing was ordered nor written meanwhile; a good reload works again and keeps both certificates
    assert proxy.log.count(kind="newOrder", since=mark) == 0, proxy.log.by_kind(since=mark)
    three = cert("ok3", n=1)
    acmed.write_config(certs + [three])
    r = cli(acmed, "reload")
    assert r.rc == 0, r.describe()
    assert r.stdout.strip() == "reloaded: 3 certificates (1 added, 0 removed, 0 changed)", r.stdout
    wait_issued(acmed, d, [three])
    for c in certs:
        assert pe.snapshot_files(acmed.outputs[c["name"]]) == snap[c["name"]], c["name"]
    assert proxy.log.count(kind="newOrder", status=201, since=mark) == 1


# ---------------------------------------------------------------- 4. status: table and JSON

def check_status_json(st, daemon, certs, outputs, leafs, t0, t1, ari=False):
    """st: `acmed status --json` run between the wall-clock times t0 and t1. ari: the CA has
    renewalInfo (the newest Pebble): every issued certificate shows the CA's window and the
    instant chosen in it, which is its next renewal; else "ari" is null."""
    assert STATUS_TOP <= set(st), sorted(st)
    assert st["daemon"] is daemon
    assert RFC3339.match(st["generated_at"]), st["generated_at"]
    gen = epoch(st["generated_at"])
    assert int(t0) <= gen <= t1, (st["generated_at"], t0, t1)
    assert [ca["name"] for ca in st["cas"]] == ["pebble"]
    for ca in st["cas"]:
        assert STATUS_CA <= set(ca), sorted(ca)
        assert ca["state"] == "up" and ca["next_probe"] is None, ca
        assert isinstance(ca["waiting"], int) and isinstance(ca["running"], int), ca
    assert [c["name"] for c in st["certificates"]] == [c["name"] for c in certs]
    for want, c in zip(certs, st["certificates"]):
        assert STATUS_CERT <= set(c), sorted(c)
        assert c["ca"] == "pebble" and c["domains"] == want["domains"] and c["key_type"] == want["key_type"], c
        assert c["output_dir"] == str(outputs[want["name"]]), c
        assert isinstance(c["failures"], int)
        for k in ("not_before", "not_after", "next_at", "last_error_at"):
            assert c[k] is None or RFC3339.match(c[k]), (k, c[k])
        leaf = leafs.get(want["name"])
        if leaf is not None:
            assert c["not_before"] == z(leaf.not_valid_before) and c["not_after"] == z(leaf.not_valid_after), c
            assert c["days_left"] == int((epoch(c["not_after"]) - gen) // 86400), c
            assert c["state"] == "valid" and c["next_action"] == "renew", c
            assert epoch(c["not_before"]) < epoch(c["next_at"]) < epoch(c["not_after"]), c
            assert c["failures"] == 0 and c["last_error"] is None, c
            if not ari:
                assert c["ari"] is None, c
                continue
            a = c["ari"]
            assert isinstance(a, dict) and set(a) == {"window_start", "window_end", "chosen"}, c
            assert all(RFC3339.match(a[k]) for k in a), a
            start, end, chosen = epoch(a["window_start"]), epoch(a["window_end"]), epoch(a["chosen"])
            assert epoch(c["not_before"]) <= start <= chosen <= end <= epoch(c["not_after"]), c
            assert c["next_at"] == a["chosen"], c


def ari_known(acmed, names):
    """The status once the daemon has the CA's renewalInfo for every certificate of names."""
    def known():
        st = status_json(acmed)
        return st if all(by_name(st)[n]["ari"] for n in names) else None
    return pe.wait_until(known, 30, interval=0.3, what="renewalInfo of " + ", ".join(names))


def parse_table(out):
    """(preamble lines, [row dict by column title], trailing lines) of `acmed status`."""
    lines = out.splitlines()
    hi = next((i for i, x in enumerate(lines) if x.startswith("NAME")), None)
    assert hi is not None, f"no header line in:\n{out}"
    header = lines[hi]
    assert re.fullmatch(r"NAME\s+DOMAINS\s+NOT AFTER\s+DAYS\s+ISSUER\s+STATE\s+NEXT\s+LAST ERROR\s*", header), header
    starts = [header.index(t) for t in TABLE_COLUMNS]
    rows, i = [], hi + 1
    while i < len(lines) and lines[i].strip() and not lines[i].startswith("CA "):
        x = lines[i]
        cells = [x[s:e].strip() for s, e in zip(starts, starts[1:] + [None])]
        # a cell never spills into the next column
        assert all(s == 0 or x[s - 1] == " " for s in starts[1:]), f"misaligned row:\n{header}\n{x}"
        rows.append(dict(zip(TABLE_COLUMNS, cells)))
        i += 1
    return lines[:hi], rows, lines[i:]


def check_table(out, st0, st1, certs):
    """`acmed status` (the table) printed between the JSON statuses st0 and st1: each row says what
    both say, its NEXT column what it was at some instant between them."""
    pre, rows, post = parse_table(out)
    assert [r["NAME"] for r in rows] == [c["name"] for c in certs], out
    gen0, gen1 = epoch(st0["generated_at"]), epoch(st1["generated_at"])
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    for r, c, c1 in zip(rows, st0["certificates"], st1["certificates"]):
        for k in ("domains", "not_after", "state", "next_action", "next_at", "last_error"):
            assert c[k] == c1[k], (k, c, c1)
        nd = len(c["domains"])
        assert r["DOMAINS"] == c["domains"][0] + (f" +{nd - 1}" if nd > 1 else ""), (r, out)
        if c["not_after"]:
            assert r["NOT AFTER"] == c["not_after"][:10], (r, out)      # TZ=UTC
            assert r["DAYS"] in (str(c["days_left"]), str(c1["days_left"])), (r, out)
            # Pebble's intermediate, flagged: nobody trusts a test CA's certificates
            assert c["issuer"].startswith("Pebble Intermediate CA") and c["test_ca"] is True, c
            assert c["issued_by"] == c1["issued_by"] and c["issued_by"].startswith("https://127.0.0.1:"), c
            assert r["ISSUER"] == c["issuer"][:40] + " (TEST CA)", (r, out)
        else:
            assert r["NOT AFTER"] == "-" and r["DAYS"] == "-" and r["ISSUER"] == "-", (r, out)
            assert c["issuer"] is None and c["test_ca"] is False, c
        assert r["STATE"] == c["state"], (r, out)
        m = re.fullmatch(r"(\w+) (now|in (\d+)([smhd]))", r["NEXT"])
        assert m and m.group(1) == c["next_action"], (r, out)
        nxt = epoch(c["next_at"])
        if m.group(3):
            n, u = int(m.group(3)), units[m.group(4)]
            # floor((next - now) / unit) for some now in [gen0, gen1]
            assert n * u <= nxt - gen0 and nxt - gen1 < (n + 1) * u, (r, c["next_at"], gen0, gen1, out)
        else:
            assert nxt <= gen1, (r, c["next_at"], gen1, out)
        assert r["LAST ERROR"] == (c["last_error"] or "-"), (r, out)
    assert any(re.match(r"CA pebble: up\b", x) for x in post), out
    return pre


def test_status_table_and_json_with_and_without_daemon(acmed, proxy):
    web, mail, bad = cert("web"), cert("mail", "rsa-2048", n=1), cert("bad", n=1)
    certs = [web, mail, bad]
    detail = reject_first_orders(proxy, bad, times=100)
    acmed.write_config(certs)
    t_start = time.time()
    d = start(acmed)
    leafs = wait_issued(acmed, d, [web, mail])
    pe.wait_until(lambda: by_name(status_json(acmed))["bad"]["failures"] >= 1, ISSUE_TIMEOUT, interval=0.3,
                  what="bad failing once")
    ari = acmed.pebble.build.has_ari
    if ari:     # after its issuance, each certificate's renewalInfo is fetched (a moment later)
        ari_known(acmed, ["web", "mail"])
    st, t0, t1 = status_json_timed(acmed)
    check_status_json(st, True, certs, acmed.outputs, leafs, t0, t1, ari=ari)
    b = by_name(st)["bad"]
    assert b["failures"] == 1 and b["state"] == "backoff" and b["next_action"] == "retry", b
    assert detail in (b["last_error"] or ""), b
    assert b["not_after"] is None and b["days_left"] is None, b
    assert 30 <= epoch(b["next_at"]) - epoch(b["last_error_at"]) <= 120, f"certificate error: retry after ~1 min: {b}"
    assert int(t_start) <= epoch(b["last_error_at"]) <= epoch(st["generated_at"]), (b, t_start)

    r = cli(acmed, "status", env={"TZ": "UTC", "COLUMNS": "400"})
    assert r.rc == 0, r.describe()
    pre = check_table(r.stdout, st, status_json(acmed), certs)
    assert not any("not running" in x for x in pre), r.stdout

    # no daemon: the same from the output directories and state_dir
    assert d.stop() == 0
    st2, t0, t1 = status_json_timed(acmed)
    check_status_json(st2, False, certs, acmed.outputs, leafs, t0, t1, ari=ari)
    b2 = by_name(st2)["bad"]
    for k in ("failures", "last_error", "last_error_at", "next_at", "state", "next_action"):
        assert b2[k] == b[k], (k, b, b2)      # the backoff survives in state_dir
    r = cli(acmed, "status", env={"TZ": "UTC", "COLUMNS": "400"})
    assert r.rc == 0, r.describe()
    pre = check_table(r.stdout, st2, status_json(acmed), certs)
    assert any("not running" in x for x in pre), r.stdout


# ---------------------------------------------------------------- 5. renew

def test_renew_not_due_force_unknown_backoff_and_no_daemon(acmed, proxy):
    rn, other, flaky = cert("rn"), cert("other", n=1), cert("flaky", n=1)
    reject_first_orders(proxy, flaky, times=1)
    certs = [rn, other, flaky]
    acmed.write_config(certs)
    d = start(acmed)
    old = wait_issued(acmed, d, [rn, other])
    pe.wait_until(lambda: by_name(status_json(acmed))["flaky"]["failures"] >= 1, ISSUE_TIMEOUT, interval=0.3,
                  what="flaky failing once")
    snap = {c["name"]: pe.snapshot_files(acmed.outputs[c["name"]]) for c in (rn, other)}
    mark = proxy.log.mark()

    # valid and not due: said so, nothing ordered (acmed(8): left alone unless --force)
    r = cli(acmed, "renew", "rn")
    assert r.rc == 0, r.describe()
    assert "not due" in r.stdout and "rn" in r.stdout, r.stdout
    # an unknown name: exit 2, and then nothing is renewed, not even the known, due one
    r = cli(acmed, "renew", "flaky", "nosuch")
    assert r.rc == 2, r.describe()
    assert "nosuch" in r.stderr, r.stderr
    r = cli(acmed, "renew", "nosuch")
    assert r.rc == 2, r.describe()
    r = cli(acmed, "renew")
    assert r.rc == 2, r.describe()
    # the daemon answered each request after acting on it: had it started a renewal, it would have
    # logged it and its status would say so (a job queued or ordering) before the answer
    assert not waits.grep(d.stderr, r"^renewal requested"), d.stderr[-3000:]
    st = by_name(status_json(acmed))
    assert (st["rn"]["state"], st["other"]["state"], st["flaky"]["state"]) == ("valid", "valid", "backoff"), st
    assert proxy.log.count(kind="newOrder", since=mark) == 0, proxy.log.by_kind(since=mark)

    # --force: a new order, new files
    r = cli(acmed, "renew", "--force", "rn")
    assert r.rc == 0, r.describe()
    assert re.search(r"renewing:.*\brn\b", r.stdout), r.stdout
    pe.wait_until(lambda: pe.snapshot_files(acmed.outputs["rn"]).get("cert.pem") != snap["rn"]["cert.pem"],
                  ISSUE_TIMEOUT, what="rn renewed")
    new = pe.verify_output_dir(acmed.outputs["rn"], rn["domains"], rn["key_type"], acmed.pebble.root_path)
    assert pe.der(new) != pe.der(old["rn"])
    assert len(orders_for(proxy, rn, since=mark, status=201)) == 1

    # in backoff (1 min after a certificate error): `acmed renew` retries at once, not at next_at
    backoff = by_name(status_json(acmed))["flaky"]
    assert backoff["state"] == "backoff", backoff
    r = cli(acmed, "renew", "flaky")
    assert r.rc == 0, r.describe()
    assert re.search(r"renewing:.*\bflaky\b", r.stdout), r.stdout
    assert waits.grep(d.stderr, r"^renewal requested$", cert="flaky"), d.stderr[-3000:]
    now = by_name(status_json(acmed))["flaky"]
    assert now["state"] in ("queued", "ordering") or (now["state"] == "valid" and now["failures"] == 0), \
        f"`acmed renew` left flaky waiting for its backoff: {now}"
    wait_issued(acmed, d, [flaky])
    assert pe.snapshot_files(acmed.outputs["other"]) == snap["other"]
    assert not orders_for(proxy, other, since=mark)

    # no daemon: exit 1
    assert d.stop() == 0
    r = cli(acmed, "renew", "rn")
    assert r.rc == 1, r.describe()
    assert "not running" in r.stderr, r.stderr
    r = cli(acmed, "reload")
    assert r.rc == 1, r.describe()


# ---------------------------------------------------------------- 6. socket activation

def test_socket_activation_http01_from_inherited_socket(acmed, pebble, proxy, workspace):
    certs = [cert("sa"), cert("sb", "ecdsa-p384", n=1)]
    unused = pe.free_port()
    acmed.outputs = pe.write_config(acmed.config, workspace, proxy.directory_url, pebble.ca_bundle, unused, certs)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", pebble.http01_port))
    lsock.listen(64)
    try:
        d = start(acmed, env={"LISTEN_FDS": "1"}, own_pid_vars=("LISTEN_PID",), listen_sock=lsock)
    finally:
        lsock.close()         # acmed holds the only copy now
    wait_issued(acmed, d, certs)
    assert proxy.log.count(kind="challenge") >= 3
    assert refuses(unused), f"something listens on the configured listen port {unused} under socket activation"
    assert http01_get(pebble.http01_port, "no-such-token") == 404
    assert d.stop() == 0

    # LISTEN_PID naming another process: not activated, acmed binds `listen` itself
    d2 = start(acmed, env={"LISTEN_FDS": "1", "LISTEN_PID": "1"})
    pe.wait_until(lambda: not refuses(unused) or not d2.alive(), 15, what=f"acmed listening on {unused}")
    assert d2.alive(), d2.stderr[-3000:]
    assert http01_get(unused, "no-such-token") == 404
    assert d2.stop() == 0
