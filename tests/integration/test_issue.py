# acmed end to end against Pebble (through the fault proxy): issuance of every key type, idempotence, faults, config errors, CLI.
import json
import re
from collections import defaultdict

import pytest

import pebble_env as pe
from faultproxy import Rule

pytestmark = pytest.mark.acmed


def cert_set(tag, per_type=2):
    """per_type certificates of every key type, 2 or 3 names each, names unique to tag."""
    certs = []
    for i, kt in enumerate(pe.KEY_TYPES):
        for j in range(per_type):
            base = f"{kt}-{j}.{tag}.example.com"
            n = 2 + (i + j) % 2
            certs.append({"name": f"{tag}-{kt}-{j}", "key_type": kt,
                          "domains": [base] + [f"alt{k}.{base}" for k in range(1, n)]})
    return certs


def orders_created(proxy, since=0):
    return proxy.log.count(kind="newOrder", status=201, since=since)


def issue_and_recheck(acmed, proxy, certs, timeout=240):
    """One run issues everything; a second run issues nothing and leaves every byte alone."""
    acmed.write_config(certs)
    r = acmed.run_once(timeout=timeout)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert orders_created(proxy) == len(certs), proxy.log.by_kind()

    before = {c["name"]: pe.snapshot_files(acmed.outputs[c["name"]]) for c in certs}
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=60)
    assert r.rc == 0, r.describe()
    for kind in ("newOrder", "finalize", "cert", "challenge"):
        assert proxy.log.count(kind=kind, since=mark) == 0, (kind, proxy.log.by_kind(since=mark))
    for c in certs:
        assert pe.snapshot_files(acmed.outputs[c["name"]]) == before[c["name"]], c["name"]
    acmed.verify(certs)


@pytest.mark.slow
@pytest.mark.parametrize("pebble", [{}, {"strict": True}, {"nonce_reject": 50}], indirect=True,
                         ids=["default", "strict", "nonce-reject-50"])
def test_issue_every_key_type_then_nothing_due(acmed, proxy, pebble):
    issue_and_recheck(acmed, proxy, cert_set("kt"))


