"""The uplink against a real OpenSSH sshd: pinned host key, key auth, .part then rename."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paramiko
import pytest

from edge_agent.config import UplinkSettings
from edge_agent.delivery.batches import Batcher
from edge_agent.delivery.uplink import Uplink, UploadStatus, connect
from edge_agent.spool import BatchStatus, Spool
from shared.backoff import Backoff, Retries
from shared.envelope import open_batch
from shared.errors import HostKeyMismatch, TransportError
from tests.factories import gen_icdr
from tests.fixtures.sshd import SshdServer, keygen

pytestmark = pytest.mark.sshd
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def uplink_settings(sshd: SshdServer, **changes: object) -> UplinkSettings:
    settings = UplinkSettings(
        host="127.0.0.1", port=sshd.port, username=sshd.username, private_key=sshd.client_key,
        known_hosts=sshd.known_hosts, connect_timeout_seconds=5, transfer_timeout_seconds=10,
        backoff_min_seconds=0.05, backoff_max_seconds=0.2,
    )  # fmt: skip
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


@dataclasses.dataclass
class Agent:
    spool: Spool
    batcher: Batcher
    uplink: Uplink
    state: Path

    def seal(self, first: int, last: int) -> str:
        self.spool.store("pbx-1", [(n, gen_icdr(n)) for n in range(first, last + 1)], [],
                         cursor=last, now=T0)  # fmt: skip
        (batch,) = self.batcher.seal_ready(T0, force=True)
        return batch.file_name


@pytest.fixture
def agent(tmp_path: Path, sshd: SshdServer) -> Iterator[Agent]:
    state = tmp_path / "state"
    with Spool.open(state, quota_bytes=64 * 1024 * 1024) as spool:
        batcher = Batcher(spool, state_dir=state, agent_id="agent-1", tenant="demo")
        uplink = Uplink(uplink_settings(sshd), spool=spool, batcher=batcher, clock=lambda: T0)
        yield Agent(spool, batcher, uplink, state)


def landed(sshd: SshdServer) -> list[str]:
    return sorted(p.name for p in (sshd.landing / "incoming").iterdir())


def test_upload_lands_under_the_final_name(agent: Agent, sshd: SshdServer) -> None:
    first, second = agent.seal(1, 3), agent.seal(4, 5)
    outcomes = agent.uplink.send_sealed()
    assert [(o.file_name, o.status) for o in outcomes] == [
        (first, UploadStatus.UPLOADED), (second, UploadStatus.UPLOADED),
    ]  # fmt: skip
    assert landed(sshd) == [first, second]
    remote = (sshd.landing / "incoming" / first).read_bytes()
    assert remote == (agent.state / "sent" / first).read_bytes()
    assert [r.record_id for r in open_batch(remote).records] == [gen_icdr(n).record_id
                                                                 for n in (1, 2, 3)]  # fmt: skip
    assert list((agent.state / "outbox").iterdir()) == []
    assert [b.status for b in agent.spool.batches()] == [BatchStatus.UPLOADED] * 2
    assert agent.uplink.send_sealed() == []  # nothing left: no session needed


def test_each_upload_is_reported_as_it_completes(agent: Agent) -> None:
    # the service pings systemd's watchdog from this hook: a long backlog is not a hung agent
    names = [agent.seal(1, 3), agent.seal(4, 5), agent.seal(6, 6)]
    reported: list[str] = []
    agent.uplink.on_upload = lambda outcome: reported.append(outcome.file_name)
    agent.uplink.send_sealed()
    assert reported == names


def test_an_interrupted_upload_leaves_only_a_part_file_then_overwrites_it(
    agent: Agent, sshd: SshdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = agent.seal(1, 3)

    def cut(self: paramiko.SFTPClient, old: str, new: str) -> None:
        raise EOFError("connection lost")

    monkeypatch.setattr(paramiko.SFTPClient, "posix_rename", cut)
    with pytest.raises(TransportError, match=f"incoming/{name} failed"):
        agent.uplink.send_sealed()
    assert landed(sshd) == [f"{name}.part"]  # never visible under the final name
    monkeypatch.undo()
    (sshd.landing / "incoming" / f"{name}.part").write_bytes(b"stale and longer " * 10_000)
    (outcome,) = agent.uplink.send_sealed()
    assert outcome.status is UploadStatus.UPLOADED
    assert landed(sshd) == [name]
    assert (sshd.landing / "incoming" / name).read_bytes() == (
        agent.state / "sent" / name
    ).read_bytes()


def test_a_duplicate_upload_is_harmless(agent: Agent, sshd: SshdServer) -> None:
    name = agent.seal(1, 3)
    agent.uplink.send_sealed()
    final = sshd.landing / "incoming" / name
    before = final.stat()
    # crash after the rename, before the spool recorded it: the batch is still "sealed"
    agent.spool.db.execute("UPDATE batches SET status = 'sealed', uploaded = NULL")
    (outcome,) = agent.uplink.send_sealed()
    assert outcome.status is UploadStatus.ALREADY_THERE
    assert final.stat().st_ino == before.st_ino and final.stat().st_mtime == before.st_mtime
    assert agent.spool.batches()[0].status is BatchStatus.UPLOADED


def test_a_different_file_under_our_name_is_never_overwritten(
    agent: Agent, sshd: SshdServer
) -> None:
    name = agent.seal(1, 3)
    (sshd.landing / "incoming" / name).write_bytes(b"someone else's batch")
    with pytest.raises(TransportError, match="refusing to overwrite"):
        agent.uplink.send_sealed()
    assert (sshd.landing / "incoming" / name).read_bytes() == b"someone else's batch"
    assert agent.spool.batches()[0].status is BatchStatus.SEALED


def test_a_refused_key_says_which_key_and_user(sshd: SshdServer, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger_ed25519")
    settings = uplink_settings(sshd, private_key=stranger)
    with pytest.raises(TransportError) as caught:
        connect(settings)
    message = str(caught.value)
    fingerprint = paramiko.PKey.from_path(stranger).fingerprint
    assert f"the data centre refused key {fingerprint}" in message
    assert f"for user '{sshd.username}'" in message and "check uplink.username" in message


def test_a_rotated_host_key_is_refused(sshd: SshdServer) -> None:
    settings = uplink_settings(sshd)  # pins the key sshd has now
    sshd.stop()
    sshd.rotate_host_key()
    sshd.start()
    with pytest.raises(HostKeyMismatch) as caught:
        connect(settings)
    assert str(settings.known_hosts) in str(caught.value)
    assert "replace the line for" in str(caught.value)


def test_an_unpinned_host_is_refused_not_trusted(sshd: SshdServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    with pytest.raises(HostKeyMismatch, match="pins no host key for"):
        connect(uplink_settings(sshd, known_hosts=empty))
    assert empty.read_text() == ""  # nothing learnt on first use


def test_a_missing_remote_dir_is_named(agent: Agent, sshd: SshdServer) -> None:
    agent.seal(1, 1)
    agent.uplink.settings = uplink_settings(sshd, remote_dir="nowhere")
    with pytest.raises(TransportError, match=r"check that uplink\.remote_dir exists"):
        agent.uplink.send_sealed()


def test_a_stopped_server_backs_off_then_delivers(agent: Agent, sshd: SshdServer) -> None:
    name = agent.seal(1, 3)
    sshd.stop()
    backoff = Retries(Backoff(min_seconds=0.05, max_seconds=0.2))
    delays: list[float] = []
    restart = threading.Timer(0.4, sshd.start)
    restart.start()
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                agent.uplink.send_sealed()
                break
            except TransportError as exc:
                assert "connection refused" in str(exc)
                assert time.monotonic() < deadline, "sshd never came back"
                delays.append(backoff.next_delay())
                time.sleep(delays[-1])
    finally:
        restart.join()
    backoff.reset()
    assert len(delays) >= 2
    assert all(0.025 <= d <= 0.2 for d in delays)
    assert landed(sshd) == [name]


@pytest.mark.parametrize(
    ("failures", "low", "high"), [(1, 2.5, 5.0), (2, 5.0, 10.0), (3, 10.0, 20.0), (10, 30.0, 60.0)]
)
def test_backoff_doubles_with_jitter_up_to_the_maximum(
    failures: int, low: float, high: float
) -> None:
    backoff = Retries(Backoff(min_seconds=5.0, max_seconds=60.0))
    for _ in range(failures):
        delay = backoff.next_delay()
    assert low <= delay <= high
    backoff.reset()
    assert backoff.next_delay() <= 5.0
