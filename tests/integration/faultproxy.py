#!/usr/bin/python3
# Fault-injecting HTTPS reverse proxy between an ACME client and Pebble: counts requests and injects faults by rule.
"""faultproxy - a small HTTPS reverse proxy for ACME tests (stdlib only; ARI CertIDs need python3-cryptography).

Every request is forwarded to the upstream (Pebble) with the client's Host header
kept as is.  Pebble (2.4 and the newest alike) builds every URL it hands out
(directory, Location, Link, order/authz/challenge/certificate URLs) from the
request's Host header and checks the JWS "url" against "https://" + Host +
RequestURI, so with Host passed through all URLs point at the proxy and no
rewriting is needed.

Each request is logged (ProxyLog entries; the JWS payload of a POST is decoded into
entry["payload"]: a dict, "" for POST-as-GET, None when the body is no JWS) and
matched against RULES, in order.  Rules are evaluated lazily: once a rule answered
or dropped a request, the rules after it never see that request (no match counted).
A rule that matches applies its action:

  pre-forward actions (the upstream may never see the request)
    delay     sleep `seconds`, then go on (slow responses; combine with others)
    respond   answer status/headers/body without contacting upstream
              (nonce=True adds a fresh Replay-Nonce fetched from upstream, as a CA would)
    drop      close the client connection without answering (when="before")
  post-forward actions (the upstream processed the request)
    status    override the status code (and add/replace `headers`)
    json_merge  merge keys into a JSON response body ("{base}" -> https://<Host>)
    delay     when="after": forward, then hold the response `seconds` before sending it
    drop      when="after": forward, then close without answering
    callback  fn(request, response) -> response|None, for anything else
  Header values of respond/status rules may be callables, evaluated when the answer is made.

Matching: method, path (regex, re.search on the path incl. query), kind
(classification, see classify()), payload_has (keys the decoded JWS payload must
hold), if_body_status (post-forward: only when the upstream JSON body's "status" is
one of these), nth (1-based match numbers to act on), skip (ignore the first N
matches), count (act at most N times), after_s / for_s (active window in seconds
since the rule was added), t0 / t1 (active window in wall-clock epoch seconds).

Whole-CA faults (FaultProxy methods, each returning the Rule, inserted first):
    outage(for_s=60)            503 + the Let's Encrypt maintenance problem on every path
    slow(5, for_s=30)           every response delayed
    rate_limited("newOrder", retry_after=7)   429 rateLimited + Retry-After (seconds or HTTP-date)
    already_replaced()          409 alreadyReplaced for a newOrder carrying "replaces", once
    refuse_connections(for_s=40)  close the listening socket (connection refused), re-bind later
ARI (RFC 9773) on top of Pebble 2.4, which has none, or of the newest Pebble, which has its own:
    enable_ari()                directory gains "renewalInfo": "<proxy>/renewalInfo";
                                GET /renewalInfo/<certID> is answered by the proxy from the windows
                                set below; a CertID without one goes to the upstream's own
                                renewalInfo when it has one (upstream_ari_path), else gets a window
                                derived from the certificate's lifetime (or 404)
    set_ari_window(cert_id or "*", start, end, explanation_url=None, retry_after=None)
    hide_ari()                  the directory loses "renewalInfo": a CA without ARI (the newest
                                Pebble's real ARI hidden until enable_ari())
    ari_cert_id(cert)           the RFC 9773 CertID of a certificate (PEM, path or x509 object)
  Without enable_ari() or hide_ari(), the upstream's directory and renewalInfo pass through as is.

Usage from Python:
    proxy = FaultProxy(("127.0.0.1", 0), upstream=("127.0.0.1", pebble_port),
                       certfile=..., keyfile=..., upstream_ca=...).start()
    proxy.add_rule(Rule("status", method="HEAD", kind="newNonce", status=204))
    ...; proxy.log.count(kind="newOrder"); proxy.stop()

Standalone:
    faultproxy.py --listen 127.0.0.1:14443 --upstream 127.0.0.1:14000 \
        --cert proxy.pem --key proxy.key --upstream-ca tls-ca.pem \
        [--rules rules.json] [--log requests.jsonl] [--ari]
    rules.json: a JSON list of rule objects, e.g.
        [{"action": "status", "method": "HEAD", "kind": "newNonce", "status": 204}]
"""

import argparse
import base64
import datetime
import http.client
import http.server
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from email.utils import formatdate

