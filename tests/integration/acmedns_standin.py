# A stand-in for joohoi/acme-dns (not in Debian): its HTTP API, the TXT values it keeps published in a real knot zone.
"""What acme-dns does, as its source (pkg/api, pkg/database, pkg/nameserver) does it:

POST /register   optional JSON {"allowfrom": ["CIDR", ...]} -> 201 {"username", "password",
                 "fulldomain", "subdomain", "allowfrom"}: username and subdomain are UUIDs, the
                 password 40 characters of [A-Za-z0-9_-]; 400 {"error": "malformed_json_payload"}
                 or {"error": "invalid_allowfrom_cidr"}
POST /update     X-Api-User, X-Api-Key, JSON {"subdomain", "txt"} -> 200 {"txt": "<value>"};
                 401 {"error": "forbidden"} for an unknown user, a wrong key, a request from outside
                 allowfrom or another user's subdomain; 400 {"error": "bad_subdomain"} / {"error":
                 "bad_txt"} (a value of other than 43 characters of the base64url alphabet)
GET  /health     200

Each subdomain has two TXT slots (acme-dns's Txtlimit); an update overwrites the least recently
updated one, so the two most recent values are served (empty slots are not).  Here they are
published with knotc in a zone of a real Knot (TTL 1, as acme-dns answers): `domain` must be one of
its zones, e.g. "acme.other.test", and <subdomain>.<domain> is what the user's
_acme-challenge.<name> CNAME points at.

HTTPS when given a pebble_env.TlsCA (a server certificate for 127.0.0.1 and localhost from it:
acmed trusts it through a ca_bundle), plain HTTP otherwise.  Everything it got is in `requests`.
"""

import ipaddress
import json
import secrets
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pebble_env as pe

PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz1234567890-_"
B64URL = set(PASSWORD_ALPHABET)
TXT_SLOTS = 2


def _valid_uuid(s):
    try:
        uuid.UUID(s)
        return True
    except (ValueError, TypeError, AttributeError):
        return False


def _valid_key(k):
    return isinstance(k, str) and len(k) == 40 and all(c in B64URL for c in k)


def _valid_txt(t):
    return isinstance(t, str) and len(t) == 43 and all(c in B64URL for c in t)


class Account:
    def __init__(self, username, password, subdomain, allowfrom):
        self.username, self.password, self.subdomain, self.allowfrom = username, password, subdomain, allowfrom
        self.slots = [["", 0.0] for _ in range(TXT_SLOTS)]      # [value, last update]

    def values(self):
        return sorted(v for v, _ in self.slots if v)

    def allowed(self, ip):
        if not self.allowfrom:
            return True
        addr = ipaddress.ip_address(ip)
        return any(addr in ipaddress.ip_network(c, strict=False) for c in self.allowfrom)


