# `acmed import certbot`: a real certbot setup (certbot 2.1 against Pebble) adopted as it is: same account, same files, nothing re-issued.
"""Issue 11, "Moving from certbot".

certbot itself makes the setup: one certificate through its standalone server with a deploy hook that
reloads nginx, one RSA certificate through a webroot with a hook script, and a global hook in
renewal-hooks/deploy/. Then `acmed import certbot DIR` prints the configuration and changes nothing;
`--write FILE` imports certbot's account (same key, same account URL), adopts the live certificates
(certbot's live/<name>/*.pem become links to acmed's files) and writes FILE. acmed then orders nothing
until a renewal is due, and a renewal uses certbot's account and lands where certbot's paths point.
"""
import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess

import pytest

import pebble_env as pe
from webserver import WebServer

pytestmark = [pytest.mark.acmed, pytest.mark.pebble(nonce_reject=0)]

ISSUE_TIMEOUT = 180       # a failure bound only: every wait is for an event
STD = ["std.import.example.com", "www.std.import.example.com"]
WEB = ["web.import.example.com"]


def certbot(workspace, pebble, directory_url, *args):
    if not shutil.which("certbot"):
        pytest.fail("certbot is not installed (tests/deps.sh installs it)")
    le = workspace / "letsencrypt"
    cmd = ["certbot", "--config-dir", str(le), "--work-dir", str(workspace / "certbot-work"),
           "--logs-dir", str(workspace / "certbot-logs"), "--server", directory_url, "--non-interactive",
           "--agree-tos", "--register-unsafely-without-email", *args]
    env = dict(os.environ, REQUESTS_CA_BUNDLE=str(pebble.ca_bundle))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=ISSUE_TIMEOUT)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return le


def make_certbot_setup(workspace, pebble, proxy):
    """What an admin has after two years of certbot: two lineages, hooks, one account."""
    www = workspace / "www"
    www.mkdir()
    hook = workspace / "copy-hook.sh"
    hook.write_text(f'#!/bin/sh\necho "web $RENEWED_LINEAGE $RENEWED_DOMAINS" >> {workspace}/hook.log\n')
    hook.chmod(0o755)
    le = certbot(workspace, pebble, proxy.directory_url, "certonly", "--standalone",
                 "--http-01-port", str(pebble.http01_port), "--cert-name", "std",
                 "-d", STD[0], "-d", STD[1], "--deploy-hook", "systemctl reload nginx")
    with WebServer(www, pebble.http01_port):
        certbot(workspace, pebble, proxy.directory_url, "certonly", "--webroot", "-w", str(www),
                "--cert-name", "web", "-d", WEB[0], "--key-type", "rsa", "--deploy-hook", str(hook))
    glob = le / "renewal-hooks" / "deploy" / "50-global"
    glob.write_text(f'#!/bin/sh\necho "global $RENEWED_LINEAGE" >> {workspace}/hook.log\n')
    glob.chmod(0o755)
    (workspace / "hook.log").unlink(missing_ok=True)     # certbot ran the web hook once already
    return le


def account_uri(le):
    regr = list(le.glob("accounts/*/*/*/regr.json"))
    assert len(regr) == 1, regr
    return json.loads(regr[0].read_text())["uri"]


def serial_of(path):
    return pe.read_pem_certs(path.read_bytes())[0].serial_number


def new_orders(proxy, since=0):
    return proxy.log.select(kind="newOrder", method="POST", status=201, since=since)


def base_config(acmed):
    """The acmed.yaml in place before the import: state_dir, listener, the CA's trust."""
    acmed.write_config([])
    return acmed.config.read_text()


def test_import_prints_the_configuration_and_changes_nothing(acmed, proxy, pebble, workspace):
    le = make_certbot_setup(workspace, pebble, proxy)
    base_config(acmed)
    links = {p: os.readlink(p) for p in le.glob("live/*/*.pem")}
    r = acmed.run("import", "certbot", str(le))
    assert r.rc == 0, r.describe()
    # the YAML names both certificates as certbot had them, and reuses the CA the config names
    y = r.stdout
    assert "  - name: pebble\n" in y and f"    directory: {proxy.directory_url}\n" in y, y
    assert f"# certbot's account" in y and account_uri(le) in y, y
    assert "  - name: std" in y and f"    domains: [{STD[0]}, {STD[1]}]" in y, y
    assert "    key_type: ecdsa-p256" in y and "    reload: [nginx.service]" in y, y
    assert "  - name: web" in y and f"    domains: [{WEB[0]}]" in y and "    key_type: rsa-2048" in y, y
    assert f"    webroot: {workspace / 'www'}" in y, y
    # both hooks, each its own argument run by its own shell, in certbot's order
    assert re.search(r'exec: \[/bin/sh, -c, "rc=0; for h in .*", sh, \S*/copy-hook\.sh, \S*/50-global\]', y), y
    assert "listened on port" in r.stderr and "nothing written" in r.stderr, r.stderr
    # nothing changed: no account, no files, certbot's links still into its archive
    assert not (workspace / "state" / "accounts").exists()
    assert not (workspace / "state" / "live").exists()
    assert {p: os.readlink(p) for p in le.glob("live/*/*.pem")} == links
    # and the printed configuration is one acmed accepts
    (workspace / "printed.yaml").write_text(y)
    r = acmed.run("-c", str(workspace / "printed.yaml"), "check-config", config=False)
    assert r.rc == 0, r.describe()


