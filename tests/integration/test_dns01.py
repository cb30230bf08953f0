# dns-01 against Pebble and a real knot: wildcard + base, a CNAME into another zone, exec and acme-dns providers, the propagation wait on a held-back secondary, a wrong TSIG key, the server down, and records removed after success, shutdown and kill -9.
"""Issue 9, "dns-01". knot (Debian) is the authoritative server of the test zones, on port 53 of its
own loopback address, with a TSIG key allowed to UPDATE them. Pebble's VA and acmed both resolve
through a recursive resolver in front of it (unbound, knot_env.Unbound: knot itself does not follow
a CNAME into another zone, nor does Pebble's Go resolver), as they would through the host's
resolver.
What the tests assert: the certificate's names, the TXT records knot serves before, during and
after, what knot logged and counted, what acmed logged and its status."""
import json
import os
import re
import signal
import stat

import pytest
from cryptography import x509

import knot_env as ke
import pebble_env as pe
from acmedns_standin import AcmeDnsStandin

ISSUE_TIMEOUT = 120
ZONES = {
    "example.test": ['_acme-challenge TXT "kept: not acmed\'s"', "www A 127.0.0.1",
                     "_acme-challenge.alias CNAME alias.other.test.",
                     # a CNAME whose owner writes what a hook would take for an option
                     "_acme-challenge.dash CNAME -rf.other.test."],
    "other.test": ["www A 127.0.0.1"],
    "acme.other.test": [],
}

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0, knot=True)]


@pytest.fixture
def tsig():
    return ke.new_tsig("acmed-key")


@pytest.fixture
def knot(request, workspace, tsig):
    reason = ke.skip_reason()
    if reason:
        pytest.skip(reason)
    m = request.node.get_closest_marker("knot")
    secondaries = m.kwargs.get("secondaries", 0) if m else 0
    k = ke.Knot(workspace / "knot", zones=ZONES, tsig=tsig, secondaries=secondaries,
                update_names=m.kwargs.get("update_names") if m else None,
                extra_ns=m.kwargs.get("extra_ns", 0) if m else 0)
    second = ke.Knot(workspace / "knot2", primary=k) if secondaries else None
    k.second = second
    yield k
    if second:
        second.stop()
    k.stop()


@pytest.fixture
def resolver(knot, workspace):
    """unbound in front of knot (the primary): Pebble's -dnsserver and acmed's dns.resolvers.  Never
    a stand-in: without unbound the test fails."""
    if not ke.unbound_installed():
        pytest.fail(ke.UNBOUND_MISSING)
    r = ke.Unbound([knot], workspace / "unbound")
    r.start()
    yield r
    r.stop()


def dns_top(resolver, propagation=None, timeout="30s"):
    top = {"dns": f"{{resolvers: [{pe._y(resolver.hostport)}], propagation_timeout: {timeout}"
                  + (f", propagation: {propagation}" if propagation else "") + "}"}
    return top


def rfc2136(knot, tsig, workspace, name="primary", secret=None, extra=""):
    path = workspace / f"{name}.secret"
    path.write_text((secret or tsig.secret) + "\n")
    os.chmod(path, 0o600)
    return (f"\n  - {{name: {name}, type: rfc2136, server: {pe._y(knot.hostport)}, tsig_key: {tsig.name}, "
            f"tsig_algorithm: {tsig.algorithm}, tsig_secret_file: {pe._y(path)}{extra}}}")


def config(acmed, certs, providers, top):
    t = dict(top)
    t["dns_providers"] = "".join(providers)
    return acmed.write_config(certs, extra_top=t)


def wild(name="wild", domains=("*.example.test", "example.test"), provider="primary"):
    return {"name": name, "key_type": "ecdsa-p256", "domains": list(domains), "challenge": "dns-01",
            "dns_provider": provider}


def sans(acmed, name):
    leaf = pe.read_pem_certs((acmed.outputs[name] / "cert.pem").read_bytes())[0]
    return sorted(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName))


def acmed_records(acmed):
    p = acmed.ws / "state" / "dns" / "records.json"
    return json.loads(p.read_text())["records"] if p.exists() else []