def test_newnonce_status_codes_swapped(acmed, proxy):
    """HEAD newNonce answering 204 (what Let's Encrypt once did) and GET answering 200 are both accepted."""
    head = proxy.add_rule(Rule("status", method="HEAD", kind="newNonce", status=204, name="head-204"))
    get = proxy.add_rule(Rule("status", method="GET", kind="newNonce", status=200, name="get-200"))
    certs = [{"name": "nonce", "key_type": "ecdsa-p256", "domains": ["nonce.example.com", "www.nonce.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once()
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    nonces = proxy.log.select(kind="newNonce")
    assert head.hits >= 1, "acmed never sent HEAD newNonce (RFC 8555 7.2): the 204 case was not exercised"
    assert head.hits + get.hits == len(nonces), [(e["method"], e["status"]) for e in nonces]
    assert orders_created(proxy) == 1


def test_authz_202_retry_after_is_honoured(acmed, proxy):
    """While an authorization is pending the CA answers 202 + Retry-After: 1 (as Boulder once did)."""
    rule = proxy.add_rule(Rule("status", method="POST", kind="authz", if_body_status="pending", status=202,
                               headers={"Retry-After": "1"}, name="authz-202"))
    certs = [{"name": "slow1", "key_type": "ecdsa-p256", "domains": ["slow1.example.com", "www.slow1.example.com"]},
             {"name": "slow2", "key_type": "rsa-2048", "domains": ["slow2.example.com", "www.slow2.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once()
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert rule.hits >= 1

    by_path = defaultdict(list)
    for e in proxy.log.select(kind="authz"):
        by_path[e["path"]].append(e)
    # every poll that follows a 202 comes after the instant its Retry-After named (an order of
    # events: a busy machine only makes the poll later); 0.1 s for acmed's timer granularity
    repolls = [(a, b, path) for path, reqs in by_path.items() for a, b in zip(reqs, reqs[1:])
               if "authz-202" in a["rules"]]
    assert repolls, "acmed never polled an authorization again after a 202 + Retry-After"
    too_soon = [(path, round(b["mono"] - a["mono_done"], 3)) for a, b, path in repolls
                if b["mono"] < a["mono_done"] + 1.0 - 0.1]
    assert not too_soon, f"authz polled before its Retry-After (1 s): {too_soon}"
    # and it did poll until the authorization was valid (the body's status, not the HTTP code)
    for path, reqs in by_path.items():
        assert reqs[-1]["resp_json_status"] == "valid", (path, [e["resp_json_status"] for e in reqs])


@pytest.mark.pebble(nonce_reject=0)
@pytest.mark.parametrize("when", ["before", "after"], ids=["lost-request", "lost-response"])
def test_dropped_finalize_connection(acmed, proxy, when):
    """The first finalize connection dies without an answer; before Pebble saw it, or after it processed it."""
    rule = proxy.add_rule(Rule("drop", kind="finalize", nth=1, when=when, name="drop-finalize"))
    certs = [{"name": "drop", "key_type": "ecdsa-p384", "domains": ["drop.example.com", "www.drop.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=180)
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert rule.hits == 1
    assert orders_created(proxy) == 1, "a lost connection must not cost a new order"


def test_key_type_change_reissues(acmed, proxy):
    certs = [{"name": "morph", "key_type": "ecdsa-p256", "domains": ["morph.example.com", "www.morph.example.com"]},
             {"name": "still", "key_type": "rsa-2048", "domains": ["still.example.com", "www.still.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once()
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    old_morph = pe.snapshot_files(acmed.outputs["morph"])
    old_still = pe.snapshot_files(acmed.outputs["still"])

    certs[0]["key_type"] = "rsa-3072"
    acmed.write_config(certs)
    mark = proxy.log.mark()
    r = acmed.run_once()
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert orders_created(proxy, since=mark) == 1
    new_morph = pe.snapshot_files(acmed.outputs["morph"])
    assert new_morph["privkey.pem"] != old_morph["privkey.pem"]
    assert new_morph["cert.pem"] != old_morph["cert.pem"]
    assert pe.snapshot_files(acmed.outputs["still"]) == old_still


def test_live_files_changed_behind_acmeds_back(acmed, proxy, workspace):
    """acmed remembers what it found in each output_dir (state_dir/live.json, 0600) so a restart need
    not parse every key and certificate again, but only while the files are the ones it inspected: a
    key overwritten in place with another of the same size is noticed and the certificate re-issued;
    a damaged cache is ignored and rewritten, without a new order."""
    certs = [{"name": "cA", "key_type": "ecdsa-p256", "domains": ["ca.live.example.com"]},
             {"name": "cB", "key_type": "ecdsa-p256", "domains": ["cb.live.example.com"]}]
    acmed.write_config(certs)
    r = acmed.run_once()
    assert r.rc == 0, r.describe()
    cache = workspace / "state" / "live.json"
    mark = proxy.log.mark()
    r = acmed.run_once()
    assert r.rc == 0, r.describe()
    assert orders_created(proxy, since=mark) == 0
    assert cache.stat().st_mode & 0o777 == 0o600
    entries = json.loads(cache.read_text())
    assert set(entries) == {"cA", "cB"}, entries
    assert entries["cB"]["names"] == ["cb.live.example.com"] and entries["cB"]["key_type"] == "ecdsa-p256"

    # cA's key overwritten in place (cp follows the symlink: same inode, same size, other bytes)
    a_key = acmed.outputs["cA"] / "privkey.pem"
    b_key = (acmed.outputs["cB"] / "privkey.pem").read_bytes()
    assert len(b_key) == len(a_key.read_bytes())
    with open(a_key, "r+b") as f:
        f.write(b_key)
    old_b = pe.snapshot_files(acmed.outputs["cB"])
    entries["cB"]["names"] = 7                                   # a damaged entry
    cache.write_text(json.dumps(entries))
    mark = proxy.log.mark()
    r = acmed.run_once()
    assert r.rc == 0, r.describe()
    acmed.verify(certs)
    assert orders_created(proxy, since=mark) == 1, proxy.log.by_kind(since=mark)
    assert re.search(r"\[cA\] privkey.pem does not match the certificate", r.stderr), r.stderr[-3000:]
    assert "[cB]" not in "".join(line for line in r.stderr.splitlines(True) if " error" in line or " warning" in line)
    assert pe.snapshot_files(acmed.outputs["cB"]) == old_b
    again = json.loads(cache.read_text())
    assert again["cB"]["names"] == ["cb.live.example.com"], "the damaged entry was not rewritten"
    assert again["cA"]["stamp"] != entries["cA"]["stamp"], "cA's new files not recorded"
    cache.write_text("{not json")                                # a damaged file: ignored, rewritten
    mark = proxy.log.mark()
    r = acmed.run_once()
    assert r.rc == 0, r.describe()
    assert orders_created(proxy, since=mark) == 0
    assert set(json.loads(cache.read_text())) == {"cA", "cB"}


# ---------------------------------------------------------------- config errors and CLI (no CA needed)

def _base_config(workspace):
    bundle = pe.TlsCA(workspace / "tls").ca_path       # a real PEM: only the config is wrong
    certs = [{"name": "one", "key_type": "ecdsa-p256", "domains": ["one.example.com"]},
             {"name": "two", "key_type": "rsa-2048", "domains": ["two.example.com", "www.two.example.com"]}]
    cfg = workspace / "acmed.yaml"
    pe.write_config(cfg, workspace, "https://127.0.0.1:9/dir", bundle, 5002, certs)
    return cfg, cfg.read_text().splitlines()


def _line_of(lines, needle, nth=1):
    hits = [i for i, line in enumerate(lines) if needle in line]
    return hits[nth - 1]


BROKEN = {
    # name: (edit(lines) -> lines, the 1-based line the error must point at, or None for any)
    "unknown-key": (lambda L: L[:_line_of(L, "key_type") + 1] + ["    colour: \"blue\""]
                    + L[_line_of(L, "key_type") + 1:], lambda L: _line_of(L, "colour") + 1),
    "bad-key-type": (lambda L: [x.replace('"rsa-2048"', '"rsa-1024"') for x in L],
                     lambda L: _line_of(L, "rsa-1024") + 1),
    "bad-duration": (lambda L: L[:_line_of(L, "key_type") + 1] + ["    renew_before: \"30x\""]
                     + L[_line_of(L, "key_type") + 1:], lambda L: _line_of(L, "renew_before") + 1),
    "empty-domains": (lambda L: [x.replace('["one.example.com"]', "[]") for x in L],
                      lambda L: _line_of(L, "domains: []") + 1),
    "wrong-type": (lambda L: [x.replace('["one.example.com"]', '"one.example.com"') for x in L],
                   lambda L: _line_of(L, 'domains: "one.example.com"') + 1),
    "duplicate-name": (lambda L: [x.replace('name: "two"', 'name: "one"') for x in L], None),
    "yaml-syntax": (lambda L: [x.replace('["one.example.com"]', '["one.example.com"') for x in L], None),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_check_config_reports_file_line_col(acmed_bin, workspace, case):
    cfg, lines = _base_config(workspace)
    edit, where = BROKEN[case]
    lines = edit(lines)
    cfg.write_text("\n".join(lines) + "\n")
    r = pe.run_acmed(["check-config"], timeout=30, config=cfg, acmed_bin=acmed_bin)
    assert r.rc == 2, r.describe()
    m = re.search(re.escape(str(cfg)) + r":(\d+):(\d+): \S", r.stderr)
    assert m, f"no {cfg}:LINE:COL: message in stderr:\n{r.stderr}"
    if where is not None:
        want = where(lines)
        lines_reported = {int(x) for x in re.findall(re.escape(str(cfg)) + r":(\d+):\d+:", r.stderr)}
        assert want in lines_reported, f"expected line {want}, got {sorted(lines_reported)}:\n{r.stderr}"
    # the daemon refuses the same file with the same exit code, before touching the network
    r = pe.run_acmed(["run", "--once", "--timeout", "10"], timeout=30, config=cfg, acmed_bin=acmed_bin)
    assert r.rc == 2, r.describe()


def test_check_config_accepts_valid_file(acmed_bin, workspace):
    cfg, _ = _base_config(workspace)
    r = pe.run_acmed(["check-config"], timeout=30, config=cfg, acmed_bin=acmed_bin)
    assert r.rc == 0, r.describe()


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help(acmed_bin, flag):
    r = pe.run_acmed([flag], timeout=10, acmed_bin=acmed_bin)
    assert r.rc == 0, r.describe()
    assert "acmed" in r.stdout.lower(), f"stdout: {r.stdout!r}"


def test_unknown_command_is_usage_error(acmed_bin):
    r = pe.run_acmed(["frobnicate"], timeout=10, acmed_bin=acmed_bin)
    assert r.rc == 2, r.describe()