# Pebble path prefixes (wfe/wfe.go constants, the same in 2.4 and the newest) -> request kind.
PATH_KINDS = (
    ("/dir", "directory"),
    ("/nonce-plz", "newNonce"),
    ("/sign-me-up", "newAccount"),
    ("/my-account/", "account"),
    ("/order-plz", "newOrder"),
    ("/my-order/", "order"),
    ("/finalize-order/", "finalize"),
    ("/authZ/", "authz"),
    ("/chalZ/", "challenge"),
    ("/certZ/", "cert"),
    ("/revoke-cert", "revokeCert"),
    ("/rollover-account-key", "keyChange"),
    ("/list-orderz/", "orders"),
    ("/renewalInfo", "renewalInfo"),   # not in Pebble 2.4: served by the proxy (enable_ari)
    ("/draft-ietf-acme-ari-03/renewalInfo", "renewalInfo"),   # Pebble >= 2.6's own ARI (RFC 9773)
    ("/renewal-info", "renewalInfo"),  # an alternative spelling tests may advertise via json_merge
)

ARI_PATH = "/renewalInfo"
# What the proxy sends upstream on requests it makes itself: RFC 8555 6.1 wants a User-Agent on
# every request, and the newest Pebble refuses one without.
USER_AGENT = "faultproxy (acmed tests)"

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "trailers", "transfer-encoding", "upgrade", "content-length"}

# What Let's Encrypt answers on every path during maintenance (byte for byte).
MAINTENANCE_BODY = (b'{"type": "urn:acme:error:serverInternal", "detail": "The service is down for maintenance '
                    b'or had an internal error. Check https://letsencrypt.status.io/ for more details."}')
PROBLEM_JSON = "application/problem+json"


def classify(path):
    p = path.split("?", 1)[0]
    for prefix, kind in PATH_KINDS:
        if p == prefix or (prefix.endswith("/") and p.startswith(prefix)) or p.startswith(prefix + "/"):
            return kind
    return "other"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(s):
    if isinstance(s, str):
        s = s.encode()
    s = s.strip()
    return base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))


def decode_jws(body):
    """(protected header, payload) of a flattened JWS body.

    payload: the decoded JSON value, "" for POST-as-GET, None when the body is not a JWS
    or its payload is not JSON.  protected: dict or None.
    """
    if not body:
        return None, None
    try:
        j = json.loads(body.decode())
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(j, dict) or "payload" not in j or "protected" not in j:
        return None, None
    protected = payload = None
    try:
        protected = json.loads(b64u_decode(j["protected"]).decode())
    except (ValueError, TypeError, UnicodeDecodeError, AttributeError):
        protected = None
    try:
        raw = b64u_decode(j["payload"])
        payload = "" if raw == b"" else json.loads(raw.decode())
    except (ValueError, TypeError, UnicodeDecodeError, AttributeError):
        payload = None
    return protected, payload


def http_date(epoch):
    """An IMF-fixdate (RFC 9110 HTTP-date) for a Retry-After header."""
    return formatdate(epoch, usegmt=True)


def rfc3339(t):
    """datetime (naive = UTC), epoch seconds or a string (kept verbatim) -> RFC 3339 UTC."""
    if isinstance(t, str):
        return t
    if isinstance(t, (int, float)):
        t = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    if t.tzinfo is not None:
        t = t.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _load_cert(cert):
    from cryptography import x509   # lazy: the proxy itself needs only the stdlib
    if isinstance(cert, x509.Certificate):
        return cert
    if isinstance(cert, os.PathLike) or (isinstance(cert, str) and "-----BEGIN" not in cert):
        with open(cert, "rb") as f:
            cert = f.read()
    if isinstance(cert, str):
        cert = cert.encode()
    b = cert.find(b"-----BEGIN CERTIFICATE-----")
    if b < 0:
        return x509.load_der_x509_certificate(cert)
    e = cert.index(b"-----END CERTIFICATE-----", b) + len(b"-----END CERTIFICATE-----")
    return x509.load_pem_x509_certificate(cert[b:e] + b"\n")


def ari_cert_id(cert):
    """RFC 9773 section 4.1 CertID: base64url(AKI keyIdentifier) "." base64url(serial DER content bytes).

    cert: an x509.Certificate, PEM/DER bytes, a PEM string or a path (the first certificate counts).
    The serial's DER content bytes are the minimal two's complement big-endian encoding, so a
    serial whose high bit is set keeps its leading 0x00.
    """
    from cryptography import x509
    c = _load_cert(cert)
    aki = c.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    if aki is None:
        raise ValueError("certificate has no AKI keyIdentifier")
    n = c.serial_number
    serial = n.to_bytes((n.bit_length() + 8) // 8, "big")
    return f"{b64u(aki)}.{b64u(serial)}"


class Response:
    """A response on its way to the client (from upstream or made by a rule)."""

    def __init__(self, status, headers=None, body=b"", reason=None, from_upstream=False):
        self.status = int(status)
        self.headers = list(headers or [])   # [(name, value)], order kept, repeats allowed
        self.body = body if isinstance(body, bytes) else str(body).encode()
        self.reason = reason
        self.from_upstream = from_upstream
        self.head_length = None   # upstream Content-Length of a HEAD response

    def get_header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_header(self, name, value):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, str(value)))

    def json(self):
        try:
            return json.loads(self.body.decode())
        except (ValueError, UnicodeDecodeError):
            return None