def test_import_write_adopts_account_and_files_and_reissues_nothing(acmed, proxy, pebble, workspace):
    le = make_certbot_setup(workspace, pebble, proxy)
    before = base_config(acmed)
    uri = account_uri(le)
    serials = {n: serial_of(le / "live" / n / "cert.pem") for n in ("std", "web")}
    state = workspace / "state"

    r = acmed.run("import", "certbot", str(le), "--write", str(acmed.config))
    assert r.rc == 0, r.describe()
    assert "2 certificates adopted, nothing re-issued" in r.stderr and "certbot.timer" in r.stderr, r.stderr
    assert (workspace / "acmed.yaml.bak").read_text() == before
    r = acmed.run("check-config")
    assert r.rc == 0, r.describe()

    # certbot's account, as acmed keeps accounts: its key (0600) and URL
    acct = state / "accounts" / "pebble"
    assert stat.S_IMODE((acct / "account.key").stat().st_mode) == 0o600
    assert json.loads((acct / "account.json").read_text())["kid"] == uri
    # certbot's paths now lead to acmed's files, which hold the same certificate and key
    for name in ("std", "web"):
        for f in ("privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"):
            p = le / "live" / name / f
            assert os.readlink(p) == str(state / "live" / name / f), p
        assert serial_of(le / "live" / name / "cert.pem") == serials[name]
        assert stat.S_IMODE((state / "live" / name / "privkey.pem").stat().st_mode) == 0o600

    # `account show`: certbot's account URL, and certbot's key (same RFC 7638 thumbprint as its JWK)
    jwk = json.loads(next(le.glob("accounts/*/*/*/private_key.json")).read_text())
    canon = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    thumb = base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()
    r = acmed.run("account", "show", "pebble")
    assert r.rc == 0, r.describe()
    assert f"account:     {uri}" in r.stdout and f"rsa-2048 (thumbprint {thumb})" in r.stdout, r.stdout
    assert jwk["d"] not in r.stdout + r.stderr

    # acmed has nothing to do: no account made, no order
    mark = proxy.log.mark()
    r = acmed.run_once(timeout=60)
    assert r.rc == 0, r.describe()
    assert proxy.log.count(kind="newAccount", since=mark) == 0, proxy.log.by_kind(since=mark)
    assert new_orders(proxy, since=mark) == [], proxy.log.by_kind(since=mark)
    # but the contact acmed.yaml gives this CA (certbot keeps none) reached the account before --once ended
    assert json.loads((acct / "account.json").read_text())["contact"] == ["mailto:admin@example.com"]
    assert "CA pebble: the account's contact is now mailto:admin@example.com" in r.stderr, r.stderr
    r = acmed.run("status", "--json")
    certs = {c["name"]: c for c in json.loads(r.stdout)["certificates"]}
    assert certs["std"]["state"] == "valid" and certs["web"]["state"] == "valid", certs
    assert certs["web"]["issued_by"] == proxy.directory_url, certs["web"]

    # a renewal: certbot's account, an RSA key again, certbot's path shows it, the hooks ran.
    # The web server has the http-01 port now: acmed's listener (for std) moves aside.
    y = acmed.config.read_text()
    assert f"listen: [127.0.0.1:{pebble.http01_port}]" in y, y
    acmed.config.write_text(y.replace(f"listen: [127.0.0.1:{pebble.http01_port}]",
                                      f"listen: [127.0.0.1:{pe.free_port()}]"))
    with WebServer(workspace / "www", pebble.http01_port):
        d = acmed.spawn("run")
        d.wait_for_stderr(r"start-up: every certificate looked at", timeout=60)
        mark = proxy.log.mark()
        r = acmed.run("renew", "web", "--force")
        assert r.rc == 0, r.describe()
        d.wait_for_stderr(r"\[web\] certificate (renewed|issued)", timeout=ISSUE_TIMEOUT)
        pe.wait_until(lambda: (workspace / "hook.log").exists() and
                      len((workspace / "hook.log").read_text().splitlines()) == 2, 30, what="both hooks ran")
        d.stop()
    orders = new_orders(proxy, since=mark)
    assert len(orders) == 1 and orders[0]["kid"] == uri, orders
    assert proxy.log.count(kind="newAccount", since=mark) == 0
    assert serial_of(le / "live" / "web" / "cert.pem") != serials["web"]
    assert serial_of(le / "live" / "std" / "cert.pem") == serials["std"]
    pe.verify_output_dir(le / "live" / "web", WEB, "rsa-2048", pebble.root_path)
    lines = (workspace / "hook.log").read_text().splitlines()
    assert lines == [f"web {state / 'live' / 'web'} {WEB[0]}", f"global {state / 'live' / 'web'}"], lines

    # importing again changes nothing and says so
    r = acmed.run("import", "certbot", str(le), "--write", str(acmed.config))
    assert r.rc == 0, r.describe()
    assert serial_of(le / "live" / "web" / "cert.pem") != serials["web"]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_import_as_root_gives_state_dir_to_its_owner(acmed, proxy, pebble, workspace):
    le = make_certbot_setup(workspace, pebble, proxy)
    base_config(acmed)
    state = workspace / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)           # the service user's, as systemd's StateDirectory= makes it
    os.chmod(workspace, 0o755)
    r = acmed.run("import", "certbot", str(le), "--write", str(acmed.config))
    assert r.rc == 0, r.describe()
    owners = {}
    for root, dirs, files in os.walk(state):
        for n in dirs + files:
            p = os.path.join(root, n)
            owners[p] = os.lstat(p).st_uid
    assert owners and set(owners.values()) == {65534}, owners
    # the webroot's challenge directory too: the daemon writes tokens there
    assert (workspace / "www" / ".well-known" / "acme-challenge").stat().st_uid == 65534


