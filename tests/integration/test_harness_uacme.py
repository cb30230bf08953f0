# Proves the harness (Pebble, challtestsrv DNS, throwaway TLS CA, fault proxy, output checks) works without acmed, using uacme.
import re

from cryptography.hazmat.primitives import serialization

import pytest

import pebble_env as pe

pytestmark = [pytest.mark.harness,
              pytest.mark.skipif(not pe.uacme_installed(), reason="uacme not installed (Debian package 'uacme')"),
              # uacme gives up after 2 badNonce retries; the harness check must not be flaky
              pytest.mark.pebble(nonce_reject=0),
              # Pebble 2.4 only: the newest Pebble also offers dns-persist-01, a challenge without a
              # token, in a random place among an authorization's challenges, and Debian 12's uacme
              # (1.7) stops at it ("failed to parse challenge") about one run in three.  What these
              # tests prove of the harness (Host passthrough, the output checks) is independent of
              # the Pebble version; test_harness_proxy.py checks the proxy on both.
              pytest.mark.pebble_builds("pebble2.4", reason="uacme 1.7 cannot parse the newest Pebble's "
                                                            "token-less dns-persist-01 challenge")]


def _issue(workspace, pebble, directory_url, domains, key_type):
    webroot = workspace / "webroot"
    with pe.Http01Responder(pebble.http01_port, webroot) as responder:
        u = pe.Uacme(workspace, directory_url, pebble.tls_ca, webroot)
        r = u.new_account()
        assert r.rc == 0, r.describe()
        r = u.issue(domains, key_type)
        assert r.rc == 0, r.describe()
    # Pebble 2.4 fetches every http-01 token 3 times
    assert responder.hits >= len(domains)
    return u, r


def test_uacme_issues_from_pebble(workspace, pebble):
    domains = ["a.example.com", "www.a.example.com"]
    u, _ = _issue(workspace, pebble, pebble.directory_url, domains, "ecdsa-p256")
    cert = pe.verify_uacme_output(u, domains, "ecdsa-p256", pebble.root_path)
    # the chain must not verify against some other root: Pebble's root changes on every start
    other = pe.PebbleEnv(workspace / "other-pebble", build=pebble.build)
    try:
        other.start()
        ok, _ = pe.openssl_verify(u.cert_path(domains).parent / "leaf-only.pem", other.root_path,
                                  u.cert_path(domains).parent / "chain-only.pem")
        assert not ok, "chain verified against an unrelated Pebble root: verification proves nothing"
    finally:
        other.stop()
    assert cert.not_valid_after > cert.not_valid_before


def test_uacme_issues_through_proxy(workspace, pebble, proxy):
    domains = ["b.example.com", "www.b.example.com", "static.b.example.com"]
    u, r = _issue(workspace, pebble, proxy.directory_url, domains, "rsa-2048")
    pe.verify_uacme_output(u, domains, "rsa-2048", pebble.root_path)

    # Host passthrough: every URL Pebble handed out points at the proxy, none at Pebble itself
    urls = re.findall(r"https://127\.0\.0\.1:(\d+)/", r.stderr)
    assert urls and set(urls) == {str(proxy.port)}, set(urls)

    kinds = proxy.log.by_kind()
    for k in ("directory", "newNonce", "newAccount", "newOrder", "authz", "challenge", "finalize", "order", "cert"):
        assert kinds.get(k, 0) >= 1, (k, kinds)
    assert "other" not in kinds, kinds
    assert proxy.log.count(kind="newOrder", status=201) == 1
    assert proxy.log.count(kind="authz") >= len(domains)
    assert all(e["status"] is not None for e in proxy.log.entries)


def test_uacme_not_reissued_when_current(workspace, pebble, proxy):
    """What 'nothing due' looks like for a client: no new order on the second run."""
    domains = ["c.example.com"]
    u, _ = _issue(workspace, pebble, proxy.directory_url, domains, "ecdsa-p384")
    before = u.cert_path(domains).read_bytes()
    mark = proxy.log.mark()
    with pe.Http01Responder(pebble.http01_port, workspace / "webroot"):
        r = u.issue(domains, "ecdsa-p384")
    assert r.rc == 1, r.describe()        # uacme: 1 = "not reissued because it is still current"
    assert proxy.log.count(kind="newOrder", since=mark) == 0
    assert u.cert_path(domains).read_bytes() == before