class Request:
    def __init__(self, method, path, headers, body, client, conn_id):
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.client, self.conn_id = client, conn_id
        self.kind = classify(path)
        self.host = headers.get("Host") or ""
        self.protected, self.payload = decode_jws(body) if method == "POST" else (None, None)


def _header_value(v):
    v = v() if callable(v) else v
    return str(v)


class Rule:
    PRE = ("delay", "respond", "drop")
    POST = ("status", "json_merge", "callback")

    def __init__(self, action, method=None, path=None, kind=None, nth=None, skip=0, count=None,
                 if_body_status=None, after_s=None, for_s=None, name=None,
                 seconds=0.0, status=None, headers=None, body=b"", when="before", how="close",
                 merge=None, fn=None, payload_has=None, t0=None, t1=None, nonce=False):
        if action not in self.PRE + self.POST:
            raise ValueError(f"unknown action {action!r}")
        if action in ("drop", "delay") and when not in ("before", "after"):
            raise ValueError(f"{action}: when must be 'before' or 'after'")
        if if_body_status is not None and (action == "respond" or (action in ("drop", "delay")
                                                                   and when == "before")):
            raise ValueError("if_body_status needs the upstream response: use a post-forward action "
                             "(when='after' for drop/delay)")
        self.action = action
        self.method = method.upper() if method else None
        self.path_re = re.compile(path) if path else None
        self.kind = kind
        self.nth = {nth} if isinstance(nth, int) else (set(nth) if nth else None)
        self.skip = skip
        self.count = count
        self.if_body_status = ({if_body_status} if isinstance(if_body_status, str)
                               else set(if_body_status) if if_body_status else None)
        self.payload_has = ([payload_has] if isinstance(payload_has, str) else list(payload_has or []))
        self.after_s, self.for_s = after_s, for_s
        self.t0, self.t1 = t0, t1
        self.name = name or action
        self.seconds = float(seconds)
        self.status = status
        self.headers = dict(headers or {})
        self.body = body if isinstance(body, bytes) else (json.dumps(body).encode()
                                                          if isinstance(body, (dict, list)) else str(body).encode())
        self.when = when
        self.how = how
        self.merge = merge or {}
        self.fn = fn
        self.nonce = bool(nonce)
        self.armed_at = time.monotonic()
        self.armed_wall = time.time()
        self.stopped_at = None   # monotonic time of disable()/stop()
        self.matches = 0    # requests that matched method/path/kind/payload while active
        self.hits = 0       # times the action was applied
        self.enabled = True
        self._lock = threading.Lock()

    @property
    def post(self):
        return self.action in self.POST or (self.action in ("drop", "delay") and self.when == "after")

    def disable(self):
        if self.enabled:
            self.stopped_at = time.monotonic()
        self.enabled = False

    stop = disable

    def window_mono(self):
        """(start, end) of the active window in time.monotonic() terms; end None = open."""
        start = self.armed_at + (self.after_s or 0)
        end = None if self.for_s is None else start + self.for_s
        if self.t0 is not None:
            start = max(start, self.armed_at + (self.t0 - self.armed_wall))
        if self.t1 is not None:
            t1 = self.armed_at + (self.t1 - self.armed_wall)
            end = t1 if end is None else min(end, t1)
        if self.stopped_at is not None:
            end = self.stopped_at if end is None else min(end, self.stopped_at)
        return start, end

    def _active(self):
        if not self.enabled:
            return False
        age = time.monotonic() - self.armed_at
        if self.after_s is not None and age < self.after_s:
            return False
        if self.for_s is not None and age >= (self.after_s or 0) + self.for_s:
            return False
        if self.t0 is not None or self.t1 is not None:
            now = time.time()
            if self.t0 is not None and now < self.t0:
                return False
            if self.t1 is not None and now >= self.t1:
                return False
        return True

    def select(self, req):
        """Count a match and decide whether to act (pre-condition part). Thread-safe."""
        if not self._active():
            return False
        if self.method and req.method != self.method:
            return False
        if self.kind and req.kind != self.kind:
            return False
        if self.path_re and not self.path_re.search(req.path):
            return False
        if self.payload_has and not (isinstance(req.payload, dict)
                                     and all(k in req.payload for k in self.payload_has)):
            return False
        with self._lock:
            self.matches += 1
            n = self.matches
            if n <= self.skip:
                return False
            if self.nth is not None and n not in self.nth:
                return False
            if self.count is not None and self.hits >= self.count:
                return False
            if self.if_body_status is None:
                self.hits += 1
            return True

    def body_ok(self, resp):
        """Post-condition on the upstream body; counts the hit when it holds."""
        if self.if_body_status is None:
            return True
        j = resp.json() if resp is not None else None
        ok = isinstance(j, dict) and j.get("status") in self.if_body_status
        if ok:
            with self._lock:
                if self.count is not None and self.hits >= self.count:
                    return False
                self.hits += 1
        return ok

    def make_response(self):
        """The answer of a respond rule (callable header values evaluated now)."""
        resp = Response(self.status or 200, [(k, _header_value(v)) for k, v in self.headers.items()], self.body)
        if not any(k.lower() == "date" for k, _ in resp.headers):
            resp.headers.append(("Date", formatdate(usegmt=True)))
        return resp

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        action = d.pop("action")
        return cls(action, **d)


