#!/usr/bin/python3
# Fault-injecting HTTPS reverse proxy between an ACME client and Pebble: counts requests and injects faults by rule.
"""faultproxy - a small HTTPS reverse proxy for ACME tests (stdlib only).

Every request is forwarded to the upstream (Pebble) with the client's Host header
kept as is.  Pebble 2.4 builds every URL it hands out (directory, Location, Link,
order/authz/challenge/certificate URLs) from the request's Host header and checks
the JWS "url" against "https://" + Host + RequestURI, so with Host passed through
all URLs point at the proxy and no rewriting is needed.

Each request is logged (ProxyLog entries) and matched against RULES, in order.
A rule that matches applies its action:

  pre-forward actions (the upstream may never see the request)
    delay     sleep `seconds`, then go on (slow responses; combine with others)
    respond   answer status/headers/body without contacting upstream
    drop      close the client connection without answering (when="before")
  post-forward actions (the upstream processed the request)
    status    override the status code (and add/replace `headers`)
    json_merge  merge keys into a JSON response body ("{base}" -> https://<Host>)
    drop      when="after": forward, then close without answering
    callback  fn(request, response) -> response|None, for anything else

Matching: method, path (regex, re.search on the path incl. query), kind
(classification, see classify()), if_body_status (post-forward: only when the
upstream JSON body's "status" is one of these), nth (1-based match numbers to
act on), skip (ignore the first N matches), count (act at most N times),
after_s / for_s (active window in seconds since the rule was added).

Usage from Python:
    proxy = FaultProxy(("127.0.0.1", 0), upstream=("127.0.0.1", pebble_port),
                       certfile=..., keyfile=..., upstream_ca=...).start()
    proxy.add_rule(Rule("status", method="HEAD", kind="newNonce", status=204))
    ...; proxy.log.count(kind="newOrder"); proxy.stop()

Standalone:
    faultproxy.py --listen 127.0.0.1:14443 --upstream 127.0.0.1:14000 \
        --cert proxy.pem --key proxy.key --upstream-ca tls-ca.pem \
        [--rules rules.json] [--log requests.jsonl]
    rules.json: a JSON list of rule objects, e.g.
        [{"action": "status", "method": "HEAD", "kind": "newNonce", "status": 204}]
"""

import argparse
import http.client
import http.server
import json
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

# Pebble 2.4 path prefixes (wfe/wfe.go constants) -> request kind.
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
    ("/renewal-info", "renewalInfo"),  # not in Pebble 2.4: served by rules (ARI tests)
)

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "trailers", "transfer-encoding", "upgrade", "content-length"}


def classify(path):
    p = path.split("?", 1)[0]
    for prefix, kind in PATH_KINDS:
        if p == prefix or (prefix.endswith("/") and p.startswith(prefix)) or p.startswith(prefix + "/"):
            return kind
    return "other"


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


