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


class StandInWeb:
    """The web server that owns 443 behind HAProxy: TLS with its own certificate, counting what reaches it."""

    def __init__(self, workspace):
        import datetime
        import threading
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand-in web")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        (workspace / "web.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(workspace / "web.pem")
        self.ctx.set_alpn_protocols(["h2", "http/1.1"])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handshakes = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.handshakes.append(tls.selected_alpn_protocol())
            except (ssl.SSLError, OSError):
                conn.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


HAPROXY_CFG = """global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend tls
    bind 127.0.0.1:{front}
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req.ssl_hello_type 1 }}
    use_backend acmed if {{ req.ssl_alpn acme-tls/1 }}
    default_backend web
backend acmed
    server acmed 127.0.0.1:{acmed}
backend web
    server web 127.0.0.1:{web}
"""


@pytest.mark.skipif(not __import__("shutil").which("haproxy"), reason="haproxy is not installed (tests/deps.sh)")
def test_tls_alpn_01_behind_haproxy(acmed, proxy, pebble):
    """The README's HAProxy recipe: a web server owns 443; HAProxy routes ALPN acme-tls/1 to acmed and
    everything else to the web server. Pebble's validation (to 443, here HAProxy's port) reaches acmed;
    a browser's TLS reaches the web server, before, during and after."""
    import subprocess

    web = StandInWeb(acmed.ws)
    acmed_port = pe.free_port()
    cfg = acmed.ws / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(front=pebble.tls_port, acmed=acmed_port, web=web.port))
    check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    hap = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        pe.wait_tcp(pebble.tls_port, 30, hap, "haproxy")
        cert, alpn = handshake(pebble.tls_port, "www.example.org", ["h2", "http/1.1"])
        assert cert == web.cert_der and alpn == "h2", "HAProxy sends browsers to the web server"
        certs = [{"name": "behind", "key_type": "ecdsa-p256", "domains": ["behind.example.com"],
                  "challenge": "tls-alpn-01"}]
        acmed.outputs = pe.write_config(acmed.config, acmed.ws, proxy.directory_url, pebble.ca_bundle,
                                        pebble.http01_port, certs,
                                        extra_top={"tls_alpn_listen": json.dumps([f"127.0.0.1:{acmed_port}"])})
        r = acmed.run_once(timeout=ISSUE_TIMEOUT)
        assert r.rc == 0, r.describe()
        acmed.verify(certs)
        assert None not in web.handshakes and "acme-tls/1" not in web.handshakes, web.handshakes
        cert, alpn = handshake(pebble.tls_port, "behind.example.com", ["http/1.1"])
        assert cert == web.cert_der and alpn == "http/1.1"
        pe.wait_until(lambda: web.handshakes.count("http/1.1") == 1, 10, what="the web server's handshake")
        assert web.handshakes == ["h2", "http/1.1"], web.handshakes
    finally:
        hap.terminate()
        hap.wait(timeout=10)
        web.stop()


def test_dry_run_of_a_tls_alpn_certificate(acmed, proxy, pebble):
    """renew --dry-run answers tls-alpn-01 through the daemon's responder too (the staging CA is
    the proxy in front of the same Pebble)."""
    certs = [{"name": "dry", "key_type": "ecdsa-p256", "domains": ["dry.alpn.example.com"],
              "challenge": "tls-alpn-01"}]
    acmed.outputs = pe.write_config(acmed.config, acmed.ws, pebble.directory_url, pebble.ca_bundle,
                                    pebble.http01_port, certs,
                                    extra_ca={"staging": json.dumps(proxy.directory_url)},
                                    extra_top={"tls_alpn_listen": json.dumps([f"127.0.0.1:{pebble.tls_port}"])})
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[dry\] certificate issued", timeout=ISSUE_TIMEOUT)
    r = acmed.run("renew", "dry", "--dry-run", timeout=ISSUE_TIMEOUT + 60)
    assert r.rc == 0, r.describe()
    assert "dry: ok: the staging CA" in r.stdout, r.stdout
    assert proxy.log.count(kind="finalize", method="POST", status=200) == 1, proxy.log.by_kind()
    assert d.stop() == 0
