# IP address identifiers (RFC 8738) through http-01: the order names them as "ip", the certificate carries them as iPAddress SANs.
"""Issue 9, "IP identifiers". Pebble's VA validates an IP identifier's http-01 challenge by connecting
to the address itself: 127.0.0.1, where acmed's listener answers (loopback only)."""
import ipaddress

import pytest
from cryptography import x509

import pebble_env as pe

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]

ISSUE_TIMEOUT = 180


def test_ip_and_dns_names_in_one_certificate(acmed, proxy, pebble):
    certs = [{"name": "addr", "key_type": "ecdsa-p256", "domains": ["127.0.0.1"]},
             {"name": "both", "key_type": "rsa-2048", "domains": ["both.ip.example.com", "127.0.0.1"]}]
    acmed.write_config(certs)
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    orders = proxy.log.select(kind="newOrder", method="POST", status=201)
    idents = sorted(tuple(sorted((i["type"], i["value"]) for i in o["payload"]["identifiers"])) for o in orders)
    assert idents == [(("dns", "both.ip.example.com"), ("ip", "127.0.0.1")), (("ip", "127.0.0.1"),)], idents
    for c in certs:
        leaf = pe.read_pem_certs((acmed.outputs[c["name"]] / "cert.pem").read_bytes())[0]
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
        assert sorted(san.get_values_for_type(x509.DNSName)) == [d for d in c["domains"] if d[0].isalpha()]
    # a second run finds both certificates as configured: nothing ordered
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=ISSUE_TIMEOUT)
    assert r.rc == 0, r.describe()
    assert proxy.log.count(kind="newOrder", since=mark) == 0, proxy.log.by_kind(since=mark)


def test_an_address_written_two_ways_is_one(acmed):
    certs = [{"name": "v6", "key_type": "ecdsa-p256", "domains": ["2001:DB8::1", "2001:db8:0::1"]}]
    acmed.write_config(certs)
    r = acmed.run("check-config")
    assert r.rc == 2 and "duplicate entry \"2001:db8::1\"" in r.stderr, r.describe()
