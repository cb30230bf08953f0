# A minimal ACME client side for tests: JWS (ES256, RS256) signed by a given key, so a test can ask the CA what it thinks of a key.
"""Used to check what acmed cannot show itself: that Pebble refuses an account key acmed rolled
away from, or a deactivated account. Only what those checks need: a nonce, one signed POST."""
import json
import ssl
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from faultproxy import b64u

UA = {"User-Agent": "acmed-tests"}


def _int_b64u(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(size, "big"))


def load_key(pem):
    return serialization.load_pem_private_key(pem if isinstance(pem, bytes) else pem.encode(), None)


def jwk(key):
    pub = key.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        size = (pub.curve.key_size + 7) // 8
        n = pub.public_numbers()
        return {"kty": "EC", "crv": {256: "P-256", 384: "P-384"}[pub.curve.key_size],
                "x": _int_b64u(n.x, size), "y": _int_b64u(n.y, size)}
    n = pub.public_numbers()
    return {"kty": "RSA", "n": _int_b64u(n.n), "e": _int_b64u(n.e)}


def _sign(key, data):
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256", key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    size = (key.curve.key_size + 7) // 8
    h = hashes.SHA256() if key.curve.key_size == 256 else hashes.SHA384()
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(h)))
    return ("ES256" if key.curve.key_size == 256 else "ES384"), r.to_bytes(size, "big") + s.to_bytes(size, "big")


class Client:
    """Talks to one ACME directory (through TLS trusting ca_bundle)."""

    def __init__(self, directory_url, ca_bundle):
        self.ctx = ssl.create_default_context(cafile=str(ca_bundle))
        self.directory = self._get_json(directory_url)

    def _open(self, req):
        try:
            r = urllib.request.urlopen(req, timeout=10, context=self.ctx)
            return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def _get_json(self, url):
        return json.loads(self._open(urllib.request.Request(url, headers=UA))[2])

    def nonce(self):
        status, headers, _ = self._open(urllib.request.Request(self.directory["newNonce"], method="HEAD",
                                                               headers=UA))
        return headers["Replay-Nonce"]

    def post(self, url, key, payload, kid=None):
        """POST a JWS signed by key (kid, else its JWK): (status, headers, body as JSON or bytes)."""
        alg, _ = _sign(key, b"")
        prot = {"alg": alg, "nonce": self.nonce(), "url": url}
        if kid:
            prot["kid"] = kid
        else:
            prot["jwk"] = jwk(key)
        p64 = b64u(json.dumps(prot).encode())
        y64 = "" if payload is None else b64u(json.dumps(payload).encode())
        _, sig = _sign(key, f"{p64}.{y64}".encode())
        body = json.dumps({"protected": p64, "payload": y64, "signature": b64u(sig)}).encode()
        status, headers, raw = self._open(urllib.request.Request(
            url, data=body, method="POST", headers={**UA, "Content-Type": "application/jose+json"}))
        try:
            return status, headers, json.loads(raw)
        except ValueError:
            return status, headers, raw

    def lookup(self, key):
        """newAccount {"onlyReturnExisting": true} signed by key: (status, Location or None, body)."""
        status, headers, body = self.post(self.directory["newAccount"], key, {"onlyReturnExisting": True})
        return status, headers.get("Location"), body