def test_import_says_what_it_cannot_take_and_takes_the_rest(acmed, proxy, pebble, workspace):
    le = make_certbot_setup(workspace, pebble, proxy)
    base_config(acmed)
    conf = (le / "renewal" / "std.conf").read_text()
    # a DNS plugin's certificate, and one whose account is gone
    (le / "renewal" / "dnsname.conf").write_text(conf.replace("authenticator = standalone",
                                                              "authenticator = dns-cloudflare"))
    (le / "renewal" / "orphan.conf").write_text(re.sub(r"account = \w+", "account = " + "ab" * 16, conf))
    r = acmed.run("import", "certbot", str(le), "--write", str(acmed.config))
    assert r.rc == 1, r.describe()
    assert "dnsname: not imported: authenticator dns-cloudflare: certbot's DNS plugin and its credentials are not carried over" in r.stderr, r.stderr
    assert re.search(r"orphan: not imported: .*/" + "ab" * 16 + r"/regr.json: No such file", r.stderr), r.stderr
    y = acmed.config.read_text()
    assert "# Not imported: dnsname" in y and "# Not imported: orphan" in y and "  - name: std" in y, y
    r = acmed.run("check-config")
    assert r.rc == 0, r.describe()
    # hostile trees: an account id that walks out of accounts/, a server that is not https, a damaged key
    (le / "renewal" / "walk.conf").write_text(re.sub(r"account = \w+", "account = ../../../../etc", conf))
    (le / "renewal" / "plain.conf").write_text(conf.replace("server = https://", "server = http://"))
    r = acmed.run("import", "certbot", str(le))
    assert r.rc == 1, r.describe()
    assert "walk: not imported: account ../../../../etc of https://" in r.stderr and \
        "not a certbot account id or server" in r.stderr, r.stderr
    assert "plain: not imported: " in r.stderr and "no https:// server in [renewalparams]" in r.stderr, r.stderr
    key = next(le.glob("accounts/*/*/*/private_key.json"))
    jwk = json.loads(key.read_text())
    key.write_text(json.dumps(dict(jwk, d=jwk["p"])))           # the private half no longer the public's
    r = acmed.run("import", "certbot", str(le))
    assert r.rc == 1 and "private_key.json: not a usable private key" in r.stderr, r.describe()
    assert jwk["p"] not in r.stdout + r.stderr
    key.write_text("{not json")
    r = acmed.run("import", "certbot", str(le))
    assert r.rc == 1 and "private_key.json: not a JSON object" in r.stderr, r.describe()

    # a directory that is not certbot's
    r = acmed.run("import", "certbot", str(workspace / "nowhere"))
    assert r.rc == 1 and "is " in r.stderr and "certbot's directory?" in r.stderr, r.describe()


def test_import_beside_an_account_acmed_made(acmed, proxy, pebble, workspace):
    """acmed already ran with this CA (its own account in state_dir): certbot's account is not put over it,
    it becomes a CA of its own beside it, with the settings of the configured one."""
    le = make_certbot_setup(workspace, pebble, proxy)
    base_config(acmed)
    mine = workspace / "state" / "accounts" / "pebble" / "account.key"
    mine.parent.mkdir(parents=True)
    r = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-out", str(mine)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    before = mine.read_bytes()
    r = acmed.run("import", "certbot", str(le), "--write", str(acmed.config))
    assert r.rc == 0, r.describe()
    y = acmed.config.read_text()
    assert "  - name: pebble-certbot\n" in y and "    ca: pebble-certbot\n" in y, y
    assert f"    ca_bundle: {pebble.ca_bundle}" in y, y          # the configured CA's settings
    assert mine.read_bytes() == before
    acct = workspace / "state" / "accounts" / "pebble-certbot"
    assert json.loads((acct / "account.json").read_text())["kid"] == account_uri(le)
    r = acmed.run("check-config")
    assert r.rc == 0, r.describe()