class ProxyLog:
    """Thread-safe list of request records (dicts)."""

    def __init__(self, path=None):
        self._lock = threading.Lock()
        self.entries = []
        self._file = open(path, "a", buffering=1) if path else None

    def add(self, entry):
        with self._lock:
            self.entries.append(entry)
            if self._file:
                self._file.write(json.dumps({k: v for k, v in entry.items() if k != "resp_body"}) + "\n")

    def clear(self):
        with self._lock:
            self.entries = []

    def mark(self):
        """Index to pass as since= later (requests made after this call)."""
        with self._lock:
            return len(self.entries)

    def select(self, kind=None, method=None, status=None, since=0, where=None):
        """Entries in arrival order of their completion; where: an optional predicate on the entry."""
        with self._lock:
            out = list(self.entries[since:])
        return [e for e in out
                if (kind is None or e["kind"] == kind)
                and (method is None or e["method"] == method)
                and (status is None or e["status"] == status)
                and (where is None or where(e))]

    def count(self, **kw):
        return len(self.select(**kw))

    def between(self, mono_start, mono_end=None, **kw):
        """Entries whose request arrived in [mono_start, mono_end) (time.monotonic())."""
        return self.select(where=lambda e: e["mono"] >= mono_start and (mono_end is None or e["mono"] < mono_end),
                           **kw)

    def by_kind(self, since=0):
        c = {}
        for e in self.select(since=since):
            c[e["kind"]] = c.get(e["kind"], 0) + 1
        return c

    def close(self):
        if self._file:
            self._file.close()
            self._file = None


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def server_bind(self):
        # HTTPServer.server_bind would call getfqdn() (a DNS lookup); loopback needs none
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # TLS handshake happens lazily in the handler thread, never in the accept loop
        return self.ssl_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class _Dropped(Exception):
    pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"
    timeout = 120

    def setup(self):
        super().setup()
        self.upstream = None
        self.proxy = self.server.proxy
        self.conn_id = self.proxy._next_conn_id()
        self.proxy._track_client(self.request, True)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        self.proxy._track_client(self.request, False)
        if self.upstream is not None:
            self.upstream.close()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except _Dropped:
            self.close_connection = True
        except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
            self.close_connection = True

    def log_message(self, fmt, *args):
        pass

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self):
        p = self.proxy
        t0 = time.time()
        body = self._read_body()
        req = Request(self.command, self.path, self.headers, body, self.client_address, self.conn_id)
        entry = {"t": t0, "mono": time.monotonic(), "method": req.method, "path": req.path,
                 "kind": req.kind, "status": None, "upstream_status": None, "rules": [],
                 "conn": self.conn_id, "resp_json_status": None, "resp_body": None, "t_done": None,
                 "payload": req.payload, "jws_url": (req.protected or {}).get("url"),
                 "kid": (req.protected or {}).get("kid")}
        try:
            resp = self._process(req, entry)
        except Exception as e:  # a rule callback or the proxy itself failed: answer 500, keep serving
            resp = Response(500, [("Content-Type", "text/plain")], f"faultproxy error: {e!r}".encode())
        # the log entry is complete before the client sees anything: a test that reads the
        # log right after its request returns (or fails) always finds the entry
        if isinstance(resp, Response):
            entry["status"] = resp.status
            entry["retry_after"] = resp.get_header("Retry-After")
            j = resp.json() if resp.body and p.keep_bodies else None
            if isinstance(j, dict):
                entry["resp_json_status"] = j.get("status")
                entry["resp_body"] = j
            if resp.status == 201 and req.kind == "newOrder":
                entry["location"] = resp.get_header("Location")
        entry["t_done"] = time.time()
        entry["mono_done"] = time.monotonic()
        p.log.add(entry)
        if isinstance(resp, Response):
            self._send(req, resp)
        else:
            self._drop(resp)
            raise _Dropped()

    def _process(self, req, entry):
        p = self.proxy
        post = []
        for r in p.rules_snapshot():
            if not r.select(req):
                continue
            if r.post:
                post.append(r)
                continue
            entry["rules"].append(r.name)
            if r.action == "delay":
                time.sleep(r.seconds)
            elif r.action == "respond":
                resp = r.make_response()
                if r.nonce:
                    nonce = self._fresh_nonce()
                    if nonce:
                        resp.set_header("Replay-Nonce", nonce)
                return self._post_rules(req, resp, post, entry)
            elif r.action == "drop":
                return r.how
        resp = p._ari_response(req) if req.kind == "renewalInfo" and p.ari_enabled else None
        if resp is None:
            upstream_path = None
            if req.kind == "renewalInfo" and p.ari_enabled:
                # a CertID without a window of the proxy's: the upstream's own renewalInfo answers
                cid = req.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
                upstream_path = f"{p.upstream_ari_path}/{cid}"
                entry["upstream_path"] = upstream_path
            resp = self._forward(req, upstream_path)
            entry["upstream_status"] = resp.status
            p._observe_upstream(req, resp)
        return self._post_rules(req, resp, post, entry)

    def _post_rules(self, req, resp, post, entry):
        for r in post:
            if not r.body_ok(resp):
                continue
            entry["rules"].append(r.name)
            if r.action == "drop":
                return r.how
            if r.action == "delay":
                time.sleep(r.seconds)
            elif r.action == "status":
                if r.status is not None:
                    resp.status = int(r.status)
                    resp.reason = None
                for k, v in r.headers.items():
                    resp.set_header(k, _header_value(v))
            elif r.action == "json_merge":
                j = resp.json()
                if isinstance(j, dict):
                    base = f"https://{req.host}"
                    for k, v in r.merge.items():
                        j[k] = v.replace("{base}", base) if isinstance(v, str) else v
                    resp.body = json.dumps(j, indent=2).encode()
            elif r.action == "callback":
                new = r.fn(req, resp)
                if new is not None:
                    resp = new
        return resp

    def _drop(self, how):
        sock = self.connection
        try:
            if how == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                socket.socket.close(sock)
            else:
                # FIN without a TLS close_notify: the client sees the connection end with no answer
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def _upstream_conn(self):
        if self.upstream is None:
            p = self.proxy
            self.upstream = http.client.HTTPSConnection(p.upstream[0], p.upstream[1], timeout=120,
                                                        context=p.upstream_ctx)
        return self.upstream

    def _fresh_nonce(self):
        """A Replay-Nonce from the upstream (HEAD newNonce on a connection of its own), or None."""
        p = self.proxy
        conn = http.client.HTTPSConnection(p.upstream[0], p.upstream[1], timeout=10, context=p.upstream_ctx)
        try:
            conn.request("HEAD", "/nonce-plz", headers={"User-Agent": USER_AGENT})
            r = conn.getresponse()
            r.read()
            return r.getheader("Replay-Nonce")
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def _forward(self, req, path=None):
        headers = {}
        for k, v in self.headers.items():
            if k.lower() not in HOP_BY_HOP:
                headers[k] = v
        if req.method in ("POST", "PUT", "PATCH") or req.body:
            headers["Content-Length"] = str(len(req.body))
        for attempt in (0, 1):
            conn = self._upstream_conn()
            fresh = conn.sock is None
            try:
                conn.putrequest(req.method, path or req.path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers.items():
                    conn.putheader(k, v)
                conn.endheaders(req.body if req.body else None)
                r = conn.getresponse()
                data = r.read()
                hdrs = [(k, v) for k, v in r.getheaders() if k.lower() not in HOP_BY_HOP]
                if r.will_close:
                    conn.close()
                    self.upstream = None
                resp = Response(r.status, hdrs, data, reason=r.reason, from_upstream=True)
                if req.method == "HEAD":
                    resp.head_length = r.getheader("Content-Length")
                return resp
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                conn.close()
                self.upstream = None
                if fresh or attempt:  # a stale keep-alive connection gets one retry, nothing else does
                    return self._bad_gateway(e)
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                self.upstream = None
                return self._bad_gateway(e)
        return self._bad_gateway("unreachable")

    @staticmethod
    def _bad_gateway(err):
        body = json.dumps({"type": "urn:ietf:params:acme:error:serverInternal",
                           "detail": f"faultproxy: upstream error: {err}"}).encode()
        return Response(502, [("Content-Type", PROBLEM_JSON),
                              ("Date", formatdate(usegmt=True))], body)

    def _send(self, req, resp):
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.headers:
            self.send_header(k, v)
        no_body = resp.status in (204, 304) or 100 <= resp.status < 200
        if not no_body:
            if req.method == "HEAD":
                self.send_header("Content-Length", str(len(resp.body)) if resp.body else
                                 (resp.head_length or "0"))
            else:
                self.send_header("Content-Length", str(len(resp.body)))
        if self.close_connection or (self.headers.get("Connection") or "").lower() == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        # head and body in one write: no Nagle / delayed-ACK stall between them
        self._headers_buffer.append(b"\r\n")
        if req.method != "HEAD" and not no_body and resp.body:
            self._headers_buffer.append(resp.body)
        self.flush_headers()
        self.wfile.flush()

    def do_GET(self):
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_GET


class AriWindow:
    """What GET /renewalInfo/<certID> answers: a suggestedWindow, or a raw status/body."""

    def __init__(self, start=None, end=None, explanation_url=None, retry_after=None, status=200, body=None):
        self.start, self.end = start, end
        self.explanation_url = explanation_url
        self.retry_after = retry_after
        self.status = status
        self.body = body   # bytes/str/dict: sent instead of the window (hostile answers)

    def response(self):
        if self.body is not None:
            body = self.body if isinstance(self.body, bytes) else (
                json.dumps(self.body).encode() if isinstance(self.body, (dict, list)) else str(self.body).encode())
        else:
            j = {"suggestedWindow": {"start": rfc3339(self.start), "end": rfc3339(self.end)}}
            if self.explanation_url:
                j["explanationURL"] = self.explanation_url
            body = json.dumps(j).encode()
        ctype = "application/json" if self.status < 400 else PROBLEM_JSON
        headers = [("Content-Type", ctype), ("Date", formatdate(usegmt=True))]
        if self.retry_after is not None:
            headers.append(("Retry-After", _header_value(self.retry_after)))
        return Response(self.status, headers, body)


class FaultProxy:
    def __init__(self, listen, upstream, certfile, keyfile, upstream_ca, log_path=None, keep_bodies=True,
                 upstream_ari_path=None):
        """upstream_ari_path: the path of the upstream's own renewalInfo resource (the newest Pebble's
        "/draft-ietf-acme-ari-03/renewalInfo"), None when it has no ARI (Pebble 2.4)."""
        self.upstream = upstream
        self.upstream_ari_path = upstream_ari_path.rstrip("/") if upstream_ari_path else None
        self.upstream_ctx = ssl.create_default_context(cafile=str(upstream_ca))
        self.ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.ssl_ctx.load_cert_chain(str(certfile), str(keyfile))
        self.log = ProxyLog(log_path)
        self.keep_bodies = keep_bodies
        self._rules = []
        self._rules_lock = threading.Lock()
        self._conn_ids = 0
        self._conn_lock = threading.Lock()
        self._clients = set()
        self._clients_lock = threading.Lock()
        self._listen_lock = threading.RLock()
        self._timers = []
        self._stopped = False
        self.refusals = []          # [[mono_start, mono_end or None], ...] connection-refused periods
        # ARI
        self.ari_enabled = False
        self.ari_hidden = False     # hide_ari(): the upstream's renewalInfo left out of the directory
        self.ari_derive = True      # unknown CertID of a certificate seen downloaded: a window from its lifetime
        self._ari_lock = threading.Lock()
        self._ari_windows = {}      # certID or "*" -> AriWindow
        self.ari_hits = {}          # certID -> GETs answered
        self.known_certs = {}       # certID -> (not_before, not_after) epoch of certificates downloaded via us
        self.server = _Server(listen, _Handler)
        self.server.ssl_ctx = self.ssl_ctx
        self.server.proxy = self
        self._addr = self.server.server_address[:2]
        self.thread = None
        self._listening = False

    @property
    def port(self):
        return self._addr[1]

    @property
    def directory_url(self):
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def base_url(self):
        return f"https://127.0.0.1:{self.port}"

    def _next_conn_id(self):
        with self._conn_lock:
            self._conn_ids += 1
            return self._conn_ids

    @property
    def connections(self):
        """Number of client connections accepted so far (keep-alive reuse shows as few connections)."""
        with self._conn_lock:
            return self._conn_ids

    def _track_client(self, sock, add):
        with self._clients_lock:
            if add:
                self._clients.add(sock)
            else:
                self._clients.discard(sock)

    # ------------------------------------------------------------ rules

    def add_rule(self, rule=None, first=False, **kw):
        """Add a Rule (or a dict, or Rule keyword arguments); first=True puts it before all others."""
        if rule is None:
            rule = Rule(**kw)
        elif isinstance(rule, dict):
            rule = Rule.from_dict(rule)
        with self._rules_lock:
            if first:
                self._rules.insert(0, rule)
            else:
                self._rules.append(rule)
        return rule

    def remove_rule(self, rule):
        with self._rules_lock:
            self._rules.remove(rule)

    def clear_rules(self):
        with self._rules_lock:
            self._rules = []

    def rules_snapshot(self):
        with self._rules_lock:
            return list(self._rules)

    # ------------------------------------------------------------ whole-CA faults

    def outage(self, after_s=None, for_s=None, t0=None, t1=None, retry_after=None, name="outage"):
        """Every path (directory included) answers 503 + MAINTENANCE_BODY while the window is active.

        Window: after_s/for_s relative to now, or t0/t1 wall-clock epoch seconds; open-ended
        until rule.stop() (or stop_outage()) when no end is given.  Returns the Rule: its hits
        are the requests answered 503, rule.window_mono() the window.
        """
        headers = {"Content-Type": PROBLEM_JSON}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return self.add_rule(Rule("respond", status=503, headers=headers, body=MAINTENANCE_BODY, after_s=after_s,
                                  for_s=for_s, t0=t0, t1=t1, name=name), first=True)

    def start_outage(self, **kw):
        return self.outage(**kw)

    def stop_outage(self, rule=None):
        """End one outage rule, or every rule named like an outage."""
        for r in ([rule] if rule is not None else self.rules_snapshot()):
            if rule is not None or r.name == "outage":
                r.stop()

    def slow(self, seconds, after_s=None, for_s=None, kind=None, method=None, name="slow", when="before"):
        """Delay matching requests (every path by default) by `seconds` while the window is active."""
        return self.add_rule(Rule("delay", seconds=seconds, after_s=after_s, for_s=for_s, kind=kind, method=method,
                                  name=name, when=when), first=True)

    def rate_limited(self, kind="newOrder", retry_after=3600, method="POST", nth=None, count=1, skip=0,
                     detail="Error creating new order :: too many certificates already issued for this "
                            "exact set of identifiers in the last 168h0m0s", name="rateLimited", **kw):
        """429 urn:ietf:params:acme:error:rateLimited (+ a fresh Replay-Nonce) instead of forwarding.

        retry_after: int/float seconds, a datetime or epoch via http_date(), a string (verbatim),
        a callable evaluated at answer time, or None (no header).  The value sent is in the log
        entry's "retry_after".
        """
        headers = {"Content-Type": PROBLEM_JSON}
        if retry_after is not None:
            if isinstance(retry_after, (int, float)) and not isinstance(retry_after, bool):
                retry_after = str(int(retry_after))
            elif isinstance(retry_after, datetime.datetime):
                retry_after = http_date(retry_after.timestamp() if retry_after.tzinfo else
                                        retry_after.replace(tzinfo=datetime.timezone.utc).timestamp())
            headers["Retry-After"] = retry_after
        body = {"type": "urn:ietf:params:acme:error:rateLimited", "detail": detail}
        return self.add_rule(Rule("respond", kind=kind, method=method, nth=nth, count=count, skip=skip,
                                  status=429, headers=headers, body=body, nonce=True, name=name, **kw))

    def already_replaced(self, count=1, name="alreadyReplaced"):
        """409 alreadyReplaced for a newOrder whose payload carries "replaces" (count times)."""
        body = {"type": "urn:ietf:params:acme:error:alreadyReplaced",
                "detail": "The certificate named in replaces has already been replaced"}
        return self.add_rule(Rule("respond", kind="newOrder", method="POST", payload_has="replaces", count=count,
                                  status=409, headers={"Content-Type": PROBLEM_JSON}, body=body, nonce=True,
                                  name=name))

    def refuse_connections(self, for_s=None, close_existing=True):
        """Stop listening (new connections are refused by the kernel); re-bind the same port after
        for_s seconds, or at accept_connections().  close_existing also ends every open client
        connection, as a CA front end going down would."""
        with self._listen_lock:
            if self._listening:
                self._stop_server()
                self.refusals.append([time.monotonic(), None])
            if close_existing:
                with self._clients_lock:
                    clients = list(self._clients)
                for s in clients:
                    try:
                        socket.socket.shutdown(s, socket.SHUT_RDWR)
                    except OSError:
                        pass
        if for_s is not None:
            t = threading.Timer(for_s, self.accept_connections)
            t.daemon = True
            self._timers.append(t)
            t.start()

    def accept_connections(self):
        """Listen again on the same address (ends a refuse_connections() period)."""
        with self._listen_lock:
            if self._listening or self._stopped:
                return
            self._start_server()
            if self.refusals and self.refusals[-1][1] is None:
                self.refusals[-1][1] = time.monotonic()

    @property
    def refusing(self):
        with self._listen_lock:
            return not self._listening and not self._stopped

    # ------------------------------------------------------------ ARI (RFC 9773)

    def enable_ari(self, enabled=True):
        """Advertise renewalInfo in the directory and answer GET /renewalInfo/<certID> ourselves
        (CertIDs without a window of their own go to the upstream's renewalInfo, when it has one).
        Ends a hide_ari()."""
        self.ari_enabled = enabled
        if enabled:
            self.ari_hidden = False

    def hide_ari(self, hidden=True):
        """The directory passes without "renewalInfo" (a CA that offers no ARI) until enable_ari().
        Only the newest Pebble has one to hide: for a test that starts without ARI, on both Pebbles."""
        self.ari_hidden = hidden
        if hidden:
            self.ari_enabled = False

    def set_ari_window(self, cert_id, start=None, end=None, explanation_url=None, retry_after=None, status=200,
                       body=None):
        """The answer for one CertID, or for every CertID without one of its own (cert_id None or "*").

        start/end: datetime (naive = UTC), epoch seconds or an RFC 3339 string.  body/status: answer
        that instead (hostile or error answers).  Returns the AriWindow.
        """
        w = AriWindow(start, end, explanation_url, retry_after, status, body)
        with self._ari_lock:
            self._ari_windows[cert_id or "*"] = w
        return w

    def clear_ari_windows(self):
        with self._ari_lock:
            self._ari_windows = {}

    def _ari_response(self, req):
        path = req.path.split("?", 1)[0]
        cid = path[len(ARI_PATH):].strip("/") if path.startswith(ARI_PATH) else path.rsplit("/", 1)[-1]
        if req.method not in ("GET", "HEAD"):
            return Response(405, [("Content-Type", PROBLEM_JSON), ("Allow", "GET")],
                            json.dumps({"type": "urn:ietf:params:acme:error:malformed",
                                        "detail": "renewalInfo is fetched with an unauthenticated GET"}))
        with self._ari_lock:
            w = self._ari_windows.get(cid) or self._ari_windows.get("*")
            known = self.known_certs.get(cid)
            self.ari_hits[cid] = self.ari_hits.get(cid, 0) + 1
        if w is None and self.upstream_ari_path and cid:
            return None     # the upstream's own answer (the caller forwards it there)
        if w is None and known is not None and self.ari_derive:
            nb, na = known
            life = na - nb
            w = AriWindow(nb + life * 2 / 3, nb + life * 2 / 3 + life / 45)
        if w is None or not cid:
            return Response(404, [("Content-Type", PROBLEM_JSON)],
                            json.dumps({"type": "urn:ietf:params:acme:error:malformed",
                                        "detail": f"no renewalInfo for certificate {cid!r}"}))
        return w.response()

    def _observe_upstream(self, req, resp):
        """Upstream answers the proxy looks at: the directory (ARI) and certificate downloads."""
        if req.kind == "directory" and (self.ari_enabled or self.ari_hidden) and resp.status == 200:
            j = resp.json()
            if isinstance(j, dict):
                if self.ari_enabled:
                    j["renewalInfo"] = f"https://{req.host}{ARI_PATH}"
                else:
                    j.pop("renewalInfo", None)
                resp.body = json.dumps(j, indent=2).encode()
        elif req.kind == "cert" and resp.status == 200 and b"-----BEGIN CERTIFICATE-----" in resp.body:
            try:
                c = _load_cert(resp.body)
                cid = ari_cert_id(c)
                nb = c.not_valid_before.replace(tzinfo=datetime.timezone.utc).timestamp()
                na = c.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp()
            except Exception:   # noqa: BLE001 - best effort; an odd certificate is not our problem here
                return
            with self._ari_lock:
                self.known_certs[cid] = (nb, na)

    # ------------------------------------------------------------ life cycle

    def _start_server(self):
        last = None
        for _ in range(100):
            try:
                srv = _Server(self._addr, _Handler)
                break
            except OSError as e:   # the port should be ours again at once; allow a moment
                last = e
                time.sleep(0.05)
        else:
            raise RuntimeError(f"faultproxy: cannot re-bind {self._addr}: {last}")
        srv.ssl_ctx = self.ssl_ctx
        srv.proxy = self
        self.server = srv
        self._serve()

    def _serve(self):
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="faultproxy", daemon=True)
        self.thread.start()
        self._listening = True

    def _stop_server(self):
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(5)
            self.thread = None
        self.server.socket.close()
        self._listening = False

    def start(self):
        with self._listen_lock:
            self._serve()
        return self

    def stop(self):
        for t in self._timers:
            t.cancel()
        with self._listen_lock:
            self._stopped = True
            if self._listening:
                self._stop_server()
            self.server.server_close()
        self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _hostport(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(description="fault-injecting HTTPS reverse proxy for ACME tests")
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT to listen on (loopback)")
    ap.add_argument("--upstream", required=True, help="HOST:PORT of Pebble")
    ap.add_argument("--cert", required=True, help="TLS certificate (PEM) the proxy presents")
    ap.add_argument("--key", required=True, help="its private key (PEM)")
    ap.add_argument("--upstream-ca", required=True, help="CA bundle that signed Pebble's TLS certificate")
    ap.add_argument("--rules", help="JSON file: list of rule objects")
    ap.add_argument("--log", help="append one JSON line per request to this file")
    ap.add_argument("--ari", action="store_true", help="advertise and serve renewalInfo (windows derived "
                                                       "from the certificates downloaded through the proxy)")
    a = ap.parse_args(argv)
    proxy = FaultProxy(_hostport(a.listen), _hostport(a.upstream), a.cert, a.key, a.upstream_ca,
                       log_path=a.log, keep_bodies=False)
    if a.rules:
        with open(a.rules) as f:
            for d in json.load(f):
                proxy.add_rule(d)
    proxy.enable_ari(a.ari)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    proxy.start()
    print(f"faultproxy listening on https://{proxy.server.server_address[0]}:{proxy.port} "
          f"-> https://{a.upstream}", flush=True)
    stop.wait()
    proxy.stop()
    by_kind = {}
    for e in proxy.log.entries:
        by_kind[e["kind"]] = by_kind.get(e["kind"], 0) + 1
    print(json.dumps({"requests": len(proxy.log.entries), "by_kind": by_kind}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