def test_wildcard_and_base_name_other_txt_untouched(acmed, knot, resolver, tsig, workspace):
    """Both TXT values at _acme-challenge.example.test at once; the admin's own TXT there stays."""
    certs = [wild()]
    config(acmed, certs, [rfc2136(knot, tsig, workspace)], dns_top(resolver))
    before = knot.stats()
    d = acmed.spawn("-v", "run")
    d.wait_for_stderr(r"\[wild\] certificate issued", timeout=ISSUE_TIMEOUT)
    acmed.verify(certs)
    assert sans(acmed, "wild") == ["*.example.test", "example.test"]
    # both values were served together (each answer waited for its own value on every server)
    assert len(re.findall(r"\[wild\] dns-01 for example\.test: TXT at _acme-challenge\.example\.test\. served by "
                          r"every name server", d.stderr)) == 2, d.stderr[-3000:]
    # withdrawn, each alone: only the admin's record is left, and acmed remembers nothing published
    pe.wait_until(lambda: knot.txt("_acme-challenge.example.test") == ["kept: not acmed's"], 30,
                  what="acmed's TXT values removed")
    pe.wait_until(lambda: acmed_records(acmed) == [], 30, what="state_dir/dns/records.json emptied")
    st = json.loads(acmed.run("status", "--json").stdout)["certificates"][0]
    assert st["failures"] == 0, st
    after = knot.stats()
    # one UPDATE may carry several changes: never more UPDATEs than changes (2 adds + 2 deletes)
    assert 1 <= after.get("update", 0) - before.get("update", 0) <= 4, (before, after)
    assert d.stop() == 0


