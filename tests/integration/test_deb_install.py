"""The .deb packages installed for real into a throwaway Debian 12 root with dpkg.

Each part gets its own root (the packages conflict: both keep their state in
/var/lib/callcollect under different accounts). In it: install the old build, check files,
owners, modes, account and units (``systemd-analyze verify`` must print nothing), run the part's
command as its service account under the kernel's W^X lock (``PR_SET_MDWE``, what the units'
``MemoryDenyWriteExecute=yes`` enforces), upgrade to the new build with a changed configuration
and state (config kept, agent spool kept, data-centre store migrated), then purge. systemd is not
PID 1 in a chroot, so that services restart on upgrade is not tested here.

The root comes from Debian's mirror (mmdebstrap, cached in /tmp); the packages from
packaging/deb/build.sh. About 2 minutes with a cached root, 4 without.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.debian_root import (
    BASE_PACKAGES,
    NEW_VERSION,
    OLD_VERSION,
    DebBuilds,
    DebianRoot,
    root_tarball,
    unpack_root,
)

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

AGENT_UNITS = ["callcollect-agent.service"]
DC_UNITS = ["callcollect-web.service", "callcollect-ingest@1.service", "callcollect-alarms.service"]
# run a command with W+X mappings refused, as systemd's MemoryDenyWriteExecute=yes does
NO_WX = ("/usr/bin/python3", "-c",
         "import ctypes, os, sys\n"
         "if ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0: sys.exit('PR_SET_MDWE refused')\n"
         "os.execv(sys.argv[1], sys.argv[1:])")  # fmt: skip


@pytest.fixture
def debian_root(tmp_path: Path) -> DebianRoot:
    return unpack_root(root_tarball(BASE_PACKAGES), tmp_path / "root")


def install(root: DebianRoot, deb: Path) -> None:
    root.copy_in(deb, "/tmp/package.deb")
    root.run("dpkg", "-i", "/tmp/package.deb")


def stat(root: DebianRoot, path: str) -> str:
    """``owner:group mode`` of ``path`` inside the root."""
    return root.run("stat", "-c", "%U:%G %a", path).stdout.strip()


def account(root: DebianRoot, name: str) -> list[str]:
    return root.run("getent", "passwd", name).stdout.strip().split(":")


def conffiles(root: DebianRoot, package: str) -> list[str]:
    listed = root.run("dpkg-query", "-W", "-f=${Conffiles}", package).stdout
    return sorted(line.split()[0] for line in listed.splitlines() if line.strip())


def verify_units(root: DebianRoot, units: list[str]) -> None:
    """`systemd-analyze verify` returns 0 on unknown keys and bad values: any output fails."""
    result = root.run("systemd-analyze", "verify", *units, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), result.stderr


def gone(root: DebianRoot, *paths: str) -> list[str]:
    return [path for path in paths if root.file(path).exists() or root.file(path).is_symlink()]


def test_the_agent_package_installs_upgrades_and_purges(
    deb_builds: DebBuilds, debian_root: DebianRoot, tmp_path: Path
) -> None:
    root = debian_root
    install(root, deb_builds.deb("agent", OLD_VERSION))
    uid, shell = account(root, "callcollect-agent")[2], account(root, "callcollect-agent")[6]
    assert int(uid) < 1000 and shell == "/usr/sbin/nologin"
    assert stat(root, "/etc/callcollect") == "root:callcollect-agent 750"
    assert stat(root, "/etc/callcollect/agent.toml") == "root:callcollect-agent 640"
    assert stat(root, "/var/lib/callcollect") == "callcollect-agent:callcollect-agent 700"
    assert conffiles(root, "callcollect-agent") == ["/etc/callcollect/agent.example.toml"]
    assert root.run("readlink", "/usr/bin/edge-agent").stdout.strip() == (
        "/opt/callcollect/agent/bin/edge-agent"
    )
    assert stat(root, "/opt/callcollect/agent/bin/python3.11") == "root:root 777"  # the link
    assert root.run("readlink", "-f", "/opt/callcollect/agent/bin/python").stdout.strip() == (
        "/usr/bin/python3.11"
    )
    verify_units(root, AGENT_UNITS)
    root.file("/etc/systemd/system/callcollect-agent.service.d").mkdir(parents=True)
    root.run("cp", "/usr/share/callcollect-agent/capture.conf",
             "/etc/systemd/system/callcollect-agent.service.d/")  # fmt: skip
    verify_units(root, AGENT_UNITS)

    # a site's own configuration, keys and a spool with a record in it
    key = tmp_path / "uplink_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    root.copy_in(key, "/etc/callcollect/uplink_ed25519")
    root.run("chgrp", "callcollect-agent", "/etc/callcollect/uplink_ed25519")
    root.run("chmod", "0640", "/etc/callcollect/uplink_ed25519")
    host_key = root.file("/etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
    root.file("/etc/callcollect/known_hosts").write_text(
        f"[landing.test]:2222 {host_key[0]} {host_key[1]}\n"
    )
    config = (
        '[agent]\nid = "pkg-test-01"\ntenant = "acme"\ntimezone = "Europe/London"\n'
        '[uplink]\nhost = "landing.test"\nport = 2222\nusername = "acme-pkg-test-01"\n'
        'private_key = "/etc/callcollect/uplink_ed25519"\nknown_hosts = "/etc/callcollect/known_hosts"\n'
        'interval_seconds = 300\n[delivery]\nprotection = "none"\n'
        '[[sources]]\nid = "pbx-main"\nkind = "mivb-smdr"\nhost = "192.0.2.10"\nport = 1752\n'
    )
    root.file("/etc/callcollect/agent.toml").write_text(config)
    check = root.run(*NO_WX, "/usr/sbin/runuser", "-u", "callcollect-agent", "--",
                     "/usr/bin/edge-agent", "check", "-c", "/etc/callcollect/agent.toml")  # fmt: skip
    assert check.stdout.rstrip().endswith("configuration OK"), check.stdout
    spool_records = (
        "import sqlite3, sys\n"
        "from pathlib import Path\n"
        "from edge_agent.spool import Spool\n"
        "Spool.open(Path('/var/lib/callcollect'), quota_bytes=1 << 20).close()\n"
        "db = sqlite3.connect('/var/lib/callcollect/spool.db')\n"
        "if sys.argv[1:] == ['add']:\n"
        "    with db:\n"
        '        db.execute("INSERT INTO icdrs (record_id, source_id, seq, body, created) VALUES "\n'
        "                   \"('r1', 'pbx-main', 1, '{}', '2026-12-06T00:00:00Z')\")\n"
        "print(db.execute('SELECT count(*) FROM icdrs').fetchone()[0])\n"
    )
    python = "/opt/callcollect/agent/bin/python"
    added = root.run("runuser", "-u", "callcollect-agent", "--", python, "-c", spool_records, "add")
    assert added.stdout.strip() == "1"

    install(root, deb_builds.deb("agent", NEW_VERSION))
    version = root.run("dpkg-query", "-W", "-f=${Version}", "callcollect-agent").stdout
    assert version == NEW_VERSION
    assert root.file("/etc/callcollect/agent.toml").read_text() == config
    kept = root.run("runuser", "-u", "callcollect-agent", "--", python, "-c", spool_records)
    assert kept.stdout.strip() == "1"
    assert stat(root, "/var/lib/callcollect/spool.db").startswith("callcollect-agent:")

    root.run("dpkg", "--purge", "callcollect-agent")
    assert root.run("getent", "passwd", "callcollect-agent", check=False).returncode == 2
    assert root.run("getent", "group", "callcollect-agent", check=False).returncode == 2
    assert gone(root, "/etc/callcollect", "/var/lib/callcollect", "/opt/callcollect/agent",
                "/usr/bin/edge-agent", "/lib/systemd/system/callcollect-agent.service") == []  # fmt: skip


def test_the_data_centre_package_installs_migrates_on_upgrade_and_purges(
    deb_builds: DebBuilds, debian_root: DebianRoot
) -> None:
    root = debian_root
    install(root, deb_builds.deb("datacenter", OLD_VERSION))
    assert account(root, "callcollect")[6] == "/usr/sbin/nologin"
    assert root.run("getent", "group", "callcollect-agents").returncode == 0
    assert stat(root, "/etc/callcollect") == "root:callcollect 750"
    assert stat(root, "/etc/callcollect/datacenter.toml") == "root:callcollect 640"
    assert stat(root, "/var/lib/callcollect") == "callcollect:callcollect 750"
    for parent in ("/srv/callcollect", "/srv/callcollect/landing"):  # sshd's chroot rule
        assert stat(root, parent) == "root:root 755"
    assert conffiles(root, "callcollect-datacenter") == [
        "/etc/callcollect/datacenter.example.toml",
        "/etc/ssh/sshd_config.d/callcollect-landing.conf",
    ]
    root.run("mkdir", "-p", "-m", "0755", "/run/sshd")
    root.run("useradd", "--system", "-g", "callcollect-agents", "acme-01")  # a landing account
    sshd = root.run("sshd", "-T", "-C", "user=acme-01,host=landing.test,addr=192.0.2.1")
    assert "chrootdirectory /srv/callcollect/landing/%u" in sshd.stdout
    assert "forcecommand internal-sftp -d /incoming -P symlink,hardlink" in sshd.stdout
    verify_units(root, DC_UNITS)

    # a changed configuration, and a store one migration behind the build
    config = root.file("/etc/callcollect/datacenter.toml")
    changed = (
        config.read_text()
        .replace("workers = 2", "workers = 3")
        .replace('# root = "/srv/callcollect/landing"', 'root = "/srv/callcollect/landing"')
    )
    assert changed.count("workers = 3") == 1 and 'root = "/srv/callcollect/landing"' in changed
    config.write_text(changed)
    revision = (
        "import sys\n"
        "from pathlib import Path\n"
        "from datacenter.settings import load_settings\n"
        "from datacenter.store.engine import current_revision, open_store, upgrade\n"
        "settings = load_settings(Path('/etc/callcollect/datacenter.toml'))\n"
        "engine = open_store(settings.store.url)\n"
        "if sys.argv[1:]:\n"
        "    upgrade(engine, revision=sys.argv[1])\n"
        "print(current_revision(engine))\n"
    )
    python = "/opt/callcollect/datacenter/bin/python"
    behind = root.run("runuser", "-u", "callcollect", "--", python, "-c", revision, "0006")
    assert behind.stdout.strip() == "0006"

    install(root, deb_builds.deb("datacenter", NEW_VERSION))
    assert config.read_text() == changed
    migrated = root.run("runuser", "-u", "callcollect", "--", python, "-c", revision)
    head = root.run(
        python, "-c", "from datacenter.store.engine import head_revision as h; print(h())"
    )
    assert migrated.stdout.strip() == head.stdout.strip() != "0006"
    # init again, as the service account under W^X: nothing left to do, and it says so
    again = root.run(*NO_WX, "/usr/sbin/runuser", "-u", "callcollect", "--", "/usr/bin/datacenter",
                     "init", "--config", "/etc/callcollect/datacenter.toml")  # fmt: skip
    assert again.stdout.startswith(f"store is up to date (revision {head.stdout.strip()})")
    assert stat(root, "/var/lib/callcollect/keys").startswith("callcollect:")

    root.run("userdel", "acme-01")  # approve's account (the other work in issue 16 removes them)
    root.run("dpkg", "--purge", "callcollect-datacenter")
    for name in ("callcollect", "callcollect-agents"):
        assert root.run("getent", "group", name, check=False).returncode == 2
    assert gone(root, "/etc/callcollect", "/var/lib/callcollect", "/srv/callcollect",
                "/opt/callcollect/datacenter", "/usr/bin/datacenter",
                "/etc/ssh/sshd_config.d/callcollect-landing.conf") == []  # fmt: skip


@pytest.mark.parametrize("part", ["agent", "datacenter"])
def test_lintian_passes_with_only_the_explained_overrides(deb_builds: DebBuilds, part: str) -> None:
    deb = deb_builds.deb(part, NEW_VERSION)
    result = subprocess.run(["lintian", "--tag-display-limit", "0", str(deb)],
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    tags = [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:", "I:", "N:")]
    assert (result.returncode, tags) == (0, []), result.stdout
