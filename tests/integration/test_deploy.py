# After a new certificate: the exec hook, then systemd units reloaded over D-Bus (private bus + dbusmock systemd) once per batch; the hook's environment.
import json
import re

import pytest

import deploy_bus

pytestmark = pytest.mark.acmed


@pytest.fixture
def sysbus(workspace):
    why = deploy_bus.available()
    if why:
        pytest.skip(why)
    bus = deploy_bus.PrivateSystemBus(workspace / "dbus", results={"bad.service": "failed"},
                                      delays={"php-fpm.service": 300})
    bus.start()
    yield bus
    bus.stop()


def write_hook(workspace, sysbus):
    """A hook that records argv, environment and what it could see when it ran."""
    outdir = workspace / "hooks"
    outdir.mkdir()
    hook = workspace / "deploy hook.sh"     # a space: no shell may split it
    hook.write_text(
        "#!/bin/sh\n"
        "{\n"
        "  printf 'argc=%s\\n' \"$#\"\n"
        "  for a in \"$@\"; do printf 'arg=[%s]\\n' \"$a\"; done\n"
        "  test -s \"$RENEWED_LINEAGE/fullchain.pem\" && echo fullchain=present\n"
        f"  for m in '{sysbus.markers}'/*.removed; do [ -e \"$m\" ] && echo \"job=${{m##*/}}\"; done\n"
        "  env\n"
        f"}} > '{outdir}'/\"$ACMED_CERT_NAME\".out\n"
        "echo \"deployed $ACMED_CERT_NAME\"\n")
    hook.chmod(0o755)
    return hook, outdir


def hook_record(path):
    lines = path.read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith(("arg", "job=")))
    return {
        "argc": int(next(line for line in lines if line.startswith("argc="))[5:]),
        "args": [line[5:-1] for line in lines if line.startswith("arg=[")],
        "jobs": [line[4:] for line in lines if line.startswith("job=")],
        "fullchain": "fullchain=present" in lines,
        "env": env,
    }


def y(v):
    return json.dumps(v)


def test_units_reloaded_once_per_batch_and_hook_env(acmed, proxy, sysbus, workspace):
    hook, outdir = write_hook(workspace, sysbus)
    certs = [
        {"name": "web", "key_type": "ecdsa-p256", "domains": ["web.deploy.example.com", "www.web.deploy.example.com"],
         "reload": y(["nginx.service", "php-fpm.service"]), "exec": y([str(hook), "--quiet", "two words"])},
        # "nginx" is nginx.service, as systemctl takes it: one unit with web's
        {"name": "api", "key_type": "ecdsa-p256", "domains": ["api.deploy.example.com"],
         "reload": y(["nginx"]), "exec": y([str(hook)])},
        {"name": "mail", "key_type": "rsa-2048", "domains": ["mail.deploy.example.com"],
         "reload": y(["postfix.service"])},
    ]
    outputs = acmed.write_config(certs)
    r = acmed.run_once(env={"DBUS_SYSTEM_BUS_ADDRESS": sysbus.address})
    assert r.rc == 0, r.describe()
    acmed.verify(certs)

    # every unit once, although two certificates asked for nginx.service
    assert sysbus.reloads() == {"nginx.service": 1, "php-fpm.service": 1, "postfix.service": 1}
    assert [m for m, _ in sysbus.calls()].count("Subscribe") == 1
    nginx = re.findall(r"reloaded nginx\.service \(for ([^)]*)\)", r.stderr)
    assert len(nginx) == 1 and sorted(nginx[0].split(", ")) == ["api", "web"], r.stderr

    web = hook_record(outdir / "web.out")
    assert web["argc"] == 2 and web["args"] == ["--quiet", "two words"]
    assert web["fullchain"]                             # the new files were in place
    # the hook runs before any unit is reloaded (it may copy files a service reads)
    assert web["jobs"] == [], web["jobs"]
    assert r.stderr.index("[web] hook: deployed web") < r.stderr.index("reloaded php-fpm.service")
    assert r.stderr.index("[api] hook: deployed api") < r.stderr.index("reloaded nginx.service")
    e = web["env"]
    assert e["ACMED_CERT_NAME"] == "web"
    assert e["ACMED_DOMAINS"] == "web.deploy.example.com www.web.deploy.example.com"
    assert e["RENEWED_DOMAINS"] == e["ACMED_DOMAINS"]
    assert e["ACMED_OUTPUT_DIR"] == str(outputs["web"])
    assert e["RENEWED_LINEAGE"] == str(outputs["web"])
    assert e["DBUS_SYSTEM_BUS_ADDRESS"] == sysbus.address   # acmed's own environment is passed on

    api = hook_record(outdir / "api.out")
    assert api["argc"] == 0 and api["jobs"] == [], api
    assert api["env"]["ACMED_CERT_NAME"] == "api"
    assert api["env"]["RENEWED_DOMAINS"] == "api.deploy.example.com"
    assert api["env"]["RENEWED_LINEAGE"] == str(outputs["api"])
    assert not (outdir / "mail.out").exists()
    assert "[web] hook: deployed web" in r.stderr           # hook output goes to the log

    # nothing due: no reload, no hook
    before = {p.name: p.stat().st_mtime_ns for p in outdir.iterdir()}
    r = acmed.run_once(env={"DBUS_SYSTEM_BUS_ADDRESS": sysbus.address})
    assert r.rc == 0, r.describe()
    assert sysbus.reloads() == {"nginx.service": 1, "php-fpm.service": 1, "postfix.service": 1}
    assert {p.name: p.stat().st_mtime_ns for p in outdir.iterdir()} == before


def test_failed_reload_is_retried_without_reissuing(acmed, proxy, sysbus, workspace):
    hook, outdir = write_hook(workspace, sysbus)
    certs = [{"name": "bad", "key_type": "ecdsa-p256", "domains": ["bad.deploy.example.com"],
              "reload": y(["bad.service"]), "exec": y([str(hook)])}]
    acmed.write_config(certs)
    r = acmed.run_once(env={"DBUS_SYSTEM_BUS_ADDRESS": sysbus.address})
    assert r.rc == 1, r.describe()
    acmed.verify(certs)                                 # the certificate itself is in place
    assert 'reload of bad.service (for bad) failed: job result "failed"' in r.stderr
    assert sysbus.reloads() == {"bad.service": 1}
    assert (outdir / "bad.out").exists()                # the hook still ran
    orders = proxy.log.count(kind="newOrder")

    r = acmed.run_once(env={"DBUS_SYSTEM_BUS_ADDRESS": sysbus.address})
    assert r.rc == 1, r.describe()
    assert sysbus.reloads() == {"bad.service": 2}       # deploy retried ...
    assert proxy.log.count(kind="newOrder") == orders   # ... never a new certificate


def test_unreachable_bus_fails_the_deploy_not_the_daemon(acmed, proxy, workspace):
    certs = [{"name": "nobus", "key_type": "ecdsa-p256", "domains": ["nobus.deploy.example.com"],
              "reload": y(["nginx.service"])}]
    acmed.write_config(certs)
    r = acmed.run_once(env={"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={workspace}/no-such-bus"})
    assert r.rc == 1, r.describe()
    acmed.verify(certs)
    # logged once by the deployer (the scheduler reports the failed deploy in its own words)
    assert r.stderr.count("acmed error: cannot reach systemd on the system bus (") == 1, r.stderr
    assert "units nginx.service not reloaded" in r.stderr