def test_cname_into_another_zone(acmed, knot, resolver, tsig, workspace):
    """_acme-challenge.alias.example.test is a CNAME to alias.other.test: the record goes there."""
    certs = [wild("alias", ["alias.example.test"])]
    config(acmed, certs, [rfc2136(knot, tsig, workspace)], dns_top(resolver))
    r = acmed.run("-v", "run", "--once", "--timeout", str(ISSUE_TIMEOUT), timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert "_acme-challenge.alias.example.test. is a CNAME to alias.other.test." in r.stderr, r.stderr[-3000:]
    assert "TXT published at alias.other.test. through dns provider primary" in r.stderr
    acmed.verify(certs)
    # the UPDATE went to the other zone, and the CNAME itself was left alone
    log = knot.log_text()
    assert "[other.test.] DDNS, processing 1 updates" in log and "[example.test.] DDNS" not in log, log[-3000:]
    assert knot.query("_acme-challenge.alias.example.test", "CNAME").records("CNAME")
    assert knot.txt("alias.other.test") == []


HOOK = """#!/bin/sh
# lego's exec contract: present|cleanup FQDN VALUE; here through knsupdate with the test's key
set -eu
case "$1" in present) op=add ;; cleanup) op=del ;; *) exit 2 ;; esac
echo "hook $1 $2" >> "{log}"
printf 'server {addr} {port}\\nzone example.test.\\nupdate %s %s 60 TXT "%s"\\nsend\\n' "$op" "$2" "$3" | \\
    {knsupdate} -y {alg}:{name}:{secret}
"""


def test_exec_provider_drives_knsupdate(acmed, knot, resolver, tsig, workspace):
    hook = workspace / "dns-hook"
    hook.write_text(HOOK.format(log=workspace / "hook.log", addr=knot.address, port=knot.port,
                                knsupdate=ke.KNSUPDATE_BIN, alg=tsig.algorithm, name=tsig.name, secret=tsig.secret))
    hook.chmod(0o700)
    certs = [wild(provider="hook")]
    config(acmed, certs, [f"\n  - {{name: hook, type: exec, command: [{pe._y(hook)}], timeout: 30s}}"],
           dns_top(resolver))
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    calls = (workspace / "hook.log").read_text().split("\n")
    assert calls.count("hook present _acme-challenge.example.test.") == 2, calls
    assert calls.count("hook cleanup _acme-challenge.example.test.") == 2, calls
    assert knot.txt("_acme-challenge.example.test") == ["kept: not acmed's"]


def test_acme_dns_provider(acmed, knot, resolver, workspace):
    """_acme-challenge.ad.example.test is a CNAME into the acme-dns zone; acmed updates acme-dns."""
    adns = AcmeDnsStandin(knot, "acme.other.test", tls_ca=acmed.pebble.tls_ca)
    adns.start()
    try:
        creds = adns.register()
        knot.add_record("example.test", f"_acme-challenge.ad CNAME {creds['fulldomain']}.")
        cred_file = workspace / "acme-dns.json"
        cred_file.write_text(json.dumps({"ad.example.test": creds}))
        cred_file.chmod(0o600)
        certs = [wild("ad", ["ad.example.test"], provider="delegated")]
        config(acmed, certs, [f"\n  - {{name: delegated, type: acme-dns, url: {pe._y(adns.url)}, "
                              f"credentials_file: {pe._y(cred_file)}, ca_bundle: {pe._y(adns.ca_bundle)}}}"],
               dns_top(resolver))
        r = acmed.run_once(timeout=ISSUE_TIMEOUT)
        assert r.rc == 0, r.describe()
        acmed.verify(certs)
        ups = adns.updates(status=200)
        assert len(ups) == 1 and ups[0]["user"] == creds["username"], adns.requests
        assert creds["password"] not in r.stderr          # never in a log
    finally:
        adns.stop()


@pytest.mark.knot(secondaries=1)
def test_propagation_waits_for_a_lagging_secondary(acmed, knot, resolver, tsig, workspace):
    """ns2 serves the zone as it was until the test lets it transfer: acmed must wait for it."""
    certs = [wild("lag", ["lag.example.test"])]
    config(acmed, certs, [rfc2136(knot, tsig, workspace)], dns_top(resolver))
    d = acmed.spawn("-v", "run")
    d.wait_for_stderr(r"\[lag\] dns-01 for lag\.example\.test: TXT published", timeout=ISSUE_TIMEOUT)
    assert knot.second.txt("_acme-challenge.lag.example.test") == []
    # not answered yet: the CA has not been told to look
    assert "served by every name server" not in d.stderr
    knot.second.refresh("example.test")
    d.wait_for_stderr(r"\[lag\] certificate issued", timeout=ISSUE_TIMEOUT)
    served = d.stderr.index("served by every name server of the zone (2)")
    assert served > d.stderr.index("TXT published"), d.stderr[-3000:]
    assert d.stop() == 0


@pytest.mark.knot(secondaries=1)
def test_propagation_timeout_names_the_server(acmed, knot, resolver, tsig, workspace):
    certs = [wild("lag", ["lag.example.test"])]
    config(acmed, certs, [rfc2136(knot, tsig, workspace)], dns_top(resolver, timeout="3s"))
    r = acmed.run_once(timeout=60)
    assert r.rc != 0
    ns2 = f"ns2.example.test. ({knot.second.address}:53) answers NXDOMAIN without it"
    assert ns2 in r.stderr, r.stderr[-3000:]
    assert f"ns1.example.test. ({knot.address}:53) serves it" in r.stderr
    # the record does not stay behind
    assert knot.txt("_acme-challenge.lag.example.test") == []
    assert acmed_records(acmed) == []


def test_propagation_resolvers_names_what_a_caching_resolver_keeps(acmed, knot, resolver, tsig, workspace):
    """propagation: resolvers behind a resolver that caches, as hosts' do. Someone asked it, just
    before, for the TXT at _acme-challenge.example.test (the admin's own value is there) and at
    _acme-challenge.neg.example.test (nothing there: NXDOMAIN). It keeps both answers, without
    acmed's values: the TXT set for its TTL, the NXDOMAIN for the zone's negative TTL (both 60 s
    here). The timeout says how long the resolver may keep each answer, and what to do."""
    caching = ke.Unbound([knot], workspace / "unbound-caching", cache=True)
    caching.start()
    try:
        assert caching.txt("_acme-challenge.example.test") == ["kept: not acmed's"]
        assert caching.query("_acme-challenge.neg.example.test", "TXT").rcode == "NXDOMAIN"
        certs = [wild("apex", ["example.test"]), wild("neg", ["neg.example.test"])]
        config(acmed, certs, [rfc2136(knot, tsig, workspace)],
               dns_top(caching, propagation="resolvers", timeout="3s"))
        r = acmed.run_once(timeout=60)
        assert r.rc != 0
        host = re.escape(caching.hostport)
        for name, said in (("apex", r"NOERROR without it \(1 other TXT value\)"), ("neg", r"NXDOMAIN without it")):
            m = re.search(rf"\[{name}\] .*{host}\) answers {said}, an answer it may keep (\d+) s more \(a caching "
                          r"resolver answers from its cache .*raise propagation_timeout above it, or use "
                          r"dns: \{propagation: authoritative\}\)", r.stderr)
            assert m and 0 < int(m.group(1)) <= ke.DEFAULT_TTL, (name, r.stderr[-3000:])
        # knot had the records all along (and they do not stay behind); the resolver answered from its cache
        assert r.stderr.count("TXT published") == 2
        for name in ("_acme-challenge.example.test", "_acme-challenge.neg.example.test"):
            replies = caching.replies(name, "TXT")
            assert replies[0][3] is False and all(c for *_x, c in replies[1:]) and len(replies) > 1, replies
        assert knot.txt("_acme-challenge.example.test") == ["kept: not acmed's"]
        assert knot.txt("_acme-challenge.neg.example.test") == []
        assert acmed_records(acmed) == []
    finally:
        caching.stop()


def test_cname_to_a_name_that_is_no_host_name_is_refused(acmed, knot, resolver, tsig, workspace):
    """_acme-challenge.dash is a CNAME to "-rf.other.test.": what the CNAME's owner writes would
    reach the exec hook's argv. acmed follows no such name: the certificate fails, saying why, and
    the hook never runs."""
    log = workspace / "hook.log"
    hook = workspace / "dns-hook"
    hook.write_text(f'#!/bin/sh\necho "hook $1 $2" >> "{log}"\n')
    hook.chmod(0o700)
    certs = [wild("dash", ["dash.example.test"], provider="hook")]
    config(acmed, certs, [f"\n  - {{name: hook, type: exec, command: [{pe._y(hook)}], timeout: 30s}}"],
           dns_top(resolver))
    r = acmed.run_once(timeout=60)
    assert r.rc != 0
    assert ('_acme-challenge.dash.example.test.: a CNAME leads to "-rf.other.test.", not a host name (only '
            "letters, digits, '-' and '_'); acmed publishes nothing there") in r.stderr, r.stderr[-3000:]
    assert not log.exists(), log.read_text()
    assert acmed_records(acmed) == []


@pytest.mark.knot(extra_ns=13)
def test_a_zone_with_more_name_servers_than_acmed_checks(acmed, knot, resolver, tsig, workspace):
    """14 NS names (all knot here): acmed checks the first 13, says so, and issues."""
    certs = [wild("many", ["many.example.test"])]
    config(acmed, certs, [rfc2136(knot, tsig, workspace)], dns_top(resolver))
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert ("dns-01: zone example.test. has 14 name servers; propagation is checked on the first 13 "
            "(13 addresses)") in r.stderr, r.stderr[-3000:]
    assert "served by every name server of the zone (13)" in r.stderr
    # 13 of them (in the order the NS set came), their addresses asked once each
    asked = [n for n, t in resolver.queries if t == "A" and n.startswith("ns")]
    assert len(asked) == len(set(asked)) == 13, asked
    assert set(asked) <= {f"ns{i}.example.test." for i in range(1, 15)}, asked


def test_wrong_tsig_secret_is_the_certificates_problem(acmed, knot, resolver, tsig, workspace):
    certs = [wild("bad", ["bad.example.test"])]
    config(acmed, certs, [rfc2136(knot, tsig, workspace, secret=ke.new_tsig("acmed-key").secret)],
           dns_top(resolver))
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[bad\] .*\(certificate error, failure 1\)", timeout=ISSUE_TIMEOUT)
    msg = re.search(r"DNS UPDATE of zone example\.test\. refused by ([0-9.:]+): (\w+) \(TSIG (\w+)\)", d.stderr)
    assert msg, d.stderr[-3000:]
    assert msg.group(1) == knot.hostport and msg.group(2) == "NOTAUTH" and msg.group(3) == "BADSIG"
    st = json.loads(acmed.run("status", "--json").stdout)["certificates"][0]
    assert st["failures"] == 1 and "TSIG BADSIG" in st["last_error"], st
    job = json.loads((acmed.ws / "state" / "certs" / "bad.json").read_text())
    assert job["last_error_class"] == "certificate error", job
    assert knot.txt("_acme-challenge.bad.example.test") == []
    assert d.stop() == 0


def test_dns_server_down_is_retried(acmed, proxy, knot, resolver, tsig, workspace):
    certs = [wild("down", ["down.example.test"])]
    config(acmed, certs, [rfc2136(knot, tsig, workspace)], dns_top(resolver))
    knot.stop()
    r = acmed.run_once(timeout=60)
    assert r.rc != 0
    # the resolver says SERVFAIL (a real one, unbound), or nothing answers
    assert re.search(r"answered SERVFAIL|no answer from|connection refused", r.stderr), r.stderr[-3000:]
    # the DNS server, not the CA: this certificate's backoff (the CA is not taken for down)
    job = json.loads((acmed.ws / "state" / "certs" / "down.json").read_text())
    assert job["last_error_class"] == "local error", job
    assert "CA pebble" not in r.stderr.split("dns-01 for down.example.test", 1)[1], r.stderr[-2000:]
    knot.start()
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    # nothing had been asked of the CA: the same order was finished, not a new one made
    assert "was in flight before the restart" in r.stderr, r.stderr[-3000:]
    assert proxy.log.count(kind="newOrder", status=201) == 1


@pytest.mark.knot(secondaries=1)
def test_records_removed_on_shutdown(acmed, knot, resolver, tsig, workspace):
    certs = [wild("stop", ["stop.example.test"])]
    config(acmed, certs, [rfc2136(knot, tsig, workspace)], dns_top(resolver, timeout="10m"))
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[stop\] dns-01 for stop\.example\.test: TXT published", timeout=ISSUE_TIMEOUT)
    assert len(knot.txt("_acme-challenge.stop.example.test")) == 1
    assert d.stop() == 0
    assert "removing 1 DNS record before stopping" in d.stderr
    assert knot.txt("_acme-challenge.stop.example.test") == []
    assert acmed_records(acmed) == []


@pytest.mark.knot(secondaries=1)
def test_records_left_by_kill_9_removed_at_next_start(acmed, knot, resolver, tsig, workspace):
    certs = [wild("crash", ["crash.example.test"])]
    config(acmed, certs, [rfc2136(knot, tsig, workspace)], dns_top(resolver, timeout="10m"))
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[crash\] dns-01 for crash\.example\.test: TXT published", timeout=ISSUE_TIMEOUT)
    value = knot.txt("_acme-challenge.crash.example.test")
    assert len(value) == 1
    d.kill(signal.SIGKILL)
    d.wait()
    # remembered, readable by acmed alone
    recs = acmed_records(acmed)
    assert [(r["fqdn"], r["value"]) for r in recs] == [("_acme-challenge.crash.example.test.", value[0])], recs
    assert stat.S_IMODE((acmed.ws / "state" / "dns" / "records.json").stat().st_mode) == 0o600
    # the next start removes it before anything else; this time ns2 keeps up
    knot.second.refresh("example.test")
    d2 = acmed.spawn("run")
    d2.wait_for_stderr(r"removing TXT \S+ at _acme-challenge\.crash\.example\.test\., left by an earlier run",
                       timeout=ISSUE_TIMEOUT)
    pe.wait_until(lambda: value[0] not in knot.txt("_acme-challenge.crash.example.test"), 30,
                  what="the record left by the crash removed")
    assert d2.stop() == 0


@pytest.mark.knot(secondaries=1)
def test_reload_that_drops_the_certificate_removes_its_records(acmed, knot, resolver, tsig, workspace):
    certs = [wild("gone", ["gone.example.test"])]
    config(acmed, certs, [rfc2136(knot, tsig, workspace)], dns_top(resolver, timeout="10m"))
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[gone\] dns-01 for gone\.example\.test: TXT published", timeout=ISSUE_TIMEOUT)
    assert len(knot.txt("_acme-challenge.gone.example.test")) == 1
    config(acmed, [], [rfc2136(knot, tsig, workspace)], dns_top(resolver, timeout="10m"))
    r = acmed.run("reload")
    assert r.rc == 0, r.describe()
    pe.wait_until(lambda: knot.txt("_acme-challenge.gone.example.test") == [], 30,
                  what="the dropped certificate's record removed")
    pe.wait_until(lambda: acmed_records(acmed) == [], 30, what="state_dir/dns/records.json emptied")
    assert d.alive()
    assert d.stop() == 0


@pytest.mark.knot(update_names=["_acme-challenge.yes.example.test"])
def test_a_refused_name_fails_alone(acmed, knot, resolver, tsig, workspace):
    """The key may update only _acme-challenge.yes: only `no` fails, whether or not the two records
    went in one UPDATE (refused whole, then sent again change by change: pinned down in
    tests/unit/test_dns_rfc2136.c, where the batch is certain)."""
    certs = [wild("yes", ["yes.example.test"]), wild("no", ["no.example.test"])]
    config(acmed, certs, [rfc2136(knot, tsig, workspace)], dns_top(resolver))
    r = acmed.run("-v", "run", "--once", "--timeout", str(ISSUE_TIMEOUT), timeout=ISSUE_TIMEOUT)
    assert r.rc != 0
    assert re.search(r"\[yes\] certificate issued", r.stderr), r.stderr[-3000:]
    assert re.search(r"\[no\] dns-01 for no\.example\.test: DNS UPDATE of zone example\.test\. refused by "
                     r"\S+: (REFUSED|NOTAUTH)", r.stderr), r.stderr[-3000:]
    assert not re.search(r"\[yes\] .*refused", r.stderr)
    acmed.verify(certs[:1])
    assert knot.txt("_acme-challenge.yes.example.test") == []
    assert acmed_records(acmed) == []


HOOK_SLOW_CLEANUP = """#!/bin/sh
# present at once through knsupdate; cleanup takes a while (the stop waits for it)
set -eu
echo "hook $1 $2" >> "{log}"
if [ "$1" = cleanup ]; then
    echo "cleanup started" >> "{log}"
    while [ ! -e "{go}" ]; do sleep 0.05; done
    op=del
else
    op=add
fi
printf 'server {addr} {port}\\nzone example.test.\\nupdate %s %s 60 TXT "%s"\\nsend\\n' "$op" "$2" "$3" | \\
    {knsupdate} -y {alg}:{name}:{secret}
"""


@pytest.mark.knot(secondaries=1)
def test_sighup_while_stopping_is_ignored(acmed, knot, resolver, tsig, workspace):
    """SIGTERM while a record is published: the stop removes it (the loop runs on); a SIGHUP then
    arriving is ignored, not run on a scheduler already gone (ASan builds catch that)."""
    hook = workspace / "dns-hook"
    go = workspace / "go"
    log = workspace / "hook.log"
    hook.write_text(HOOK_SLOW_CLEANUP.format(log=log, go=go, addr=knot.address, port=knot.port,
                                             knsupdate=ke.KNSUPDATE_BIN, alg=tsig.algorithm, name=tsig.name,
                                             secret=tsig.secret))
    hook.chmod(0o700)
    certs = [wild("hup", ["hup.example.test"], provider="hook")]
    config(acmed, certs, [f"\n  - {{name: hook, type: exec, command: [{pe._y(hook)}], timeout: 60s}}"],
           dns_top(resolver, timeout="10m"))
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[hup\] dns-01 for hup\.example\.test: TXT published", timeout=ISSUE_TIMEOUT)
    d.send_signal(signal.SIGTERM)
    pe.wait_until(lambda: log.exists() and "cleanup started" in log.read_text(), 30,
                  what="the hook's cleanup started")
    d.send_signal(signal.SIGHUP)
    d.wait_for_stderr(r"SIGHUP ignored: stopping", timeout=30)
    go.touch()
    assert d.wait(60) == 0, d.stderr[-3000:]
    assert knot.txt("_acme-challenge.hup.example.test") == []
    assert acmed_records(acmed) == []
