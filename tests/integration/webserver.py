# A web server that owns the http-01 port, as nginx would: serves a directory, records each GET.
import http.server
import os
import stat
import threading


class WebServer:
    """Serves `root` on 127.0.0.1:port; records (path, status, body, file mode) of each GET."""

    def __init__(self, root, port):
        self.root, self.seen, self.lock = root, [], threading.Lock()
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(root), **kw)

            def do_GET(self):
                path = self.translate_path(self.path)
                try:
                    st = os.stat(path)
                    with open(path, "rb") as f:
                        body = f.read()
                    mode, status = stat.S_IMODE(st.st_mode), 200
                except OSError:
                    body, mode, status = b"", None, 404
                with outer.lock:
                    outer.seen.append((self.path, status, body, mode))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
