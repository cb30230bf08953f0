# preferred_chain: among Pebble's alternate chains (PEBBLE_ALTERNATE_ROOTS), the one whose top certificate is issued by the configured name.
"""Issue 10, "Preferred chain".

Pebble with two alternate roots offers three chains for every certificate (Link rel="alternate"). With
`preferred_chain:` naming the third root, the installed chain.pem ends with a certificate issued by it;
without it, the default chain; with a name no chain has, the default chain and a line that says so.
"""
import pytest
from cryptography.x509.oid import NameOID

import pebble_env as pe

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0, env={"PEBBLE_ALTERNATE_ROOTS": "2"})]

ISSUE_TIMEOUT = 180


def cn(cert, issuer=False):
    name = cert.issuer if issuer else cert.subject
    return name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def top_issuer(out):
    chain = pe.read_pem_certs((out / "chain.pem").read_bytes())
    return cn(chain[-1], issuer=True)


def test_preferred_chain_picks_the_alternate(acmed, proxy, pebble):
    roots = [cn(pe.read_pem_certs(pebble.get(f"https://127.0.0.1:{pebble.mgmt_port}/roots/{i}"))[0])
             for i in range(3)]
    assert len(set(roots)) == 3, roots
    certs = [{"name": "alt", "key_type": "ecdsa-p256", "domains": ["alt.chain.example.com"],
              "preferred_chain": f'"{roots[2]}"'},
             {"name": "dflt", "key_type": "ecdsa-p256", "domains": ["dflt.chain.example.com"]},
             {"name": "none", "key_type": "ecdsa-p256", "domains": ["none.chain.example.com"],
              "preferred_chain": '"No Such Root CA"'}]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert top_issuer(acmed.outputs["alt"]) == roots[2]
    assert top_issuer(acmed.outputs["dflt"]) == roots[0]
    assert top_issuer(acmed.outputs["none"]) == roots[0]
    assert f"[alt] preferred_chain: the chain issued by {roots[2]}" in r.stderr, r.stderr
    assert "[none] preferred_chain: none of the CA's 2 alternate chains is issued by No Such Root CA; " \
           "keeping the default one" in r.stderr, r.stderr
    # each chain is whole: the leaf and its key as always, the chain verifies up to its own root
    for name, root in (("alt", 2), ("dflt", 0)):
        out = acmed.outputs[name]
        rootpem = pebble.get(f"https://127.0.0.1:{pebble.mgmt_port}/roots/{root}")
        (out.parent / f"{name}-root.pem").write_bytes(rootpem)
        ok, msg = pe.openssl_verify(out / "cert.pem", out.parent / f"{name}-root.pem", out / "chain.pem")
        assert ok, msg
