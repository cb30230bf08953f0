# tls-alpn-01 (RFC 8737) against Pebble's VA: acmed's own TLS responder on tls_alpn_listen; what it answers to anything else.
"""Issue 9, "tls-alpn-01". Pebble validates by a TLS handshake to tlsPort offering ALPN acme-tls/1 with
the identifier as SNI (its reverse name for an address, RFC 8738 6) and checks the acmeIdentifier
extension. The responder completes no other handshake: no ALPN, another protocol, or a name with
no live answer get an alert."""
import json
import socket
import ssl

import pytest
from cryptography import x509

import pebble_env as pe

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]

ISSUE_TIMEOUT = 180


def handshake(port, sni, alpn):
    """A TLS handshake to 127.0.0.1:port: the certificate presented (DER), or the SSL error."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=sni) as tls:
                return tls.getpeercert(binary_form=True), tls.selected_alpn_protocol()
        except ssl.SSLError as e:
            return None, e.reason


def test_tls_alpn_01_with_pebble(acmed, proxy, pebble):
    certs = [{"name": "alpn", "key_type": "ecdsa-p256", "domains": ["alpn.example.com", "www.alpn.example.com"],
              "challenge": "tls-alpn-01"},
             {"name": "alpnip", "key_type": "ecdsa-p256", "domains": ["127.0.0.1"], "challenge": "tls-alpn-01"}]
    acmed.outputs = pe.write_config(acmed.config, acmed.ws, proxy.directory_url, pebble.ca_bundle,
                                    pebble.http01_port, certs,
                                    extra_top={"tls_alpn_listen": json.dumps([f"127.0.0.1:{pebble.tls_port}"])})
    d = acmed.spawn("run")
    for c in certs:
        d.wait_for_stderr(rf"\[{c['name']}\] certificate issued", timeout=ISSUE_TIMEOUT)
    acmed.verify([certs[0]])
    leaf = pe.read_pem_certs((acmed.outputs["alpnip"] / "cert.pem").read_bytes())[0]
    assert [str(a) for a in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            .get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    chals = [e for e in proxy.log.select(kind="challenge", method="POST") if e["status"] == 200]
    assert {e["resp_body"]["type"] for e in chals} == {"tls-alpn-01"}, chals

    # nothing live now: no certificate for anyone, acme-tls/1 or not
    for sni, alpn in (("alpn.example.com", ["acme-tls/1"]), ("alpn.example.com", ["h2", "http/1.1"]),
                      ("alpn.example.com", None), ("other.example.com", ["acme-tls/1"])):
        cert, why = handshake(pebble.tls_port, sni, alpn)
        assert cert is None, (sni, alpn, why)
    assert d.stop() == 0


def test_tls_alpn_01_config_errors(acmed):
    certs = [{"name": "w", "key_type": "ecdsa-p256", "domains": ["w.example.com"], "challenge": "tls-alpn-01",
              "webroot": "/srv/www"}]
    acmed.write_config(certs)
    r = acmed.run("check-config")
    assert r.rc == 2 and "webroot: only with the http-01 challenge (this certificate uses tls-alpn-01)" in r.stderr, \
        r.describe()
