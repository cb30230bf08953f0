# check-config, as an admin runs it before trusting a config: every error at once, the files it names, unit names as systemctl takes them.
"""Issue 11, "Trying before trusting": check-config checks what it can without the network.

- every error of the file, each FILE:LINE:COL, then "N errors" (it used to stop at the first);
- files named exist and are usable: ca_bundle readable and holding a certificate, exec an absolute
  path to an executable (acmed runs no shell and no PATH search), output_dir a directory writable
  by the service user;
- `reload: [nginx]` is nginx.service, as systemctl takes it.
"""
import json

import pytest

import pebble_env as pe

pytestmark = pytest.mark.acmed


def check(acmed_bin, cfg):
    return pe.run_acmed(["check-config"], timeout=30, config=cfg, acmed_bin=acmed_bin)


def test_every_error_at_once(acmed_bin, workspace):
    cfg = workspace / "acmed.yaml"
    cfg.write_text(
        "state_dir: state\n"                                        # 1
        "cas:\n"                                                    # 2
        "  - name: le\n"                                            # 3
        "    directory: https://acme.example/dir\n"                 # 4
        "    contact: [ops@example.org]\n"                          # 5
        "    timeout: 2h\n"                                         # 6
        "certificates:\n"                                           # 7
        "  - name: web\n"                                           # 8
        "    domains: [web.example.org]\n"                          # 9
        "    key_type: rsa-1024\n"                                  # 10
        "  - name: api\n"                                           # 11
        "    domains: [api.example.org]\n"                          # 12
        "    renew_before: soon\n"                                  # 13
        "    exec: /usr/local/bin/hook --quiet\n")                  # 14
    r = check(acmed_bin, cfg)
    assert r.rc == 2, r.describe()
    lines = r.stderr.splitlines()
    assert [x.split(": ", 1)[0] for x in lines[:-1]] == [
        f"{cfg}:5:15", f"{cfg}:6:14", f"{cfg}:10:15", f"{cfg}:13:19", f"{cfg}:14:11"], r.stderr
    assert "contact: expected a \"mailto:user@example.org\" address" in lines[0]
    assert "timeout: expected a duration from 1s to 1h" in lines[1]
    assert "key_type: expected one of" in lines[2]
    assert "renew_before: expected a duration" in lines[3]
    assert "exec: expected a list (argv)" in lines[4]
    assert lines[-1] == f"{cfg}: 5 errors"
    # the daemon refuses the file at the first of them, before touching the network
    r = pe.run_acmed(["run", "--once", "--timeout", "10"], timeout=30, config=cfg, acmed_bin=acmed_bin)
    assert r.rc == 2 and r.stderr.strip().splitlines()[-1] == lines[0], r.describe()


