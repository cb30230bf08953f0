# meson install: where each file goes for the distribution prefix (/usr) and for a local one (/usr/local).
"""Issue 11, "Packaging": `meson install` creates /etc/acmed (conf.d too) and installs the example beside the
configuration, never over it; the units, the sysusers.d entry and the polkit rule follow the prefix, and the
service runs the installed binary on the installed configuration.

Checked with `meson introspect --installed` on freshly configured build directories (nothing is compiled).
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def configure(tmp, prefix):
    b = tmp / ("b" + prefix.replace("/", "-"))
    r = subprocess.run(["meson", "setup", str(b), f"--prefix={prefix}"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["meson", "introspect", "--installed", str(b)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return b, set(json.loads(r.stdout).values()), json.loads(r.stdout)


@pytest.mark.skipif(not shutil.which("meson"), reason="meson not installed")
@pytest.mark.parametrize("prefix,etc,units,sysusers,polkit", [
    ("/usr", "/etc/acmed", "/lib/systemd/system", "/usr/lib/sysusers.d", "/usr/share/polkit-1/rules.d"),
    ("/usr/local", "/usr/local/etc/acmed", "/usr/local/lib/systemd/system", "/usr/local/lib/sysusers.d",
     "/usr/local/share/polkit-1/rules.d"),
])
def test_install_layout_follows_the_prefix(tmp_path, prefix, etc, units, sysusers, polkit):
    b, dests, by_src = configure(tmp_path, prefix)
    want = {f"{prefix}/sbin/acmed", f"{etc}/acmed.yaml.example", f"{units}/acmed.service", f"{units}/acmed.socket",
            f"{sysusers}/acmed.conf", f"{polkit}/50-acmed.rules", f"{prefix}/share/man/man8/acmed.8",
            f"{prefix}/share/man/man5/acmed.yaml.5"}
    assert want <= dests, sorted(want - dests)
    # never an acmed.yaml of its own: a reinstall must not replace the admin's configuration
    assert f"{etc}/acmed.yaml" not in dests
    example = next(s for s, d in by_src.items() if d == f"{etc}/acmed.yaml.example")
    assert Path(example).read_bytes() == (ROOT / "config" / "example.yaml").read_bytes()
    # the service runs the installed binary on the configuration beside the example
    service = (b / "systemd" / "acmed.service").read_text()
    assert re.search(rf"^ExecStart={re.escape(prefix)}/sbin/acmed -c {re.escape(etc)}/acmed.yaml run$", service,
                     re.M), service
    assert re.search(rf"^ExecReload={re.escape(prefix)}/sbin/acmed -c {re.escape(etc)}/acmed.yaml reload$",
                     service, re.M), service
    # /etc/acmed with conf.d (for `include:`) and the example, installed (the `config` install tag: no build)
    dest = tmp_path / ("dest" + prefix.replace("/", "-"))
    r = subprocess.run(["meson", "install", "-C", str(b), "--no-rebuild", "--tags", "config",
                        "--destdir", str(dest)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == sorted(
        [etc.lstrip("/") + s for s in ("", "/conf.d", "/acmed.yaml.example")] +
        ["/".join(etc.lstrip("/").split("/")[:i]) for i in range(1, etc.count("/"))]), list(dest.rglob("*"))
    assert (dest / etc.lstrip("/") / "conf.d").is_dir()
