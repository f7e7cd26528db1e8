"""A delivery session against the real sshd: CMS batches out, signed receipts in, a rate cap."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.config import UplinkSettings
from edge_agent.delivery.batches import Batcher
from edge_agent.delivery.receipts import ReceiptInbox, ReceiptStatus
from edge_agent.delivery.uplink import Throttle, Uplink, UploadStatus, connect
from edge_agent.spool import BatchStatus, Spool
from shared import cms, keys
from shared.receipts import make_receipt, write_receipt
from tests.factories import gen_icdr
from tests.fixtures.landing import ReceiptingLanding
from tests.fixtures.sshd import SshdServer

pytestmark = pytest.mark.sshd
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SIGNER = keys.new_agent_identity("agent-1")
DC = keys.new_datacentre_keys("dc.example")
FORGER = keys.new_datacentre_keys("forger.example")


def uplink_settings(sshd: SshdServer, **changes: object) -> UplinkSettings:
    settings = UplinkSettings(
        host="127.0.0.1", port=sshd.port, username=sshd.username, private_key=sshd.client_key,
        known_hosts=sshd.known_hosts, connect_timeout_seconds=5, transfer_timeout_seconds=10,
    )  # fmt: skip
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


@dataclasses.dataclass
class Agent:
    spool: Spool
    batcher: Batcher
    uplink: Uplink
    next_call: int = 1

    def seal(self, count: int = 3) -> str:
        calls = range(self.next_call, self.next_call + count)
        self.next_call += count
        self.spool.store("pbx-1", [(n, gen_icdr(n)) for n in calls], [], cursor=None, now=T0)
        (batch,) = self.batcher.seal_ready(T0, force=True)
        return batch.file_name

    def statuses(self) -> list[BatchStatus]:
        return [b.status for b in self.spool.batches()]


@pytest.fixture
def dc(sshd: SshdServer) -> ReceiptingLanding:
    return ReceiptingLanding(sshd.landing, DC, {keys.fingerprint(SIGNER.certificate)})


@pytest.fixture
def agent(tmp_path: Path, sshd: SshdServer, dc: ReceiptingLanding) -> Iterator[Agent]:
    state = tmp_path / "state"
    with Spool.open(state, quota_bytes=64 * 2**20) as spool:
        batcher = Batcher(spool, state_dir=state, agent_id="agent-1", tenant="demo",
                          protect=lambda c: cms.protect(c, signer=SIGNER,
                                                        recipient=DC.certificates.envelope))  # fmt: skip
        inbox = ReceiptInbox(spool, agent_id="agent-1", certificate=DC.certificates.receipts,
                             clock=lambda: T0)  # fmt: skip
        uplink = Uplink(uplink_settings(sshd), spool=spool, batcher=batcher, clock=lambda: T0,
                        inbox=inbox)  # fmt: skip
        yield Agent(spool, batcher, uplink)


def remote_receipts(sshd: SshdServer) -> list[str]:
    return sorted(p.name for p in (sshd.landing / "receipts").iterdir())


def test_batches_go_sealed_and_come_back_acknowledged(
    agent: Agent, sshd: SshdServer, dc: ReceiptingLanding
) -> None:
    first, second = agent.seal(), agent.seal()
    report = agent.uplink.deliver()
    assert [(o.file_name, o.status) for o in report.uploaded] == [
        (first, UploadStatus.UPLOADED), (second, UploadStatus.UPLOADED)]  # fmt: skip
    landed = (sshd.landing / "incoming" / first).read_bytes()
    assert cms.is_protected(landed) and b"01632960123" not in landed  # unreadable at rest
    assert dc.ingest() == [first, second]
    assert len(dc.stored) == 6
    report = agent.uplink.deliver()
    assert [(r.receipt, r.status) for r in report.receipts] == [
        (f"{first}.receipt", ReceiptStatus.ACKNOWLEDGED),
        (f"{second}.receipt", ReceiptStatus.ACKNOWLEDGED)]  # fmt: skip
    assert agent.statuses() == [BatchStatus.ACKNOWLEDGED] * 2
    assert remote_receipts(sshd) == []  # deleted only after the spool recorded them
    assert agent.uplink.deliver().session_opened is False  # nothing to send or wait for


def test_a_receipt_for_an_upload_never_recorded_acknowledges_the_sealed_batch(
    agent: Agent, sshd: SshdServer, dc: ReceiptingLanding
) -> None:
    name = agent.seal()
    agent.uplink.deliver()
    agent.spool.db.execute("UPDATE batches SET status = 'sealed', uploaded = NULL")  # the crash
    dc.ingest()
    report = agent.uplink.deliver()
    assert [r.status for r in report.receipts] == [ReceiptStatus.ACKNOWLEDGED]
    assert report.uploaded == []  # receipts first: nothing left to send
    assert agent.statuses() == [BatchStatus.ACKNOWLEDGED]
    assert not (sshd.landing / "incoming" / name).exists()


def _receipt(name: str, sha256: str, signer: keys.DatacentreKeys) -> bytes:
    return make_receipt(batch_name=name, sha256=sha256, records=3, inserted=3, duplicates=0,
                        stored_at=T0, key=signer.receipts_key,
                        certificate=signer.certificates.receipts)  # fmt: skip


def test_forged_mismatched_and_foreign_receipts_acknowledge_nothing(
    agent: Agent, sshd: SshdServer, dc: ReceiptingLanding
) -> None:
    forged, mismatched = agent.seal(), agent.seal()
    agent.uplink.deliver()
    folder = sshd.landing / "receipts"
    sha_of = {b.file_name: b.sha256 for b in agent.spool.batches()}
    write_receipt(folder, _receipt(forged, sha_of[forged], FORGER), batch_name=forged)
    other = hashlib.sha256(b"not our file").hexdigest()
    write_receipt(folder, _receipt(mismatched, other, DC), batch_name=mismatched)
    foreign = "agent-2-0000000001.ccb"
    write_receipt(folder, _receipt(foreign, other, DC), batch_name=foreign)
    report = agent.uplink.deliver()
    assert [(r.receipt, r.status) for r in report.receipts] == [
        (f"{forged}.receipt", ReceiptStatus.REJECTED),
        (f"{mismatched}.receipt", ReceiptStatus.MISMATCH)]  # fmt: skip
    assert "another data centre's" in report.receipts[0].detail
    assert agent.statuses() == [BatchStatus.UPLOADED] * 2
    # left for a technician; the other agent's receipt is not ours to touch
    assert remote_receipts(sshd) == sorted(f"{n}.receipt" for n in (forged, mismatched, foreign))


def test_without_a_receipts_folder_batches_stay_unacknowledged(
    agent: Agent, sshd: SshdServer
) -> None:
    agent.seal()
    (sshd.landing / "receipts").rmdir()
    agent.uplink.deliver()
    assert agent.uplink.deliver().receipts == []
    assert agent.statuses() == [BatchStatus.UPLOADED]


def test_max_kbps_paces_the_upload(sshd: SshdServer, tmp_path: Path) -> None:
    local = tmp_path / "agent-1-0000000001.ccb"
    local.write_bytes(os.urandom(96 * 1024))  # incompressible: SSH compression cannot help
    paced = uplink_settings(sshd, max_kbps=1536)  # 192 KB/s: at least 0.5 s for 96 KiB
    for settings, minimum in ((uplink_settings(sshd), 0.0), (paced, 0.45)):
        with connect(settings) as session:
            started = time.monotonic()
            session.put_file(local, local.name)
            elapsed = time.monotonic() - started
        assert elapsed >= minimum
        landed = sshd.landing / "incoming" / local.name
        assert landed.read_bytes() == local.read_bytes()
        landed.unlink()


@pytest.mark.parametrize(
    ("kbps", "progress", "elapsed", "sleep"),
    [(8, 1000, 0.0, 1.0), (8, 1000, 0.4, 0.6), (8, 1000, 2.0, None), (800, 100_000, 0.0, 1.0)],
)
def test_throttle_sleeps_until_the_bytes_fit_the_rate(
    kbps: int, progress: int, elapsed: float, sleep: float | None
) -> None:
    clock = [100.0]
    slept: list[float] = []
    throttle = Throttle(kbps, monotonic=lambda: clock[0], sleep=slept.append)
    clock[0] += elapsed
    throttle(progress, progress * 2)
    assert slept == ([] if sleep is None else [pytest.approx(sleep)])


def test_a_batch_lost_in_the_landing_area_is_sent_again_after_the_receipt_timeout(
    agent: Agent, sshd: SshdServer, dc: ReceiptingLanding
) -> None:
    """Nothing lost: an upload that never gets a receipt (deleted or quarantined on the way)
    goes again, same name and bytes, once the timeout passes; never before."""
    now = [T0]
    agent.uplink.clock = lambda: now[0]
    agent.uplink.receipt_timeout = timedelta(minutes=120)
    name = agent.seal()
    agent.uplink.deliver()
    sent_bytes = (sshd.landing / "incoming" / name).read_bytes()
    (sshd.landing / "incoming" / name).unlink()  # lost before the data centre saw it

    now[0] = T0 + timedelta(minutes=119)
    assert agent.uplink.deliver().uploaded == []  # still within the timeout
    assert agent.statuses() == [BatchStatus.UPLOADED]

    now[0] = T0 + timedelta(minutes=121)
    report = agent.uplink.deliver()
    assert [o.file_name for o in report.uploaded] == [name]
    assert (sshd.landing / "incoming" / name).read_bytes() == sent_bytes  # never re-sealed
    assert dc.ingest() == [name]
    assert [r.status for r in agent.uplink.deliver().receipts] == [ReceiptStatus.ACKNOWLEDGED]
    assert agent.statuses() == [BatchStatus.ACKNOWLEDGED]
