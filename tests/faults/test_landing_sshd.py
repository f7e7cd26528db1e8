"""One agent cannot touch another: the shipped sshd landing snippet, with real sshd and users.

Two agents A and B are approved with `datacenter agent approve` (real system users, chroots and
key files under a base made with ``mktemp -d -p /srv``: a chroot's parents must be root-owned,
so not /tmp). sshd runs the packaged ``callcollect-landing.conf`` (paths and group rewritten to
the test's) on a loopback port. Everything the test made (users, group, folders) is removed.
"""

from __future__ import annotations

import base64
import grp
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paramiko
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from datacenter.cli import main as datacenter_main
from datacenter.landing.users import remove_account
from datacenter.store.tables.health import agent_heartbeats
from edge_agent.cli import main as agent_main
from edge_agent.config import load
from edge_agent.journal import Journal
from edge_agent.service import Service
from edge_agent.sources import registry
from edge_agent.spool import BatchStatus, Spool
from shared import keys
from shared.enrolment import EnrolmentRequest, parse_bundle
from shared.envelope import batch_file_name
from tests.fixtures.fake_source import call_line
from tests.fixtures.ports import free_port, wait_for_listener
from tests.fixtures.sshd import SSHD, keygen

pytestmark = [
    pytest.mark.sshd,
    pytest.mark.faults,
    pytest.mark.skipif(os.geteuid() != 0 or not Path(SSHD).exists(), reason="needs root and sshd"),
]
SNIPPET = (
    Path(__file__).parents[2] / "packaging/deb/datacenter/sshd_config.d/callcollect-landing.conf"
)
SHIPPED_ROOT = "/srv/callcollect/landing"
SHIPPED_GROUP = "callcollect-agents"
SFTP_ONLY = "This service allows sftp connections only."


@dataclass
class Agent:
    agent_id: str
    account: str
    key: Path


@dataclass
class Landing:
    base: Path
    root: Path  # landing.root
    keys_dir: Path  # the data centre's private keys
    port: int
    host_pub: Path
    agents: dict[str, Agent]
    config: Path  # the data centre's
    group: str
    accounts: list[str]  # removed after the test: add any account a test makes

    def connect(self, agent: Agent, *, username: str | None = None) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.get_host_keys().add(
            f"[127.0.0.1]:{self.port}", "ssh-ed25519",
            paramiko.Ed25519Key(data=_key_blob(self.host_pub)),
        )  # fmt: skip
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect("127.0.0.1", port=self.port, username=username or agent.account,
                       key_filename=str(agent.key), look_for_keys=False, allow_agent=False,
                       timeout=10)  # fmt: skip
        return client


def _key_blob(pub: Path) -> bytes:
    return base64.b64decode(pub.read_text().split()[1])


