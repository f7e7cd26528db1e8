"""Both playbooks run for real against throwaway Debian 12 roots, twice: the second run changes
nothing.

ansible-core has no chroot connection (that is community.general's), so ansible-playbook runs
inside the root with the ``local`` connection: this worktree (with its .venv holding
ansible-core) is bind-mounted read-only at the same path, and the venv's interpreter is the
root's own Debian Python 3.11. Each run has an empty network namespace of its own: nothing can
leave it, and nft checks its rules there, never on this machine. systemd is not PID 1 in a
chroot, so the roles install and enable but start nothing (``callcollect_*_start_services``
decides by /run/systemd/system). The root holds every package the roles install, so apt needs
no mirror during the run.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.fixtures.debian_root import (
    BASE_PACKAGES,
    NEW_VERSION,
    ROOT,
    DebBuilds,
    DebianRoot,
    root_tarball,
    unpack_root,
)

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(900)]

ROLE_PACKAGES = ("python3-apt", "nftables", "unattended-upgrades", "nginx", "postgresql", "openssl")
PLAYBOOK_ENV = {"ANSIBLE_CONFIG": str(ROOT / "ansible" / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_LOCAL_TEMP": "/root/.ansible/tmp", "ANSIBLE_HOME": "/root/.ansible"}  # fmt: skip
RECAP = re.compile(
    r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


@pytest.fixture
def role_root(tmp_path: Path) -> DebianRoot:
    return unpack_root(root_tarball([*BASE_PACKAGES, *ROLE_PACKAGES]), tmp_path / "root")


def play(
    root: DebianRoot, playbook: str, group: str, variables: Mapping[str, object]
) -> tuple[int, int]:
    """Run ``playbook`` on the root itself; (changed, failed) from its recap."""
    root.file("/root/inventory.ini").write_text(
        f"[{group}]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"
    )
    root.file("/root/vars.json").write_text(json.dumps(variables))
    result = root.run(
        str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", "/root/inventory.ini",
        "-e", "@/root/vars.json", str(ROOT / "ansible" / playbook),
        binds=[ROOT], isolated=True, env=PLAYBOOK_ENV, check=False, timeout=600,
    )  # fmt: skip
    recap = RECAP.search(result.stdout)
    assert recap is not None, f"no recap:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    _ok, changed, unreachable, failed = (int(n) for n in recap.groups())
    assert (unreachable, failed, result.returncode) == (0, 0, 0), result.stdout[-6000:]
    return changed, failed


def deb_inside(root: DebianRoot, builds: DebBuilds, part: str) -> str:
    inside = f"/root/callcollect-{part}.deb"
    root.copy_in(builds.deb(part, NEW_VERSION), inside)
    return inside


def enabled(root: DebianRoot, unit: str) -> bool:
    """Linked into a target's wants (nftables: sysinit.target, ours: multi-user.target).

    The links are absolute paths inside the root, so they dangle seen from here: test the link.
    """
    targets = root.file("/etc/systemd/system").glob("*.wants")
    return any((wants / unit).is_symlink() for wants in targets)


def test_the_appliance_playbook_installs_enrols_hardens_and_is_idempotent(
    deb_builds: DebBuilds, role_root: DebianRoot
) -> None:
    root = role_root
    assert root.file("/usr/sbin/nginx").exists()  # a web server the appliance must not keep
    variables = {
        "callcollect_appliance_agent_deb": deb_inside(root, deb_builds, "agent"),
        "callcollect_appliance_agent_id": "acme-leeds-01",
        "callcollect_appliance_agent_tenant": "acme",
        "callcollect_appliance_uplink_host": "landing.example.net",
        "callcollect_appliance_uplink_username": "acme-leeds-01",
        "callcollect_appliance_sources": [
            {"id": "pbx-main", "kind": "mivb-smdr", "host": "192.0.2.10", "port": 1752}
        ],
        "callcollect_appliance_firewall_datacentre": "198.18.0.2",
        "callcollect_appliance_firewall_pbx": [{"address": "192.0.2.10", "port": 1752}],
        "callcollect_appliance_firewall_dns": ["198.18.0.53"],
        "callcollect_appliance_firewall_support": ["198.18.0.100"],
    }
    changed, _ = play(root, "appliance.yml", "appliances", variables)
    assert changed > 0
    assert play(root, "appliance.yml", "appliances", variables) == (0, 0)

    config = root.file("/etc/callcollect/agent.toml").read_text()
    assert 'tenant = "acme"' in config and 'kind = "mivb-smdr"' in config
    assert root.file("/etc/callcollect/uplink_ed25519").exists()  # enrolment made the key
    assert not root.file("/usr/sbin/nginx").exists()
    rules = root.file("/etc/nftables.conf").read_text()
    assert "policy drop" in rules and "ip daddr 198.18.0.2 tcp dport 22 accept" in rules
    assert "ip saddr 198.18.0.100 tcp dport 22 accept" in rules
    assert 'Unattended-Upgrade "1"' in root.file("/etc/apt/apt.conf.d/20auto-upgrades").read_text()
    assert enabled(root, "callcollect-agent.service") and enabled(root, "nftables.service")


def test_the_data_centre_playbook_sets_up_landing_web_and_workers_idempotently(
    deb_builds: DebBuilds, role_root: DebianRoot
) -> None:
    root = role_root
    variables = {
        "callcollect_datacenter_deb": deb_inside(root, deb_builds, "datacenter"),
        "callcollect_datacenter_store": "sqlite",  # PostgreSQL cannot run without systemd here
        "callcollect_datacenter_server_name": "callcollect.example.net",
        "callcollect_datacenter_ingest_workers": 3,
    }
    changed, _ = play(root, "datacenter.yml", "datacentres", variables)
    assert changed > 0
    assert play(root, "datacenter.yml", "datacentres", variables) == (0, 0)

    assert (
        'root = "/srv/callcollect/landing"'
        in root.file("/etc/callcollect/datacenter.toml").read_text()
    )
    assert root.file("/var/lib/callcollect/callcollect.db").exists()  # datacenter init ran
    link = root.file("/etc/nginx/sites-enabled/callcollect.conf")
    assert link.readlink() == Path("/etc/nginx/sites-available/callcollect.conf")
    site = root.file("/etc/nginx/sites-available/callcollect.conf").read_text()
    assert "proxy_pass http://127.0.0.1:8080;" in site and "listen 443 ssl" in site
    assert not root.file("/etc/nginx/sites-enabled/default").exists()
    units = ["callcollect-web.service", "callcollect-alarms.service",
             *(f"callcollect-ingest@{n}.service" for n in (1, 2, 3))]  # fmt: skip
    assert [unit for unit in units if not enabled(root, unit)] == []


def test_ansible_lint_is_clean() -> None:
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-lint"), "--nocolor"],
        cwd=ROOT / "ansible", capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