def _as_acmed_layout(u, domains, out, gen="gen-1"):
    """uacme's files rearranged into acmed's output layout, files as symlinks into a generation dir."""
    full = pe.read_pem_certs(u.cert_path(domains).read_bytes())
    pem = [c.public_bytes(serialization.Encoding.PEM) for c in full]
    g = out / gen
    g.mkdir(parents=True)
    (g / "privkey.pem").write_bytes(u.key_path(domains).read_bytes())
    (g / "privkey.pem").chmod(0o600)
    (g / "cert.pem").write_bytes(pem[0])
    (g / "chain.pem").write_bytes(b"".join(pem[1:]))
    (g / "fullchain.pem").write_bytes(b"".join(pem))
    for f in pe.OUTPUT_FILES:
        (out / f).symlink_to(f"{gen}/{f}")
    return g


def test_verify_output_dir_accepts_good_and_catches_bad(workspace, pebble):
    """verify_output_dir must pass real output of every key type and fail on each kind of damage."""
    webroot = workspace / "webroot"
    issued = {}
    with pe.Http01Responder(pebble.http01_port, webroot):
        u = pe.Uacme(workspace, pebble.directory_url, pebble.tls_ca, webroot)
        assert u.new_account().rc == 0
        for kt in pe.KEY_TYPES:
            domains = [f"{kt}.example.com", f"www.{kt}.example.com"]
            r = u.issue(domains, kt)
            assert r.rc == 0, r.describe()
            out = workspace / "live" / kt
            _as_acmed_layout(u, domains, out)
            pe.verify_output_dir(out, domains, kt, pebble.root_path)
            issued[kt] = (domains, out)

    domains, out = issued["ecdsa-p256"]
    g = out / "gen-1"
    other_domains, other_out = issued["ecdsa-p384"]

    def broken(mutate, restore, *expect_args):
        mutate()
        try:
            with pytest.raises(AssertionError):
                pe.verify_output_dir(out, *(expect_args or (domains, "ecdsa-p256")), pebble.root_path)
        finally:
            restore()
        pe.verify_output_dir(out, domains, "ecdsa-p256", pebble.root_path)

    saved = {f: (g / f).read_bytes() for f in pe.OUTPUT_FILES}

    def put(f, data):
        return lambda: (g / f).write_bytes(data)

    def back(f):
        return lambda: (g / f).write_bytes(saved[f])

    # wrong expectations
    broken(lambda: None, lambda: None, domains + ["extra.example.com"], "ecdsa-p256")
    broken(lambda: None, lambda: None, domains[:1], "ecdsa-p256")
    broken(lambda: None, lambda: None, domains, "ecdsa-p384")
    # damaged files
    broken(lambda: (g / "privkey.pem").chmod(0o644), lambda: (g / "privkey.pem").chmod(0o600))
    broken(put("privkey.pem", (other_out / "privkey.pem").read_bytes()), back("privkey.pem"))
    broken(put("chain.pem", b""), back("chain.pem"))
    broken(put("chain.pem", saved["cert.pem"]), back("chain.pem"))
    broken(put("fullchain.pem", saved["cert.pem"]), back("fullchain.pem"))
    broken(put("cert.pem", saved["fullchain.pem"]), back("cert.pem"))
    broken(put("cert.pem", (other_out / "cert.pem").read_bytes()), back("cert.pem"))
    broken(lambda: (out / "chain.pem").unlink(), lambda: (out / "chain.pem").symlink_to("gen-1/chain.pem"))
    # a chain from another Pebble run (another root) does not verify
    other = pe.PebbleEnv(workspace / "other-pebble", build=pebble.build)
    other.start()
    other.stop()
    broken(put("chain.pem", other.intermediate_path.read_bytes()), back("chain.pem"))