def _approve(
    config: Path, base: Path, group: str, port: int, host_pub: Path, agent_id: str
) -> Agent:
    identity = keys.new_agent_identity(agent_id)
    key = keygen(base / f"{agent_id}_ed25519")
    request = EnrolmentRequest(
        tenant="acme", agent_id=agent_id, certificate=identity.certificate,
        ssh_public_key=key.with_suffix(".pub").read_text(),
    )  # fmt: skip
    result = CliRunner().invoke(datacenter_main, [
        "agent", "approve", request.to_line(), "--landing-host", "127.0.0.1",
        "--landing-port", str(port), "--host-key", str(host_pub), "--group", group,
        "--service-user", "root", "--config", str(config),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    bundle = parse_bundle(result.stdout)
    return Agent(agent_id, bundle.account, key)


@pytest.fixture
def landing() -> Iterator[Landing]:
    base = Path(subprocess.run(["mktemp", "-d", "-p", "/srv"], capture_output=True, text=True,
                               check=True).stdout.strip())  # fmt: skip
    base.chmod(0o755)
    group = f"cctest-{secrets.token_hex(3)}"
    accounts: list[str] = []
    process: subprocess.Popen[bytes] | None = None
    try:
        data = base / "dc"
        data.mkdir(mode=0o755)
        config = base / "datacenter.toml"
        config.write_text(f'data_dir = "{data}"\n[store]\nurl = "sqlite:///{base / "store.db"}"\n')
        runner = CliRunner()
        for args in (["init"], ["tenant", "add", "acme", "--name", "Acme"]):
            done = runner.invoke(datacenter_main, [*args, "--config", str(config)])
            assert done.exit_code == 0, done.output
        port = free_port()
        host_key = keygen(base / "ssh_host_ed25519_key")
        host_pub = host_key.with_suffix(".pub")
        suffix = secrets.token_hex(2)
        agents = {}
        for name in ("a", "b"):
            agent = _approve(config, base, group, port, host_pub, f"t{suffix}{name}")
            accounts.append(agent.account)
            agents[name] = agent
        root = data / "landing"
        snippet = base / "callcollect-landing.conf"
        snippet.write_text(
            SNIPPET.read_text().replace(SHIPPED_ROOT, str(root)).replace(SHIPPED_GROUP, group)
        )
        sshd_config = base / "sshd_config"
        sshd_config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"PidFile {base / 'sshd.pid'}\nUsePAM no\nPermitRootLogin no\n"
            f"AllowGroups {group}\nInclude {snippet}\n"
            # as Debian's sshd_config, after its Include: sshd needs the subsystem defined
            # before ForceCommand replaces it with internal-sftp
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
        )
        subprocess.run([SSHD, "-t", "-f", str(sshd_config)], check=True)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        with (base / "sshd.log").open("ab") as log:
            process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(sshd_config)], stdout=log, stderr=log
            )
        wait_for_listener(process, port, timeout=10.0)
        yield Landing(base, root, data / "keys", port, host_pub, agents, config, group, accounts)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
        for account in accounts:
            remove_account(account)
        subprocess.run(["groupdel", group], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def refused(action: object, *args: object) -> bool:
    """Whether an SFTP call fails (ENOENT in the chroot, EACCES, or refused by the server)."""
    try:
        action(*args)  # type: ignore[operator]
    except OSError:
        return True
    return False


def test_an_agent_writes_only_its_own_incoming_and_reads_only_its_own_receipts(
    landing: Landing,
) -> None:
    a, b = landing.agents["a"], landing.agents["b"]
    receipt = landing.root / a.account / "receipts" / "x.receipt"
    receipt.write_bytes(b"receipt for A\n")  # as ingest writes it: root, group inherited
    assert receipt.stat().st_gid == grp.getgrnam(a.account).gr_gid
    (landing.root / b.account / "receipts" / "y.receipt").write_bytes(b"receipt for B\n")
    (landing.root / b.account / "incoming" / "b.ccb").write_bytes(b"B's batch\n")
    with landing.connect(a) as client:
        sftp = client.open_sftp()
        assert sftp.normalize(".") == "/incoming"  # internal-sftp -d /incoming
        with sftp.open("/incoming/own.part", "wb") as f:
            f.write(b"A's batch\n")
        sftp.posix_rename("/incoming/own.part", "/incoming/own.ccb")
        with sftp.open("/receipts/x.receipt", "rb") as f:
            assert f.read() == b"receipt for A\n"
        # its own receipts are the data centre's: read, never written, deleted or renamed
        assert refused(sftp.open, "/receipts/forged.receipt", "wb")
        with pytest.raises(PermissionError):  # what the agent's receipt inbox expects
            sftp.remove("/receipts/x.receipt")
        assert refused(sftp.posix_rename, "/receipts/x.receipt", "/incoming/x")
        assert refused(sftp.mkdir, "/quarantine")  # the chroot itself is root's
        assert sorted(sftp.listdir("/")) == ["heartbeats", "incoming", "receipts", "recordings"]
        with sftp.open("/recordings/own.ccr.part", "wb") as f:  # call recording batches
            f.write(b"A's recordings\n")
        sftp.posix_rename("/recordings/own.ccr.part", "/recordings/own.ccr")
        # B's folders, by every path: write, read, delete, rename all refused
        for where in (f"/{b.account}", f"/../{b.account}", str(landing.root / b.account)):
            assert refused(sftp.open, f"{where}/incoming/evil.ccb", "wb")
            assert refused(sftp.open, f"{where}/incoming/b.ccb", "rb")
            assert refused(sftp.open, f"{where}/receipts/y.receipt", "rb")
            assert refused(sftp.remove, f"{where}/incoming/b.ccb")
            assert refused(sftp.remove, f"{where}/receipts/y.receipt")
            assert refused(sftp.posix_rename, f"{where}/incoming/b.ccb", "/incoming/stolen")
            assert refused(sftp.listdir, f"{where}/incoming")
        # the data centre's keys, and the key files sshd reads
        for secret in (landing.keys_dir / "envelope.key", landing.keys_dir / "receipts.key",
                       landing.root / ".keys" / b.account, Path("/etc/shadow")):  # fmt: skip
            assert refused(sftp.open, str(secret), "rb")
        assert refused(sftp.symlink, "/etc/passwd", "/incoming/link")
        # paramiko has no call for OpenSSH's hardlink extension: send the request itself (of
        # its own file, which the kernel alone would allow: only `-P hardlink` refuses it)
        request = sftp._request  # type: ignore[attr-defined]
        hardlink = (paramiko.sftp.CMD_EXTENDED, "hardlink@openssh.com")
        assert refused(request, *hardlink, "/incoming/own.ccb", "/incoming/hard")
        assert refused(sftp.symlink, f"/../{b.account}/incoming", "/incoming/b-link")
    assert (landing.root / a.account / "incoming" / "own.ccb").read_bytes() == b"A's batch\n"
    assert (landing.root / b.account / "incoming" / "b.ccb").exists()
    assert (landing.root / b.account / "receipts" / "y.receipt").exists()
    assert sorted(os.listdir(landing.root / b.account / "incoming")) == ["b.ccb"]
    assert not (landing.root / a.account / "incoming" / "link").exists()
    assert not (landing.root / a.account / "incoming" / "hard").exists()


def test_a_key_logs_in_only_to_its_own_account(landing: Landing) -> None:
    a, b = landing.agents["a"], landing.agents["b"]
    with pytest.raises(paramiko.AuthenticationException):
        landing.connect(a, username=b.account)
    with pytest.raises(paramiko.AuthenticationException):
        landing.connect(a, username="root")


def test_no_shell_no_forwarding(landing: Landing) -> None:
    with landing.connect(landing.agents["a"]) as client:
        _stdin, stdout, _stderr = client.exec_command("id", timeout=10)
        output = stdout.read().decode()
        assert "uid=" not in output and SFTP_ONLY in output
        transport = client.get_transport()
        assert transport is not None
        listener = socket.create_server(("127.0.0.1", 0))
        try:
            with pytest.raises(paramiko.ChannelException):
                transport.open_channel(
                    "direct-tcpip", ("127.0.0.1", listener.getsockname()[1]), ("127.0.0.1", 0)
                )
        finally:
            listener.close()
        with pytest.raises(paramiko.SSHException, match="forwarding request denied"):
            transport.request_port_forward("127.0.0.1", 0)
        channel = transport.open_session(timeout=10)
        with pytest.raises(paramiko.SSHException):
            channel.get_pty()


def test_an_agent_delivers_through_its_own_account_end_to_end(
    landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """enroll -> approve (real user) -> import -> flush -> ingest -> receipt -> signed heartbeat."""
    monkeypatch.setitem(registry.DRIVERS, "fake", "tests.fixtures.fake_source")
    base, agent_id = landing.base, f"{landing.agents['a'].agent_id}c"
    state = base / "agent-state"
    (base / "agent_known_hosts").write_text("")
    common = (
        f'[agent]\nid = "{agent_id}"\ntenant = "acme"\ntimezone = "UTC"\nstate_dir = "{state}"\n'
        f'[uplink]\nhost = "127.0.0.1"\nport = {landing.port}\n'
        f'private_key = "{base / "agent_key"}"\nknown_hosts = "{base / "agent_known_hosts"}"\n'
        "connect_timeout_seconds = 5.0\n{uplink}"
        f'[delivery]\nprotection = "cms"\ndatacentre_certificates = "{base / "agent-dc.pem"}"\n'
        '[[sources]]\nid = "pbx-1"\nkind = "fake"\n'
    )
    config = base / "agent.toml"
    config.write_text(common.replace("{uplink}", 'username = "pending"\n'))
    agent = CliRunner()
    request = agent.invoke(agent_main, ["enroll", "-c", str(config)]).stdout.splitlines()[-1]
    result = CliRunner().invoke(datacenter_main, [
        "agent", "approve", request, "--landing-host", "127.0.0.1", "--landing-port",
        str(landing.port), "--host-key", str(landing.host_pub), "--group", landing.group,
        "--service-user", "root", "--bundle", str(base / "c.bundle"),
        "--config", str(landing.config),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    bundle = parse_bundle((base / "c.bundle").read_text())
    landing.accounts.append(bundle.account)
    imported = agent.invoke(agent_main, ["enroll", "-c", str(config), "--import",
                                         str(base / "c.bundle")])  # fmt: skip
    assert imported.exit_code == 0, imported.output
    printed = [line.strip() for line in imported.stdout.splitlines()]
    section = printed[printed.index("[uplink]") + 1 :]  # the [uplink] lines, not [capture]'s
    section = section[: next((i for i, line in enumerate(section) if line.startswith("[")),
                             len(section))]  # fmt: skip
    uplink_lines = [line for line in section
                    if line.startswith(("username", "remote_dir", "receipts_dir"))]  # fmt: skip
    assert len(uplink_lines) == 3, imported.stdout
    config.write_text(common.replace("{uplink}", "\n".join(uplink_lines) + "\n"))
    with Journal.open(state / "journal" / "pbx-1", source_id="pbx-1") as journal:
        journal.append_many([call_line(n) for n in range(1, 6)], received_at=datetime.now(UTC))
    flushed = agent.invoke(agent_main, ["flush", "-c", str(config)])
    assert flushed.exit_code == 0, flushed.output
    chroot = landing.root / bundle.account
    assert [p.name for p in (chroot / "incoming").iterdir()] == [batch_file_name(agent_id, 1)]
    ingest = ["ingest", "--config", str(landing.config)]
    assert "1 stored" in CliRunner().invoke(datacenter_main, ingest).output
    receipt = chroot / "receipts" / f"{batch_file_name(agent_id, 1)}.receipt"
    assert receipt.exists()
    outcome = Service(load(config)).flush()  # collects the receipt, sends a signed heartbeat
    assert [r.status for r in outcome.receipts] == ["acknowledged"]
    assert receipt.exists()  # the agent may not delete it: the data centre prunes receipts
    with Spool.open(state, quota_bytes=2**30) as spool:
        assert spool.batch_counts()[BatchStatus.ACKNOWLEDGED] == 1
    (heartbeat_file,) = (chroot / "heartbeats").glob(f"{agent_id}-*.json")
    assert heartbeat_file.read_bytes()[:1] == b"\x30"  # CMS SignedData, not plain JSON
    CliRunner().invoke(datacenter_main, ingest)
    engine = sa.create_engine(f"sqlite:///{base / 'store.db'}")
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(agent_heartbeats.c.agent_id).where(agent_heartbeats.c.agent_id == agent_id)
        ).all()
    engine.dispose()
    assert len(stored) == 2  # one per session: `edge-agent flush`, then Service.flush()
