"""Rebuilding a damaged spool (edge_agent/rebuild.py) without a site: a fake source's journal,
batches sealed, acknowledged and purged, then the spool replaced by garbage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.config import AgentSettings, from_mapping
from edge_agent.delivery.batches import Batcher
from edge_agent.delivery.retention import Retention
from edge_agent.journal import Journal
from edge_agent.pipeline import SourcePipeline
from edge_agent.rebuild import rebuild_spool
from edge_agent.sources import registry
from edge_agent.sources.base import SourceContext
from edge_agent.spool import BatchStatus, SpoolCorrupt, open_spool
from tests.fixtures import fake_source
from tests.fixtures.fake_source import call_line
from tests.unit.test_config import minimal

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgentSettings:
    monkeypatch.setitem(registry.DRIVERS, "fake", "tests.fixtures.fake_source")
    raw = minimal()
    raw["agent"]["state_dir"] = str(tmp_path / "state")
    raw["sources"] = [{"id": "pbx-1", "kind": "fake"}]
    raw["spool"] = {"batch_max_records": 10}
    raw["delivery"] = {"protection": "none"}
    return from_mapping(raw, base=tmp_path)


def fill(settings: AgentSettings, calls: int) -> None:
    """``calls`` calls journalled and spooled into batches of 10: 1-3 acknowledged and purged,
    4 uploaded and acknowledged after the purge (its receipt kept in the ledger), 5 sealed;
    then 3 more calls, unbatched."""
    state = settings.agent.state_dir
    ctx = SourceContext(agent_id=settings.agent.id, source_id="pbx-1",
                        timezone=settings.agent.timezone)  # fmt: skip
    with open_spool(settings) as spool, Journal.open(state / "journal" / "pbx-1",
                                                     source_id="pbx-1") as journal:  # fmt: skip
        pipeline = SourcePipeline.open(source_id="pbx-1", parser=fake_source.FakeParser(ctx),
                                       journal=journal, spool=spool, clock=lambda: T0)  # fmt: skip
        pipeline.deliver([call_line(n) for n in range(1, calls + 1)], received_at=T0)
        batcher = Batcher(spool, state_dir=state, agent_id=settings.agent.id, tenant="acme",
                          max_records=10)  # fmt: skip
        sealed = batcher.seal_ready(T0, force=True)
        for batch in sealed[:4]:
            spool.mark_uploaded(batch.sequence, at=T0)
            (state / "sent" / batch.file_name).write_bytes(batch.path.read_bytes())
            batch.path.unlink()
        for batch in sealed[:3]:
            spool.acknowledge(batch.file_name, sha256=batch.sha256, receipt="r", at=T0)
            batcher.ledger.acknowledge(batch.file_name, b"receipt")
        Retention(spool, batcher, keep=timedelta(0)).purge(T0 + timedelta(days=1))
        assert spool.purged_through() == 3
        spool.acknowledge(sealed[3].file_name, sha256=sealed[3].sha256, receipt="r", at=T0)
        batcher.ledger.acknowledge(sealed[3].file_name, b"receipt")
        pipeline.deliver([call_line(n) for n in range(calls + 1, calls + 4)], received_at=T0)


def test_a_rebuilt_spool_re_sends_nothing_that_left_and_keeps_every_number(
    settings: AgentSettings,
) -> None:
    fill(settings, 50)
    state = settings.agent.state_dir
    with open_spool(settings) as spool:
        before = {b.sequence: b.status for b in spool.batches()}
        unbatched = len(spool.unbatched(100))
    (state / "spool.db").write_bytes(b"garbage" * 1000)
    with pytest.raises(SpoolCorrupt):
        open_spool(settings)

    report = rebuild_spool(settings, clock=lambda: T0)

    assert [p.name for p in report.set_aside] == ["spool.db.damaged-20260302T090000Z"]
    assert (state / "spool.db.damaged-20260302T090000Z").read_bytes() == b"garbage" * 1000
    recovery = report.sources[0]
    assert (recovery.first_seq, recovery.last_seq, recovery.gaps) == (1, 53, [])
    assert recovery.dropped_purged == 30  # batches 1-3: their receipts came, retention purged
    with open_spool(settings, verify=True) as spool:
        after = {b.sequence: b.status for b in spool.batches()}
        assert after == before == {4: BatchStatus.ACKNOWLEDGED, 5: BatchStatus.SEALED}
        assert len(spool.unbatched(100)) == unbatched == 3
        assert spool.next_batch_sequence() == 6
        assert len(spool.batch_rows(4)) == len(spool.batch_rows(5)) == 10
