# http-01 through a web server that owns port 80: acmed writes the token files into its webroot (certbot's most used mode).
"""Issue 11, "http-01 webroot": `webroot: DIR` writes DIR/.well-known/acme-challenge/<token> where the
running web server already serves it, and removes it after; acmed's own listener is not needed (a daemon
whose certificates all use a webroot does not take the port).

The web server here is Python's http.server on the port Pebble validates http-01 against.
"""
import json
import os
import socket
import stat

import pytest

import pebble_env as pe
from webserver import WebServer

pytestmark = pytest.mark.acmed

ISSUE_TIMEOUT = 180       # a failure bound only: every wait is for an event


def refused(port):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        return False
    except ConnectionRefusedError:
        return True
    finally:
        s.close()


def test_webroot_token_files_served_by_the_web_server_and_removed(acmed, proxy, pebble, workspace):
    webroot = workspace / "www"
    challenge_dir = webroot / ".well-known" / "acme-challenge"
    challenge_dir.mkdir(parents=True)
    (challenge_dir / "keep-me").write_text("not acmed's\n")       # other files there are never touched
    own_port = pe.free_port()                                     # acmed's listener: must stay closed
    certs = [{"name": "site", "key_type": "ecdsa-p256", "domains": ["site.webroot.example.com",
                                                                  "www.site.webroot.example.com"],
              "webroot": json.dumps(str(webroot))}]
    acmed.outputs = pe.write_config(acmed.config, workspace, proxy.directory_url, pebble.ca_bundle, own_port, certs)
    r = acmed.run("check-config")
    assert r.rc == 0, r.describe()

    with WebServer(webroot, pebble.http01_port) as web:
        d = acmed.spawn("run")
        d.wait_for_stderr(r"\[site\] certificate issued", timeout=ISSUE_TIMEOUT)
        acmed.verify(certs)
        # the CA fetched each token from the web server: the key authorization, a file it may read
        tokens = [(p, body, mode) for p, status, body, mode in web.seen
                  if p.startswith("/.well-known/acme-challenge/") and status == 200]
        assert len({p for p, _, _ in tokens}) == 2, web.seen
        for p, body, mode in tokens:
            token = p.rsplit("/", 1)[1]
            assert body.decode().startswith(token + ".") and len(body.split(b".")) == 2, (p, body)
            assert mode == 0o644, (p, oct(mode))
        # gone after the order; the other file stays
        pe.wait_until(lambda: sorted(os.listdir(challenge_dir)) == ["keep-me"], 30,
                      what=f"token files removed from {challenge_dir}: {os.listdir(challenge_dir)}")
        assert (challenge_dir / "keep-me").read_text() == "not acmed's\n"
        assert oct(stat.S_IMODE(challenge_dir.stat().st_mode)) == oct(0o755)
        # all certificates go through the webroot: the daemon left port 80 (here own_port) to the web server
        assert refused(own_port), "acmed opened its own http-01 listener although every certificate uses a webroot"
        d.stop()


def test_webroot_missing_is_a_check_config_error_and_a_clear_failure(acmed, proxy, pebble, workspace):
    webroot = workspace / "no-such-dir"
    certs = [{"name": "gone", "key_type": "ecdsa-p256", "domains": ["gone.webroot.example.com"],
              "webroot": json.dumps(str(webroot))}]
    acmed.outputs = pe.write_config(acmed.config, workspace, proxy.directory_url, pebble.ca_bundle,
                                    pe.free_port(), certs)
    r = acmed.run("check-config")
    assert r.rc == 2 and f"error: certificate gone: webroot {webroot}: No such file or directory" in r.stderr, \
        r.describe()
    # run anyway: the order fails with the reason, and acmed makes no webroot of its own (nobody would serve it)
    r = acmed.run_once(timeout=60)
    assert r.rc == 1, r.describe()
    assert f"webroot {webroot}: No such file or directory" in r.stderr, r.stderr
    assert not webroot.exists()
