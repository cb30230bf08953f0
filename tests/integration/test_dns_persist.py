# dns-persist-01 against the newest Pebble: the record acmed says to publish, published once (challtestsrv), then a wildcard and its base issued with no DNS credentials on the host.
"""Issue 9, "dns-persist-01". Pebble's VA resolves through pebble-challtestsrv; the test publishes the
TXT record there, as the admin would in their zone, taking it word for word from what acmed said."""
import json
import re

import pytest
from cryptography import x509

import pebble_env as pe

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0),
              pytest.mark.pebble_builds("pebble-new", reason="Pebble 2.4 has no dns-persist-01")]

ISSUE_TIMEOUT = 180
RECORD = re.compile(r'publish this record \(once; it serves every renewal\): '
                    r'(_validation-persist\.(\S+)\.) IN TXT "([^"]+)"')


def test_wildcard_and_base_through_a_record_published_once(acmed, proxy, pebble):
    certs = [{"name": "persist", "key_type": "ecdsa-p256",
              "domains": ["*.persist.example.com", "persist.example.com"], "challenge": "dns-persist-01"}]
    acmed.write_config(certs)
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[persist\] .*publish this record", timeout=ISSUE_TIMEOUT)
    records = {(m.group(1), m.group(3)) for m in RECORD.finditer(d.stderr)}
    assert records, d.stderr[-3000:]
    kid = json.loads((acmed.ws / "state" / "accounts" / "pebble" / "account.json").read_text())["kid"]
    want = ("_validation-persist.persist.example.com.", f"pebble.letsencrypt.org; accounturi={kid}; policy=wildcard")
    assert want in records, records
    st = {c["name"]: c for c in json.loads(acmed.run("status", "--json").stdout)["certificates"]}["persist"]
    assert want[1] in st["last_error"], st
    assert proxy.log.count(kind="challenge", method="POST", where=lambda e: e["resp_body"].get("type") ==
                           "dns-persist-01") >= 1

    # the admin publishes it (one record, policy=wildcard, serves the base name too)
    pebble.challtestsrv("set-txt", {"host": want[0], "value": want[1]})
    r = acmed.run("renew", "persist", "--force")
    assert r.rc == 0, r.describe()
    d.wait_for_stderr(r"\[persist\] certificate issued", timeout=ISSUE_TIMEOUT)
    acmed.verify(certs)
    leaf = pe.read_pem_certs((acmed.outputs["persist"] / "cert.pem").read_bytes())[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == ["*.persist.example.com", "persist.example.com"]
    # a renewal needs nothing more: the record stays
    mark = proxy.log.mark()
    r = acmed.run("renew", "persist", "--force")
    assert r.rc == 0, r.describe()
    pe.wait_until(lambda: proxy.log.count(kind="cert", status=200, since=mark) >= 1, ISSUE_TIMEOUT,
                  what="the renewal downloaded")
    assert d.stop() == 0