def test_files_named_and_unit_names(acmed_bin, workspace):
    not_exec = workspace / "hook.sh"
    not_exec.write_text("#!/bin/sh\nexit 0\n")
    not_exec.chmod(0o644)
    a_file = workspace / "not-a-dir"
    a_file.write_text("x\n")
    empty_bundle = workspace / "empty.pem"
    empty_bundle.write_text("nothing here\n")
    cfg = workspace / "acmed.yaml"
    text = (
        "state_dir: state\n"                                                   # 1
        "cas:\n"                                                               # 2
        "  - name: a\n"                                                        # 3
        "    directory: https://acme.example/dir\n"                            # 4
        "    ca_bundle: missing.pem\n"                                         # 5
        "  - name: b\n"                                                        # 6
        "    directory: https://acme.example/dir2\n"                           # 7
        f"    ca_bundle: {json.dumps(str(empty_bundle))}\n"                    # 8
        "certificates:\n"                                                      # 9
        "  - name: web\n"                                                      # 10
        "    ca: a\n"                                                          # 11
        "    domains: [web.example.org]\n"                                     # 12
        "    reload: [nginx, php8.2-fpm, \"postfix@main\"]\n"                  # 13
        "    exec: [push-cert, --quiet]\n"                                     # 14
        "  - name: api\n"                                                      # 15
        "    ca: a\n"                                                          # 16
        "    domains: [api.example.org]\n"                                     # 17
        f"    exec: [{json.dumps(str(not_exec))}]\n"                           # 18
        "  - name: mail\n"                                                     # 19
        "    ca: b\n"                                                          # 20
        "    domains: [mail.example.org]\n"                                    # 21
        f"    output_dir: {json.dumps(str(a_file))}\n"                         # 22
        "    exec: [/nonexistent/hook]\n")                                     # 23
    cfg.write_text(text)
    r = check(acmed_bin, cfg)
    assert r.rc == 2, r.describe()
    errs = r.stderr.splitlines()
    assert errs == [
        f"{cfg}:5:16: error: CA a: ca_bundle {workspace}/missing.pem: No such file or directory",
        f"{cfg}:8:16: error: CA b: ca_bundle {empty_bundle}: no PEM certificate in it",
        f"{cfg}:14:12: error: certificate web: exec push-cert: not an absolute path (acmed runs it without "
        "a shell or PATH)",
        f"{cfg}:18:12: error: certificate api: exec {not_exec}: not executable",
        f"{cfg}:23:12: error: certificate mail: exec /nonexistent/hook: No such file or directory",
        f"{cfg}:22:17: error: certificate mail: output_dir {a_file} is not a directory",
        f"{cfg}: 6 errors",
    ], r.stderr

    # Fixed (a real certificate as the bundle, the hook executable, no file in the way): it passes;
    # `reload: [nginx, ...]` is accepted as the services systemctl would reload (test_deploy reloads one).
    pem = pe.TlsCA(workspace / "tls-ca").ca_path.read_bytes()
    (workspace / "missing.pem").write_bytes(pem)
    empty_bundle.write_bytes(pem)
    not_exec.chmod(0o755)
    a_file.unlink()
    cfg.write_text(text.replace("push-cert", str(not_exec)).replace("/nonexistent/hook", str(not_exec)))
    r = check(acmed_bin, cfg)
    assert r.rc == 0, r.describe()
    assert r.stdout == f"{cfg}: ok (3 certificates, 2 CAs)\n" and r.stderr == "", r.describe()


def test_include_conf_d_reload_adds_a_certificate(acmed, proxy, pebble, workspace):
    """include: conf.d/*.yaml: config management drops one file per certificate; `acmed reload` takes a new
    one in (and issues it), an error in a fragment is reported at FILE:LINE:COL and the daemon keeps running."""
    conf_d = workspace / "conf.d"
    conf_d.mkdir()
    base = [{"name": "main", "key_type": "ecdsa-p256", "domains": ["main.include.example.com"]}]
    acmed.write_config(base, extra_top={"include": json.dumps("conf.d/*.yaml")})
    d = acmed.spawn("run")
    d.wait_for_stderr(r"\[main\] certificate issued", timeout=180)

    (conf_d / "10-web.yaml").write_text(
        "certificates:\n"
        "  - name: web\n"
        "    domains: [web.include.example.com]\n"
        "    output_dir: live/web\n")                    # relative to conf.d/
    r = acmed.run("reload")
    assert r.rc == 0 and r.stdout == "reloaded: 2 certificates (1 added, 0 removed, 0 changed)\n", r.describe()
    d.wait_for_stderr(r"\[web\] certificate issued", timeout=180)
    pe.verify_output_dir(conf_d / "live" / "web", ["web.include.example.com"], "ecdsa-p256", pebble.root_path)

    # A broken fragment: check-config and reload say where; the running configuration stays.
    bad = conf_d / "20-bad.yaml"
    bad.write_text("certificates:\n  - name: bad\n    domains: [bad.include.example.com]\n    key_type: rsa-1\n")
    r = acmed.run("check-config")
    assert r.rc == 2 and r.stderr.startswith(f"{bad}:4:15: key_type: expected one of"), r.describe()
    r = acmed.run("reload")
    assert r.rc == 1 and f"{bad}:4:15: key_type" in r.stdout + r.stderr, r.describe()
    assert d.alive()
    bad.unlink()
    r = acmed.run("reload")
    assert r.rc == 0 and "(0 added, 0 removed, 0 changed)" in r.stdout, r.describe()
    d.stop()
