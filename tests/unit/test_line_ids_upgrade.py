"""Record-id scheme 2 across an upgrade: lines an older agent journalled keep their ids.

An agent from before scheme 2 journals and spools MiVB SMDR lines with scheme-1 ids (its journal
has no ``line-ids-v2.from``). The upgraded agent (the real ``Service``) opens that journal, takes
more lines, and the spool is then rebuilt from the journal (every line parsed again): the old
lines must come back with the ids the old agent gave them, the new ones with their scheme-2 ids,
or the data centre (unique on tenant and record id) would store the old calls twice.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_agent.config import AgentSettings, from_mapping
from edge_agent.journal import LINE_IDS_FILE, Journal
from edge_agent.pipeline import SourcePipeline
from edge_agent.rebuild import rebuild_spool
from edge_agent.service import Service
from edge_agent.simulators.mivb_smdr import generate_calls
from edge_agent.sources.base import SourceContext
from edge_agent.sources.mivb_smdr.driver import MivbSmdrParser, ParserSettings
from edge_agent.sources.mivb_smdr.layout import LayoutFlags
from edge_agent.spool import open_spool
from shared.icdr import make_line_record_id, make_record_id
from tests.unit.test_config import minimal

SOURCE = "pbx-main"
OLD_LINES = 6  # journalled by the agent from before the upgrade
NEW_LINES = 4


@pytest.fixture
def settings(tmp_path: Path) -> AgentSettings:
    raw = minimal()
    raw["agent"]["state_dir"] = str(tmp_path / "state")
    raw["sources"] = [
        {"id": SOURCE, "kind": "mivb-smdr", "host": "127.0.0.1", "layout": "standard"}
    ]
    raw["delivery"] = {"protection": "none"}
    return from_mapping(raw, base=tmp_path)


def scheme_1(agent: str, seq: int, line: bytes) -> str:
    """The id the parser gave every line before scheme 2, written out independently."""
    return make_record_id(agent, SOURCE, str(seq), hashlib.sha256(line).hexdigest())


def test_lines_journalled_before_the_upgrade_keep_their_ids_when_parsed_again(
    settings: AgentSettings,
) -> None:
    calls = generate_calls(
        count=OLD_LINES + NEW_LINES, seed=3, start=datetime(2026, 3, 2, 9, 0), tz="Europe/London"
    )
    lines = [call.line.encode("latin-1") for call in calls]
    received = max(call.received_at for call in calls).astimezone(UTC)
    agent = settings.agent.id
    journal_dir = settings.agent.state_dir / "journal" / SOURCE

    # the old agent: no position in its journal, every id scheme 1
    old_ctx = SourceContext(agent, SOURCE, settings.agent.timezone)
    parser = MivbSmdrParser(old_ctx, ParserSettings(layout=LayoutFlags.parse("standard")))
    with open_spool(settings) as spool, Journal.open(journal_dir, source_id=SOURCE) as journal:
        (journal_dir / LINE_IDS_FILE).unlink()  # an older agent never writes it
        pipeline = SourcePipeline.open(
            source_id=SOURCE, parser=parser, journal=journal, spool=spool, clock=lambda: received
        )
        pipeline.deliver(lines[:OLD_LINES], received_at=received)
        delivered_before = spool.record_ids(SOURCE)
    old_ids = [scheme_1(agent, seq, line) for seq, line in enumerate(lines[:OLD_LINES], 1)]
    assert delivered_before == old_ids
    assert not (journal_dir / LINE_IDS_FILE).exists()

    # the upgraded agent opens the same state and takes the next lines
    service = Service(settings, clock=lambda: received)
    service.open()
    try:
        assert service.sources[0].journal.line_ids_from == OLD_LINES + 1
        service.sources[0].pipeline.deliver(lines[OLD_LINES:], received_at=received)
    finally:
        service.close()
    new_ids = [
        make_line_record_id(agent, SOURCE, seq, line)
        for seq, line in enumerate(lines[OLD_LINES:], OLD_LINES + 1)
    ]
    with open_spool(settings) as spool:
        assert spool.record_ids(SOURCE) == old_ids + new_ids
    assert (journal_dir / LINE_IDS_FILE).read_text() == f"{OLD_LINES + 1}\n"
    assert set(old_ids).isdisjoint(new_ids)

    # every journalled line parsed again: each keeps the id it was delivered with
    (settings.agent.state_dir / "spool.db").write_bytes(b"damaged" * 1000)
    report = rebuild_spool(settings, clock=lambda: received)
    assert report.sources[0].units == OLD_LINES + NEW_LINES
    with open_spool(settings, verify=True) as spool:
        assert spool.record_ids(SOURCE) == old_ids + new_ids


def test_a_new_source_uses_scheme_2_from_its_first_line(settings: AgentSettings) -> None:
    calls = generate_calls(count=3, seed=4, start=datetime(2026, 3, 2, 9, 0), tz="Europe/London")
    lines = [call.line.encode("latin-1") for call in calls]
    received = max(call.received_at for call in calls).astimezone(UTC)
    service = Service(settings, clock=lambda: received)
    service.open()
    try:
        service.sources[0].pipeline.deliver(lines, received_at=received)
    finally:
        service.close()
    agent = settings.agent.id
    expected = [make_line_record_id(agent, SOURCE, seq, line) for seq, line in enumerate(lines, 1)]
    with open_spool(settings) as spool:
        assert spool.record_ids(SOURCE) == expected
