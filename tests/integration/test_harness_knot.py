# Proves the dns-01 harness works without acmed: knot, its secondary and counters, unbound in front of it (nothing cached, nothing outside), Pebble through both, the acme-dns stand-in.
import hashlib
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import acme_jws
import knot_env as ke
import pebble_env as pe
from acmedns_standin import AcmeDnsStandin
from faultproxy import b64u

pytestmark = [pytest.mark.harness,
              pytest.mark.skipif(ke.skip_reason() is not None, reason=ke.skip_reason() or "")]


def _procs_in(directory, program=b"knotd"):
    """The pids of `program` processes (knotd, unbound) whose config is under directory."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(program) and any(str(directory).encode() in a for a in argv):
            found.append(int(pid))
    return found


@pytest.fixture
def knots(request, workspace):
    """knots("name", **Knot kwargs): a Knot in workspace/name; all stopped at teardown, and none may
    be left running then."""
    made = []

    def make(name, **kw):
        k = ke.Knot(workspace / name, **kw)
        made.append(k)
        return k
    yield make
    failed = any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
                 for w in ("setup", "call"))
    for k in reversed(made):
        if failed:
            print(f"----- tail of {k.log_path} -----\n" + "\n".join(k.log_text().splitlines()[-40:]))
        k.stop()
    assert _procs_in(workspace) == [], "knotd left running"


@pytest.fixture
def resolvers(request, workspace):
    """resolvers([knot, ...]): an Unbound in front of them, in workspace/unbound<i>; all stopped at
    teardown, and none may be left running then."""
    if not ke.unbound_installed():
        pytest.fail(ke.UNBOUND_MISSING)
    made = []

    def make(servers):
        r = ke.Unbound(servers, workspace / f"unbound{len(made)}").start()
        made.append(r)
        return r
    yield make
    failed = any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
                 for w in ("setup", "call"))
    for r in made:
        if failed:
            print(f"----- tail of {r.log_path} -----\n" + "\n".join(r.log_text().splitlines()[-40:]))
        r.stop()
    assert _procs_in(workspace, b"unbound") == [], "unbound left running"


# ---------------------------------------------------------------- knot itself

def test_knot_serves_its_zones(knots):
    k = knots("k", zones={"example.test": ["www A 127.0.0.1", 'txt TXT "hello world"'], "other.test": []})
    assert k.port == 53 and k.address.startswith("127.0.53."), k
    for zone in ("example.test", "other.test"):
        soa = k.query(zone, "SOA")
        assert soa.rcode == "NOERROR" and soa.aa, soa
        assert k.serial(zone) == 1
        ns = k.query(zone, "NS")
        assert [r.data for r in ns.records("NS")] == [f"ns1.{zone}."]
        # the name server's address is this knot's: acmed asks it there on port 53
        assert [r.data for r in k.query(f"ns1.{zone}", "A").records("A")] == [k.address]
    assert k.txt("txt.example.test") == ["hello world"]
    assert k.query("www.example.test", "A", tcp=True).records("A")[0].data == "127.0.0.1"
    nx = k.query("nope.example.test", "TXT")
    assert nx.rcode == "NXDOMAIN" and nx.authority[0].type == "SOA", nx
    assert k.txt("nope.example.test") == []
    assert k.query("www.elsewhere.test", "A").rcode == "REFUSED"      # not its zone
    assert "[example.test.] loaded, serial none -> 1" in k.log_text()


def test_update_signed_by_the_tsig_key_and_refusals(knots):
    t = ke.new_tsig()
    k = knots("k", zones={"example.test": []}, tsig=t)
    add_a = ["zone example.test.", 'add _acme-challenge.a.example.test. 60 TXT "token-a"']
    r = k.update(add_a)
    assert r.ok, r
    assert k.txt("_acme-challenge.a.example.test") == ["token-a"]
    assert k.serial("example.test") == 2
    assert "[example.test.] DDNS, finished, serial 1 -> 2" in k.log_text()

    # what knot answers to UPDATEs it refuses (header NOTAUTH; the TSIG error as knsupdate shows it)
    add_b = ["zone example.test.", 'add _acme-challenge.b.example.test. 60 TXT "token-b"']
    wrong_secret = ke.Tsig(t.name, t.algorithm, ke.new_tsig().secret)
    assert k.update(add_b, tsig=wrong_secret).rcode == "BADSIG"
    assert k.update(add_b, tsig=ke.new_tsig("unknown-key")).rcode == "BADKEY"
    assert k.update(add_b, tsig=ke.Tsig(t.name, "hmac-sha512", t.secret)).rcode == "BADKEY"
    assert k.update(add_b, tsig=None).rcode == "NOTAUTH"
    assert k.update(["zone elsewhere.test.", 'add x.elsewhere.test. 60 TXT "x"']).rcode == "NOTAUTH"
    assert k.txt("_acme-challenge.b.example.test") == []
    assert k.serial("example.test") == 2

    # deleting exactly one value leaves the others
    assert k.update(["zone example.test.", 'add _acme-challenge.a.example.test. 60 TXT "token-a2"']).ok
    assert k.txt("_acme-challenge.a.example.test") == ["token-a", "token-a2"]
    assert k.update(["zone example.test.", 'del _acme-challenge.a.example.test. TXT "token-a"']).ok
    assert k.txt("_acme-challenge.a.example.test") == ["token-a2"]


def test_stats_count_updates_and_queries(knots):
    t = ke.new_tsig()
    k = knots("k", zones={"example.test": []}, tsig=t)
    before = k.stats()
    for i in range(3):
        assert k.update(["zone example.test.", f'add n{i}.example.test. 60 TXT "v{i}"']).ok
    assert not k.update(["zone example.test.", 'add z.example.test. 60 TXT "z"'], tsig=None).ok
    for i in range(5):
        assert k.query(f"n{i % 3}.example.test", "TXT").rcode == "NOERROR"
    after = k.stats()
    delta = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    assert delta["update"] == 4, delta            # every UPDATE received, refused ones too
    assert delta["query"] == 5, delta
    assert delta["qtype:TXT"] == 5, delta
    assert delta["tcp4"] == 4 and delta["udp4"] == 5, delta    # knsupdate -v: TCP; kdig: UDP
    # response-code counts the answers knot gives at once: queries and refused UPDATEs (knot 3.2
    # files NOTAUTH without TSIG under "BADKEY"), not accepted UPDATEs, answered once applied
    assert delta["NOERROR"] == 5 and delta["BADKEY"] == 1, delta
    assert "mod-stats.server-operation[update]" in k.stats_raw()


def test_knotc_helpers_and_journal_across_a_kill(knots):
    k = knots("k", zones={"example.test": ['keep TXT "kept"']})
    k.set_txt("_acme-challenge.x.example.test", ["one", "two"])
    assert k.txt("_acme-challenge.x.example.test") == ["one", "two"]
    k.set_txt("_acme-challenge.x.example.test", ['with "quotes" and \\', "x" * 300])
    assert k.txt("_acme-challenge.x.example.test") == ['with "quotes" and \\', "x" * 300]
    k.add_record("example.test", "alias 30 CNAME keep.example.test.")
    a = k.query("alias.example.test", "TXT")
    assert [r.type for r in a.answer] == ["CNAME", "TXT"] and a.txt() == ["kept"]   # in-zone: knot follows
    k.remove_record("example.test", "alias")
    assert k.query("alias.example.test", "TXT").rcode == "NXDOMAIN"
    k.set_txt("_acme-challenge.x.example.test", [])
    assert k.txt("_acme-challenge.x.example.test") == []
    serial = k.serial("example.test")
    assert serial == 1 + 5
    k.set_txt("_acme-challenge.y.example.test", ["survives"])
    assert "zonefile-sync: -1" in k.config_path.read_text()
    k.kill()
    assert not k.alive()
    k.start()                                           # zone file + journal
    assert k.txt("_acme-challenge.y.example.test") == ["survives"]
    assert k.serial("example.test") == serial + 1


def test_secondary_serves_the_old_zone_until_refresh(knots):
    t = ke.new_tsig()
    p = knots("primary", zones={"example.test": ['_acme-challenge.a TXT "old"'], "other.test": []},
              tsig=t, secondaries=1)
    s = knots("secondary", primary=p)
    assert s.address != p.address and s.address.startswith("127.0.53.")
    # both are name servers of the zone, each at its own address, on both servers
    for k in (p, s):
        assert sorted(r.data for r in k.query("example.test", "NS").records("NS")) == \
            ["ns1.example.test.", "ns2.example.test."]
        assert k.query("ns2.example.test", "A").records("A")[0].data == s.address
    assert s.serial("example.test") == 1 and s.txt("_acme-challenge.a.example.test") == ["old"]

    assert p.update(["zone example.test.", "del _acme-challenge.a.example.test. TXT",
                     'add _acme-challenge.a.example.test. 60 TXT "new"']).ok
    assert p.txt("_acme-challenge.a.example.test") == ["new"]
    # the primary sends no NOTIFY and the secondary asks once a day: it serves the old zone
    assert s.txt("_acme-challenge.a.example.test") == ["old"] and s.serial("example.test") == 1
    assert "NOTIFY" not in p.log_text()
    assert s.refresh("example.test") == {"example.test.": 2}
    assert s.txt("_acme-challenge.a.example.test") == ["new"]
    assert s.serial("other.test") == 1
    assert p.stats()["axfr"] == 2 and p.stats()["ixfr"] == 1     # the bootstrap of 2 zones, one refresh

    p.set_txt("_acme-challenge.a.example.test", ["newer"])
    assert s.txt("_acme-challenge.a.example.test") == ["new"]
    s.retransfer("example.test")
    assert s.txt("_acme-challenge.a.example.test") == ["newer"]


def test_held_update_waits_for_a_control_transaction(knots):
    """A knotc transaction left open makes knot hold UPDATEs (answered once it closes): a slow server."""
    t = ke.new_tsig()
    k = knots("k", zones={"example.test": []}, tsig=t)
    with k.transaction("example.test"):
        proc_out = []
        th = threading.Thread(target=lambda: proc_out.append(
            k.update(["zone example.test.", 'add held.example.test. 60 TXT "h"'])))
        th.start()
        k.wait_log(r"blocked zone update due to open control transaction")
        assert proc_out == [] and k.txt("held.example.test") == []
    th.join(timeout=30)
    assert proc_out and proc_out[0].ok, proc_out
    assert k.txt("held.example.test") == ["h"]


# ---------------------------------------------------------------- unbound in front of knot

def test_unbound_follows_cnames_across_zones(knots, resolvers):
    k = knots("k", zones={
        "example.test": ["_acme-challenge.x CNAME _acme-challenge.x.other.test.",
                         "_acme-challenge.gone CNAME nothing.other.test.",
                         "_acme-challenge.two CNAME hop.other.test."],
        "other.test": ['_acme-challenge.x TXT "target"', "hop CNAME final.example.test."]})
    k.add_record("example.test", 'final TXT "after two hops"')
    # knot alone: the CNAME, not the TXT of the other zone
    a = k.query("_acme-challenge.x.example.test", "TXT")
    assert [r.type for r in a.answer] == ["CNAME"], a
    r = resolvers([k])
    assert r.hostport == f"127.0.0.1:{r.port}"
    a = r.query("_acme-challenge.x.example.test", "TXT")
    assert a.rcode == "NOERROR" and a.ra and not a.aa, a
    assert [(x.name, x.type) for x in a.answer] == [("_acme-challenge.x.example.test.", "CNAME"),
                                                     ("_acme-challenge.x.other.test.", "TXT")]
    assert a.txt() == ["target"]
    assert r.query("_acme-challenge.x.example.test", "TXT", tcp=True).txt() == ["target"]
    assert r.txt("_acme-challenge.two.example.test") == ["after two hops"]
    gone = r.query("_acme-challenge.gone.example.test", "TXT")
    assert gone.rcode == "NXDOMAIN" and [x.type for x in gone.answer] == ["CNAME"], gone
    # what it was asked, from its log; its own readiness questions left out
    assert r.asked("_acme-challenge.x.example.test", "TXT") == [("_acme-challenge.x.example.test.", "TXT")] * 2
    assert r.queries[0] == ("_acme-challenge.x.example.test.", "TXT"), r.queries
    assert not [q for q in r.queries if q[0].startswith("_unbound-ready.")]
    assert ("_acme-challenge.gone.example.test.", "TXT", "NXDOMAIN", False) in r.replies()
    assert "stub-no-cache: yes" in r.config_path.read_text()


def test_unbound_caches_nothing_from_knot(knots, resolvers):
    """A TXT value changed in knot is answered at once, through a CNAME too, and an NXDOMAIN just
    answered does not hide the record added right after (no waiting in between)."""
    k = knots("k", zones={"example.test": ["_acme-challenge.c CNAME _acme-challenge.c.other.test."],
                          "other.test": []})
    r = resolvers([k])
    for name, published in (("_acme-challenge.d.example.test", "_acme-challenge.d.example.test"),
                            ("_acme-challenge.c.example.test", "_acme-challenge.c.other.test")):
        assert r.query(name, "TXT").rcode == "NXDOMAIN"
        for i in range(3):
            k.set_txt(published, [f"value {i}"])
            assert r.txt(name) == [f"value {i}"]
        k.set_txt(published, [])
        assert r.query(name, "TXT").rcode == "NXDOMAIN"
    # NODATA at a name that exists, then the TXT added there
    k.add_record("example.test", "_acme-challenge.e A 127.0.0.1")
    assert r.txt("_acme-challenge.e.example.test") == []
    k.set_txt("_acme-challenge.e.example.test", ["now"])
    assert r.txt("_acme-challenge.e.example.test") == ["now"]
    assert r.replies() and not [x for x in r.replies() if x[3]], r.replies()      # none from its cache


def test_unbound_refuses_names_outside_the_test_zones_at_once(knots, resolvers):
    k = knots("k", zones={"example.test": ["out CNAME www.example.com.", "out2 CNAME x.elsewhere.test."]})
    r = resolvers([k])
    t0 = time.monotonic()
    # in .test but in no test zone: REFUSED (not the NXDOMAIN of unbound's default local zone test.)
    assert r.query("www.elsewhere.test", "A").rcode == "REFUSED"
    assert r.query("www.example.com", "A").rcode == "REFUSED"        # the internet: not asked
    assert r.query("example.com", "SOA").rcode == "REFUSED"
    # a CNAME leading out of the test zones: SERVFAIL, no root server asked
    for name in ("out.example.test", "out2.example.test"):
        a = r.query(name, "A")
        assert a.rcode == "SERVFAIL", a
    assert time.monotonic() - t0 < 5
    assert k.query("example.test", "SOA").rcode == "NOERROR"
    assert r.query("example.test", "SOA").records("SOA")


def test_unbound_asks_a_restarted_knot_at_once(knots, resolvers):
    """knot stopped: no answer (unbound keeps asking) or SERVFAIL, never an old one; started again:
    asked at once (Knot.start() makes unbound forget the outage and the questions still under way)."""
    k = knots("k", zones={"example.test": ['_acme-challenge.x TXT "one"', '_acme-challenge.y TXT "one"']})
    r = resolvers([k])
    assert r.txt("_acme-challenge.x.example.test") == ["one"]
    k.stop()
    for name in ("_acme-challenge.x.example.test", "_acme-challenge.y.example.test"):
        down = ke.dig("127.0.0.1", r.port, name, "TXT", timeout=2, tries=1, recurse=True)
        assert down.rcode != "NOERROR" and down.txt() == [], down
    k.start()
    k.set_txt("_acme-challenge.y.example.test", ["two"])
    t0 = time.monotonic()
    assert r.txt("_acme-challenge.x.example.test") == ["one"]
    assert r.txt("_acme-challenge.y.example.test") == ["two"]
    assert time.monotonic() - t0 < 1


def test_unbound_add_zone_and_teardown(workspace, knots):
    k = knots("k", zones={"example.test": []})
    k2 = knots("k2", zones={"other.test": ['www TXT "two"']})
    with ke.Unbound([k], workspace / "u") as r:
        assert r.query("www.other.test", "TXT").rcode == "REFUSED"
        r.add_zone("other.test", (k2.address, k2.port))
        assert r.txt("www.other.test") == ["two"]
        assert _procs_in(workspace, b"unbound") == [r.proc.pid]
    assert _procs_in(workspace, b"unbound") == [] and not r.alive()


def test_unbound_killed_when_python_exits(workspace):
    """An Unbound nobody stopped dies with the Python process that started it (atexit)."""
    if not ke.unbound_installed():
        pytest.fail(ke.UNBOUND_MISSING)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import knot_env as ke; "
            "r = ke.Unbound([], sys.argv[2]).start(); print(r.proc.pid, flush=True)")
    p = subprocess.run([sys.executable, "-c", code, str(Path(ke.__file__).parent), str(workspace / "u")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    pid = int(p.stdout.split()[0])
    assert not Path(f"/proc/{pid}").exists() or _procs_in(workspace, b"unbound") == []
    assert _procs_in(workspace, b"unbound") == []


# ---------------------------------------------------------------- Pebble validating dns-01 through knot

def _pebble(workspace, build, dns_server, name="pebble"):
    if not build.installed():
        if build.newest:
            pytest.fail(f"{build.id}: {build.pebble_bin} missing: {build.where}")
        pytest.skip(f"{build.id}: not installed ({build.where})")
    return pe.PebbleEnv(workspace / name, build=build, dns_server=dns_server, nonce_reject=0, authz_reuse=0).start()


def _dns01(pebble, names, publish, timeout=60.0):
    """Drive Pebble's VA: one order for names, each dns-01 challenge's TXT value handed to
    publish(name, value) before the challenge is answered; {name: (authz status, error detail)}."""
    c = acme_jws.Client(pebble.directory_url, pebble.ca_bundle)
    key = ec.generate_private_key(ec.SECP256R1())
    st, h, _ = c.post(c.directory["newAccount"], key, {"termsOfServiceAgreed": True})
    assert st == 201, (st, _)
    kid = h["Location"]
    st, _, order = c.post(c.directory["newOrder"], key,
                          {"identifiers": [{"type": "dns", "value": n} for n in names]}, kid=kid)
    assert st == 201, (st, order)
    thumb = b64u(hashlib.sha256(json.dumps(acme_jws.jwk(key), sort_keys=True, separators=(",", ":"))
                                .encode()).digest())
    pending = {}
    for url in order["authorizations"]:
        _, _, authz = c.post(url, key, None, kid=kid)
        ch = next(x for x in authz["challenges"] if x["type"] == "dns-01")
        value = b64u(hashlib.sha256(f"{ch['token']}.{thumb}".encode()).digest())
        publish(authz["identifier"]["value"], value)
        pending[authz["identifier"]["value"]] = (url, ch["url"])
    for name, (_, ch_url) in pending.items():
        st, _, body = c.post(ch_url, key, {}, kid=kid)
        assert st == 200, (st, body)
    out = {}
    for name, (url, _) in pending.items():
        def done():
            _, _, a = c.post(url, key, None, kid=kid)
            return a if a["status"] != "pending" else None
        a = pe.wait_until(done, timeout, interval=0.1, what=f"Pebble validating {name}")
        errors = [ch.get("error", {}).get("detail") for ch in a["challenges"] if ch.get("error")]
        out[name] = (a["status"], errors[0] if errors else None)
    return out


def _cname_zones():
    return {"example.test": ["_acme-challenge.cname CNAME _acme-challenge.cname.other.test."],
            "other.test": [], "acme.other.test": []}


def _publisher(k):
    def publish(name, value):
        target = "_acme-challenge.cname.other.test" if name == "cname.example.test" else f"_acme-challenge.{name}"
        k.set_txt(target, [value])
    return publish


def test_pebble_validates_through_unbound(workspace, knots, resolvers, pebble_build):
    k = knots("k", zones=_cname_zones())
    r = resolvers([k])
    pebble = _pebble(workspace, pebble_build, r.hostport)
    try:
        before = k.stats()
        got = _dns01(pebble, ["direct.example.test", "cname.example.test"], _publisher(k))
    finally:
        pebble.stop()
    assert got == {"direct.example.test": ("valid", None), "cname.example.test": ("valid", None)}, got
    assert f"Using custom DNS resolver for ACME challenges: {r.hostport}" in pebble.pebble_log.read_text()
    assert r.asked("_acme-challenge.cname.example.test", "TXT"), r.queries
    assert k.stats().get("qtype:TXT", 0) > before.get("qtype:TXT", 0)


def test_pebble_through_knot_alone_does_not_follow_a_cname_into_another_zone(workspace, knots, pebble_build):
    """What unbound is for: Pebble's VA (Go's resolver) does not follow a CNAME, and knot adds no
    record of another zone to its answer, so Pebble sees no TXT behind the CNAME."""
    k = knots("k", zones=_cname_zones())
    pebble = _pebble(workspace, pebble_build, k.hostport)
    try:
        got = _dns01(pebble, ["direct.example.test", "cname.example.test"], _publisher(k))
    finally:
        pebble.stop()
    assert got["direct.example.test"] == ("valid", None), got
    assert got["cname.example.test"][0] == "invalid", got
    assert "No TXT records found" in got["cname.example.test"][1], got


# ---------------------------------------------------------------- the acme-dns stand-in

def _http(standin, method, path, body=None, headers=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(standin.url + path, data=data, method=method, headers=headers or {})
    ctx = ssl.create_default_context(cafile=str(standin.ca_bundle)) if standin.ca_bundle else None
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


def _txt_value(seed):
    return b64u(hashlib.sha256(seed.encode()).digest())        # 43 characters, like a dns-01 value


def test_acmedns_standin_api_and_knot(workspace, knots):
    k = knots("k", zones={"other.test": [], "acme.other.test": []})
    tls = pe.TlsCA(workspace / "tls")
    with AcmeDnsStandin(k, "acme.other.test", tls_ca=tls) as a:
        assert a.url.startswith("https://127.0.0.1:")
        st, reg = _http(a, "POST", "/register")
        assert st == 201, reg
        assert set(reg) == {"username", "password", "fulldomain", "subdomain", "allowfrom"}
        assert len(reg["password"]) == 40 and reg["allowfrom"] == []
        assert reg["fulldomain"] == f"{reg['subdomain']}.acme.other.test"
        auth = {"X-Api-User": reg["username"], "X-Api-Key": reg["password"]}
        v1, v2, v3 = _txt_value("1"), _txt_value("2"), _txt_value("3")

        assert _http(a, "POST", "/update", {"subdomain": reg["subdomain"], "txt": v1}, auth) == (200, {"txt": v1})
        assert k.txt(reg["fulldomain"]) == [v1]
        assert k.query(reg["fulldomain"], "TXT").answer[0].ttl == 1
        assert _http(a, "POST", "/update", {"subdomain": reg["subdomain"], "txt": v2}, auth)[0] == 200
        assert k.txt(reg["fulldomain"]) == sorted([v1, v2])
        assert _http(a, "POST", "/update", {"subdomain": reg["subdomain"], "txt": v3}, auth)[0] == 200
        assert k.txt(reg["fulldomain"]) == sorted([v2, v3])           # the two most recent

        bad_key = dict(auth, **{"X-Api-Key": reg["password"][:-1] + ("A" if reg["password"][-1] != "A" else "B")})
        assert _http(a, "POST", "/update", {"subdomain": reg["subdomain"], "txt": v1}, bad_key) == \
            (401, {"error": "forbidden"})
        assert _http(a, "POST", "/update", {"subdomain": reg["subdomain"], "txt": v1},
                     {"X-Api-User": "not-a-uuid", "X-Api-Key": reg["password"]})[0] == 401
        other = a.register()
        assert _http(a, "POST", "/update", {"subdomain": other["subdomain"], "txt": v1}, auth) == \
            (401, {"error": "forbidden"})
        assert _http(a, "POST", "/update", {"subdomain": reg["subdomain"], "txt": "short"}, auth) == \
            (400, {"error": "bad_txt"})
        assert _http(a, "POST", "/update", {"subdomain": reg["subdomain"], "txt": v1[:-1] + "="}, auth) == \
            (400, {"error": "bad_txt"})
        assert k.txt(reg["fulldomain"]) == sorted([v2, v3])
        assert _http(a, "POST", "/register", b"{not json") == (400, {"error": "malformed_json_payload"})
        assert _http(a, "POST", "/register", {"allowfrom": ["300.1.2.3/8"]}) == \
            (400, {"error": "invalid_allowfrom_cidr"})
        st, fenced = _http(a, "POST", "/register", {"allowfrom": ["10.0.0.0/8"]})
        assert st == 201 and fenced["allowfrom"] == ["10.0.0.0/8"]
        assert _http(a, "POST", "/update", {"subdomain": fenced["subdomain"], "txt": v1},
                     {"X-Api-User": fenced["username"], "X-Api-Key": fenced["password"]})[0] == 401
        a.inject(500, {"error": "db_error"})
        assert _http(a, "POST", "/update", {"subdomain": reg["subdomain"], "txt": v1}, auth) == \
            (500, {"error": "db_error"})
        assert _http(a, "GET", "/health") == (200, None)
        assert [r["status"] for r in a.updates()] == [200, 200, 200, 401, 401, 401, 400, 400, 401, 500]
        assert a.updates(200)[0]["user"] == reg["username"] and a.updates(200)[0]["body"]["txt"] == v1


def test_acmedns_standin_with_pebble(workspace, knots, resolvers, pebble_build):
    """The whole acme-dns path: _acme-challenge.<name> CNAME <subdomain>.acme.other.test (another
    zone), the value sent to the stand-in's API, knot serving it, Pebble validating it."""
    k = knots("k", zones=_cname_zones())
    r = resolvers([k])
    with AcmeDnsStandin(k, "acme.other.test") as a:
        assert a.url.startswith("http://127.0.0.1:")
        reg = a.register()
        k.add_record("example.test", f"_acme-challenge.app CNAME {reg['fulldomain']}.")
        auth = {"X-Api-User": reg["username"], "X-Api-Key": reg["password"]}

        def publish(name, value):
            assert _http(a, "POST", "/update", {"subdomain": reg["subdomain"], "txt": value}, auth)[0] == 200
        pebble = _pebble(workspace, pebble_build, r.hostport)
        try:
            got = _dns01(pebble, ["app.example.test"], publish)
        finally:
            pebble.stop()
    assert got == {"app.example.test": ("valid", None)}, got
    assert r.asked("_acme-challenge.app.example.test", "TXT")
