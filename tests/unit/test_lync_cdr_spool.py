"""The spool keeps a Lync call read while in progress until its complete version supersedes it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.delivery.batches import Batcher
from edge_agent.spool import SUPERSEDED_MARK, Spool
from shared.envelope import open_batch
from shared.icdr import ICDR, make_record_id

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def versions(n: int = 1) -> tuple[ICDR, ICDR]:
    """(read while in progress, read once ended) of one answered Lync call."""
    answer = T0 + timedelta(minutes=n, seconds=5)
    incomplete = ICDR(
        record_id=make_record_id("lync", str(n)), agent_id="agent-1", source_id="lync",
        source_kind="lync-cdr", start=T0 + timedelta(minutes=n), answer=answer, end=answer,
        answered=True, calling="alice@example.com", called="+441632960001",
        flags=("end_pending",),
    )  # fmt: skip
    complete = replace(incomplete, end=answer + timedelta(seconds=125), talk_seconds=125, flags=())
    return incomplete, complete


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool.open(tmp_path, quota_bytes=64 * 1024 * 1024) as opened:
        yield opened


def batcher(spool: Spool, tmp_path: Path) -> Batcher:
    return Batcher(spool, state_dir=tmp_path, agent_id="agent-1", tenant="demo", max_records=10)


def test_unbatched_incomplete_record_is_replaced(spool: Spool) -> None:
    incomplete, complete = versions()
    spool.store("lync", [(1, incomplete)], [], cursor=1)
    assert spool.store("lync", [(2, complete)], [], cursor=2).inserted == 1
    assert [r.body for r in spool.unbatched(10)] == [complete.to_json()]
    spool.store("lync", [(3, complete), (4, incomplete)], [], cursor=4)  # re-reads: no-ops
    assert [r.body for r in spool.unbatched(10)] == [complete.to_json()]


def test_batched_incomplete_record_is_sent_again_complete(spool: Spool, tmp_path: Path) -> None:
    incomplete, complete = versions()
    other, _ = versions(2)
    spool.store("lync", [(1, incomplete), (2, other)], [], cursor=2)
    first = batcher(spool, tmp_path).seal_ready(T0, force=True)[0]
    spool.store("lync", [(3, complete)], [], cursor=3)
    second = batcher(spool, tmp_path).seal_ready(T0, force=True)
    assert [b.record_count for b in second] == [1]
    assert [r.to_json() for r in open_batch(second[0].path.read_bytes()).records] == [
        complete.to_json()
    ]
    # The first batch still rebuilds byte for byte: its rows are untouched, key and all.
    original = first.path.read_bytes()
    first.path.unlink()
    assert batcher(spool, tmp_path).recover() == [f"rebuilt {first.file_name}"]
    assert first.path.read_bytes() == original
    assert spool.record_ids("lync") == [
        f"{incomplete.record_id}{SUPERSEDED_MARK}1",
        other.record_id,
        complete.record_id,
    ]
    assert spool.bodies("lync") == [other.to_json(), complete.to_json()]
    spool.store("lync", [(4, complete)], [], cursor=4)  # a complete record is never superseded
    assert batcher(spool, tmp_path).seal_ready(T0, force=True) == []


def test_a_replay_holding_both_versions_keeps_the_complete_one(spool: Spool) -> None:
    incomplete, complete = versions()
    spool.store("lync", [(1, incomplete), (2, complete)], [], cursor=2)
    assert spool.bodies("lync") == [complete.to_json()]