class AcmeDnsStandin:
    """acme-dns's API on 127.0.0.1:<port>, its TXT records in `knot` under `domain`.

    url:        "https://127.0.0.1:<port>" (or http:// without a tls_ca)
    requests:   [{"method", "path", "user", "key", "body" (JSON or text), "status", "response"}]
    inject(status, body, count=1): the next count /update requests are answered so, untouched
    """

    def __init__(self, knot, domain="acme.other.test", tls_ca=None, port=None):
        self.knot = knot
        self.domain = domain.rstrip(".").lower()
        if self.domain + "." not in knot.zones:
            raise ValueError(f"{knot} serves no zone {self.domain}")
        self.tls_ca = tls_ca
        self.port = port or pe.free_port()
        self.accounts = {}            # username -> Account
        self.requests = []
        self._injected = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return f"{'https' if self.tls_ca else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self):
        return self.tls_ca.ca_path if self.tls_ca else None

    # -------------------------------------------------------- what acme-dns does

    def register(self, allowfrom=None):
        """A new account, as POST /register makes it: the JSON acme-dns answers (a dict)."""
        a = Account(str(uuid.uuid4()), "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(40)),
                    str(uuid.uuid4()), list(allowfrom or []))
        with self._lock:
            self.accounts[a.username] = a
        return self.credentials(a)

    def credentials(self, a):
        return {"username": a.username, "password": a.password, "fulldomain": self.fulldomain(a.subdomain),
                "subdomain": a.subdomain, "allowfrom": list(a.allowfrom)}

    def fulldomain(self, subdomain):
        return f"{subdomain}.{self.domain}"

    def values(self, subdomain):
        """The TXT values acme-dns would serve for subdomain now (sorted)."""
        with self._lock:
            for a in self.accounts.values():
                if a.subdomain == subdomain:
                    return a.values()
        return []

    def _update(self, user, key, body, client_ip):
        a = self.accounts.get(user) if _valid_uuid(user) and _valid_key(key) else None
        if a is None or not secrets.compare_digest(a.password, key) or not a.allowed(client_ip):
            return 401, {"error": "forbidden"}
        if not isinstance(body, dict) or body.get("subdomain") != a.subdomain:
            return 401, {"error": "forbidden"}
        if not _valid_uuid(body.get("subdomain")):
            return 400, {"error": "bad_subdomain"}
        txt = body.get("txt")
        if not _valid_txt(txt):
            return 400, {"error": "bad_txt"}
        with self._lock:
            slot = min(a.slots, key=lambda s: s[1])
            old = list(slot)
            slot[0], slot[1] = txt, time.time()
            values = a.values()
        try:
            self.knot.set_txt(self.fulldomain(a.subdomain), values, ttl=1)
        except Exception:                  # the database error of acme-dns
            with self._lock:
                slot[0], slot[1] = old
            return 500, {"error": "db_error"}
        return 200, {"txt": txt}

    def inject(self, status, body, count=1):
        """Answer the next `count` POST /update with status and body (a dict: JSON), changing nothing."""
        with self._lock:
            self._injected += [(status, body)] * count

    # -------------------------------------------------------- HTTP

    def _handle(self, h, method):
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
            bad_json = False
        except ValueError:
            body, bad_json = raw.decode(errors="replace"), True
        path = h.path.split("?", 1)[0]
        rec = {"method": method, "path": path, "user": h.headers.get("X-Api-User"),
               "key": h.headers.get("X-Api-Key"), "body": body}
        if path == "/register" and method == "POST":
            if bad_json or (body is not None and not isinstance(body, dict)):
                status, resp = 400, {"error": "malformed_json_payload"}
            else:
                allow = (body or {}).get("allowfrom") or []
                try:
                    for c in allow:
                        ipaddress.ip_network(c, strict=False)
                    status, resp = 201, self.register(allow)
                except (ValueError, TypeError):
                    status, resp = 400, {"error": "invalid_allowfrom_cidr"}
        elif path == "/update" and method == "POST":
            with self._lock:
                injected = self._injected.pop(0) if self._injected else None
            if injected is not None:
                status, resp = injected
            else:
                status, resp = self._update(rec["user"], rec["key"], None if bad_json else body,
                                            h.client_address[0])
        elif path == "/health" and method == "GET":
            status, resp = 200, None
        elif path in ("/register", "/update", "/health"):
            status, resp = 405, None
        else:
            status, resp = 404, None
        rec["status"], rec["response"] = status, resp
        with self._lock:
            self.requests.append(rec)
        out = b"" if resp is None else json.dumps(resp).encode()
        h.send_response(status)
        if resp is not None:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(out)))
        h.end_headers()
        h.wfile.write(out)

    def start(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                standin._handle(self, "POST")

            def do_GET(self):
                standin._handle(self, "GET")

            def log_message(self, *a):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls_ca is not None:
            cert, key = self.tls_ca.issue_server_cert("acmedns")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            # the handshake happens in the request's thread, not in the accepting one
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def updates(self, status=None):
        """The POST /update requests it got (of that status when given)."""
        with self._lock:
            return [r for r in self.requests if r["path"] == "/update" and (status is None or r["status"] == status)]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