class Rule:
    PRE = ("delay", "respond", "drop")
    POST = ("status", "json_merge", "callback")

    def __init__(self, action, method=None, path=None, kind=None, nth=None, skip=0, count=None,
                 if_body_status=None, after_s=None, for_s=None, name=None,
                 seconds=0.0, status=None, headers=None, body=b"", when="before", how="close",
                 merge=None, fn=None):
        if action not in self.PRE + self.POST:
            raise ValueError(f"unknown action {action!r}")
        if action == "drop" and when not in ("before", "after"):
            raise ValueError("drop: when must be 'before' or 'after'")
        if if_body_status is not None and action in ("delay", "respond"):
            raise ValueError("if_body_status needs the upstream response: not with delay/respond")
        if action == "drop" and when == "before" and if_body_status is not None:
            raise ValueError("if_body_status needs the upstream response: use when='after'")
        self.action = action
        self.method = method.upper() if method else None
        self.path_re = re.compile(path) if path else None
        self.kind = kind
        self.nth = {nth} if isinstance(nth, int) else (set(nth) if nth else None)
        self.skip = skip
        self.count = count
        self.if_body_status = ({if_body_status} if isinstance(if_body_status, str)
                               else set(if_body_status) if if_body_status else None)
        self.after_s, self.for_s = after_s, for_s
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
        self.armed_at = time.monotonic()
        self.matches = 0    # requests that matched method/path/kind while active
        self.hits = 0       # times the action was applied
        self.enabled = True
        self._lock = threading.Lock()

    @property
    def post(self):
        return self.action in self.POST or (self.action == "drop" and self.when == "after")

    def disable(self):
        self.enabled = False

    def _active(self):
        if not self.enabled:
            return False
        age = time.monotonic() - self.armed_at
        if self.after_s is not None and age < self.after_s:
            return False
        if self.for_s is not None and age >= (self.after_s or 0) + self.for_s:
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

    def select(self, kind=None, method=None, status=None, since=0):
        with self._lock:
            out = list(self.entries[since:])
        return [e for e in out
                if (kind is None or e["kind"] == kind)
                and (method is None or e["method"] == method)
                and (status is None or e["status"] == status)]

    def count(self, **kw):
        return len(self.select(**kw))

    def by_kind(self, since=0):
        c = {}
        for e in self.select(since=since):
            c[e["kind"]] = c.get(e["kind"], 0) + 1
        return c

    def close(self):
        if self._file:
            self._file.close()


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

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        if self.upstream is not None:
            self.upstream.close()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except _Dropped:
            self.close_connection = True
        except (ssl.SSLError, ConnectionError, socket.timeout):
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
                 "conn": self.conn_id, "resp_json_status": None, "resp_body": None, "t_done": None}
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
        entry["t_done"] = time.time()
        entry["mono_done"] = time.monotonic()
        p.log.add(entry)
        if isinstance(resp, Response):
            self._send(req, resp)
        else:
            self._drop(resp)
            raise _Dropped()

    def _process(self, req, entry):
        rules = self.proxy.rules_snapshot()
        selected = [r for r in rules if r.select(req)]
        post = []
        for r in selected:
            if r.post:
                post.append(r)
                continue
            entry["rules"].append(r.name)
            if r.action == "delay":
                time.sleep(r.seconds)
            elif r.action == "respond":
                resp = Response(r.status or 200, list(r.headers.items()), r.body)
                if not any(k.lower() == "date" for k, _ in resp.headers):
                    resp.headers.append(("Date", formatdate(usegmt=True)))
                return self._post_rules(req, resp, post, entry)
            elif r.action == "drop":
                return r.how
        resp = self._forward(req)
        entry["upstream_status"] = resp.status
        return self._post_rules(req, resp, post, entry)

    def _post_rules(self, req, resp, post, entry):
        for r in post:
            if not r.body_ok(resp):
                continue
            entry["rules"].append(r.name)
            if r.action == "drop":
                return r.how
            if r.action == "status":
                if r.status is not None:
                    resp.status = int(r.status)
                    resp.reason = None
                for k, v in r.headers.items():
                    resp.set_header(k, v)
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

    def _forward(self, req):
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
                conn.putrequest(req.method, req.path, skip_host=True, skip_accept_encoding=True)
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
        return Response(502, [("Content-Type", "application/problem+json"),
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


class FaultProxy:
    def __init__(self, listen, upstream, certfile, keyfile, upstream_ca, log_path=None, keep_bodies=True):
        self.upstream = upstream
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
        self.server = _Server(listen, _Handler)
        self.server.ssl_ctx = self.ssl_ctx
        self.server.proxy = self
        self.thread = None

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def directory_url(self):
        return f"https://127.0.0.1:{self.port}/dir"

    def _next_conn_id(self):
        with self._conn_lock:
            self._conn_ids += 1
            return self._conn_ids

    @property
    def connections(self):
        """Number of client connections accepted so far (keep-alive reuse shows as few connections)."""
        with self._conn_lock:
            return self._conn_ids

    def add_rule(self, rule=None, **kw):
        if rule is None:
            rule = Rule(**kw)
        elif isinstance(rule, dict):
            rule = Rule.from_dict(rule)
        with self._rules_lock:
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

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="faultproxy", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join(5)
            self.thread = None
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
    a = ap.parse_args(argv)
    proxy = FaultProxy(_hostport(a.listen), _hostport(a.upstream), a.cert, a.key, a.upstream_ca,
                       log_path=a.log, keep_bodies=False)
    if a.rules:
        with open(a.rules) as f:
            for d in json.load(f):
                proxy.add_rule(d)
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
