"""Retention and re-send: only acknowledged batches are ever deleted; numbers never go back."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.delivery.batches import Batcher
from edge_agent.delivery.retention import Retention, resend
from edge_agent.spool import AckOutcome, BatchStatus, Spool
from tests.factories import gen_icdr

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KEEP = timedelta(days=30)


class Site:
    def __init__(self, root: Path) -> None:
        self.spool = Spool.open(root, quota_bytes=64 * 2**20)
        self.batcher = Batcher(self.spool, state_dir=root, agent_id="agent-1", tenant="demo",
                               max_records=2)  # fmt: skip
        self.retention = Retention(self.spool, self.batcher, keep=KEEP)
        self.next_call = 1

    def seal(self, *, at: datetime) -> str:
        calls = range(self.next_call, self.next_call + 2)
        self.next_call += 2
        self.spool.store("pbx-1", [(n, gen_icdr(n)) for n in calls], [], cursor=None, now=at)
        (batch,) = self.batcher.seal_ready(at)
        return batch.file_name

    def upload(self, name: str, *, at: datetime) -> None:
        batch = self.spool.batch_named(name)
        assert batch is not None
        self.spool.mark_uploaded(batch.sequence, at=at)
        self.batcher.outbox.joinpath(name).replace(self.batcher.sent / name)

    def ack(self, name: str, *, at: datetime) -> AckOutcome:
        batch = self.spool.batch_named(name)
        assert batch is not None
        return self.spool.acknowledge(name, sha256=batch.sha256, receipt="r", at=at)

    def statuses(self) -> dict[str, BatchStatus]:
        return {b.file_name: b.status for b in self.spool.batches()}

    def files(self) -> set[str]:
        return {p.name for d in (self.batcher.outbox, self.batcher.sent) for p in d.iterdir()}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.spool.close()


def test_only_acknowledged_batches_past_retention_are_deleted(site: Site) -> None:
    old_acked, old_uploaded, old_sealed, young_acked = (site.seal(at=T0) for _ in range(4))
    for name in (old_acked, old_uploaded, young_acked):
        site.upload(name, at=T0)
    assert site.ack(old_acked, at=T0) is AckOutcome.ACKNOWLEDGED
    assert site.ack(young_acked, at=T0 + 20 * DAY) is AckOutcome.ACKNOWLEDGED
    result = site.retention.purge(T0 + 31 * DAY)
    assert [b.file_name for b in result.batches] == [old_acked]
    assert site.statuses() == {old_uploaded: BatchStatus.UPLOADED, old_sealed: BatchStatus.SEALED,
                               young_acked: BatchStatus.ACKNOWLEDGED}  # fmt: skip
    assert site.files() == {old_uploaded, old_sealed, young_acked}
    assert site.spool.batch_bodies(1) == []  # its ICDR rows went with it
    assert len(site.spool.batch_bodies(2)) == 2


def test_disk_pressure_waives_retention_but_never_touches_unacknowledged(site: Site) -> None:
    acked, uploaded, sealed = (site.seal(at=T0) for _ in range(3))
    for name in (acked, uploaded):
        site.upload(name, at=T0)
    site.ack(acked, at=T0)
    result = site.retention.purge(T0 + DAY, under_pressure=True)
    assert [b.file_name for b in result.batches] == [acked]
    assert site.statuses() == {uploaded: BatchStatus.UPLOADED, sealed: BatchStatus.SEALED}


def test_sequence_numbers_never_go_back_after_everything_is_purged(site: Site) -> None:
    first, second = site.seal(at=T0), site.seal(at=T0)
    for name in (first, second):
        site.upload(name, at=T0)
        site.ack(name, at=T0)
    site.retention.purge(T0 + 31 * DAY)
    assert site.spool.batches() == [] and site.spool.purged_through() == 2
    assert site.seal(at=T0 + 31 * DAY) == "agent-1-0000000003.ccb"


def test_a_receipt_for_other_bytes_acknowledges_nothing(site: Site) -> None:
    name = site.seal(at=T0)
    site.upload(name, at=T0)
    wrong = hashlib.sha256(b"another file").hexdigest()
    assert site.spool.acknowledge(name, sha256=wrong, receipt="r", at=T0) is AckOutcome.MISMATCH
    assert site.spool.acknowledge("agent-1-0000000099.ccb", sha256=wrong, receipt="r",
                                  at=T0) is AckOutcome.UNKNOWN  # fmt: skip
    assert site.statuses() == {name: BatchStatus.UPLOADED}
    assert site.ack(name, at=T0) is AckOutcome.ACKNOWLEDGED
    assert site.ack(name, at=T0) is AckOutcome.ALREADY


def test_recover_removes_a_file_whose_purge_was_interrupted(site: Site) -> None:
    name = site.seal(at=T0)
    site.upload(name, at=T0)
    site.ack(name, at=T0)
    kept = (site.batcher.sent / name).read_bytes()
    site.retention.purge(T0 + 31 * DAY)
    (site.batcher.sent / name).write_bytes(kept)  # the crash between the commit and the unlink
    stranger = site.batcher.sent / "agent-1-0000000007.ccb"  # a number retention never had
    stranger.write_bytes(b"x")
    assert site.batcher.recover() == [f"removed {name}, purged by retention"]
    assert site.files() == {stranger.name}


def test_resend_requeues_acknowledged_batches_in_range(site: Site) -> None:
    early, inside, late = (site.seal(at=T0 + n * DAY) for n in (0, 2, 5))
    for name in (early, inside, late):
        site.upload(name, at=T0 + 6 * DAY)
        site.ack(name, at=T0 + 6 * DAY)
    sent_bytes = (site.batcher.sent / inside).read_bytes()
    requeued = resend(site.spool, site.batcher, since=T0 + DAY, until=T0 + 3 * DAY)
    assert [b.file_name for b in requeued] == [inside]
    assert site.statuses()[inside] is BatchStatus.SEALED
    assert (site.batcher.outbox / inside).read_bytes() == sent_bytes
    assert site.statuses()[early] is site.statuses()[late] is BatchStatus.ACKNOWLEDGED
    # a re-queued batch is unacknowledged again: retention keeps it whatever its age
    assert site.retention.purge(T0 + 90 * DAY, under_pressure=True).batches != []
    assert inside in site.statuses()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=st.lists(st.tuples(st.sampled_from(["sealed", "uploaded", "acknowledged"]),
                               st.integers(0, 60)), min_size=1, max_size=8),
       now_days=st.integers(0, 90), pressure=st.booleans())  # fmt: skip
def test_purge_never_deletes_an_unacknowledged_record(
    tmp_path_factory: pytest.TempPathFactory,
    plan: list[tuple[str, int]],
    now_days: int,
    pressure: bool,
) -> None:
    site = Site(tmp_path_factory.mktemp("site"))
    try:
        for status, age in plan:
            name = site.seal(at=T0)
            if status != "sealed":
                site.upload(name, at=T0)
            if status == "acknowledged":
                site.ack(name, at=T0 + age * DAY)
        unacked = {b.file_name for b in site.spool.batches() if b.status != "acknowledged"}
        bodies = {b.sequence: site.spool.batch_bodies(b.sequence) for b in site.spool.batches()
                  if b.file_name in unacked}  # fmt: skip
        site.retention.purge(T0 + now_days * DAY, under_pressure=pressure)
        assert unacked <= set(site.statuses()) and unacked <= site.files()
        assert all(site.spool.batch_bodies(seq) == rows for seq, rows in bodies.items())
    finally:
        site.spool.close()
