"""Lync end to end: LcsCDR (PostgreSQL over psqlODBC) -> poller -> journal and spool -> sealed
batches -> data-centre ingest, rated with the demo tariff. Exactly the calls that happened are
billed, at the costs worked out by hand below, and the call still in progress when first read
is billed once its end arrives, hours later and outside the overlap window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from datacenter.ingest.worker import ingest_once
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.store import import_tariff_plan, set_site
from datacenter.rating.tariffs import load_tariff
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import call_costs, unrated_calls
from edge_agent.delivery.batches import Batcher
from edge_agent.journal import Journal
from edge_agent.pipeline import SourcePipeline
from edge_agent.simulators.lcscdr import ExpectedCall
from edge_agent.sources.base import SourceContext
from edge_agent.sources.lync_cdr.driver import LcsCdrPoller, LyncOptions
from edge_agent.sources.lync_cdr.parser import LyncCdrParser
from edge_agent.spool import Spool
from tests.fixtures.lcscdr import LcsCdrFactory
from tests.fixtures.store import gen_agent, gen_tenant, land

pytestmark = pytest.mark.postgres

DEMO = Path(__file__).resolve().parents[2] / "datacenter" / "rating" / "demo"
AGENT = "agent-1"
CTX = SourceContext(agent_id=AGENT, source_id="lync", timezone=ZoneInfo("Europe/London"))
# Monday 3 March 2025, 09:00 GMT: every scenario call is in britline-2025-01's weekday day band.
BASE = datetime(2025, 3, 3, 9, 0)  # naive UTC, as LcsCDR stores it
NOW = BASE.replace(tzinfo=UTC)

# The calls billed, in pence, by britline-2025-01 (half_up to the penny):
#   UK geographic 441 (day): 0.0300/min, fee 0.0150, 60 s increments
#   UK mobile 447 (day):     0.0800/min, no fee, first 60 s then per second
BILLED = {
    "pstn_out": 11,  # 125.5 s -> 126 s -> 3 min: 0.0150 + 3 x 0.0300 = 0.1050 -> 0.11
    "out_audio_im": 5,  # 33.3 s -> 1 min: 0.0150 + 0.0300 = 0.0450 -> 0.05
    "tandem_forward": 11,  # to a mobile, 80 s: 80 x 0.08 / 60 = 0.1067 -> 0.11
    "tandem_forward_did": 13,  # to a mobile, 95 s: 95 x 0.08 / 60 = 0.1267 -> 0.13
    "conference_dial_out": 23,  # 420 s = 7 min: 0.0150 + 7 x 0.0300 = 0.2250 -> 0.23
    "retry_connected": 5,  # 42 s -> 1 min: 0.0450 -> 0.05 (the failed attempts: nothing)
    "mediation_only": 5,  # 12 s -> 1 min: 0.0450 -> 0.05
    "same_instant_1": 5,  # 15 s -> 1 min
    "same_instant_2": 5,  # 30 s -> 1 min
    "late_end": 14,  # ended 240 s after answer, hours later: 0.0150 + 4 x 0.0300 = 0.1350 -> 0.14
}
# Who each billed call's cost belongs to (the forwarded calls: the forwarder, never the mobile).
OWNERS = {"tandem_forward": "carol@example.com", "tandem_forward_did": "+441632960150"}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def datacentre(store: sa.Engine, dc_settings: Settings) -> tuple[sa.Engine, Settings]:
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    gen_agent(store, "acme", AGENT)
    with write_transaction(store) as conn:
        import_tariff_plan(conn, tenant.tenant_id, load_tariff(DEMO / "britline.toml"), now=NOW)
        set_site(
            conn, tenant.tenant_id, AGENT, dial_plan=load_dial_plan(DEMO / "london.toml"),
            carriers=load_carrier_rules(DEMO / "london-routes.toml"), now=NOW,
        )  # fmt: skip
    return store, dc_settings


def _ship(batcher: Batcher, engine: sa.Engine, settings: Settings, now: datetime) -> None:
    """Seal what the spool holds, land it at the data centre and ingest it."""
    for sealed in batcher.seal_ready(now, force=True):
        land(settings, "acme", sealed.file_name, sealed.path.read_bytes())
    report = ingest_once(engine, settings, worker_id="w1")
    assert all(o.status in ("stored", "duplicate") for o in report.outcomes), report.summary()


def _billed(engine: sa.Engine) -> dict[str, tuple[int, str]]:
    """record id -> (cost in pence, extension) of every call a tariff priced."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(call_costs.c.record_id, call_costs.c.cost_minor, calls.c.extension)
            .join(calls, sa.and_(calls.c.tenant_id == call_costs.c.tenant_id,
                                 calls.c.record_id == call_costs.c.record_id))
            .where(call_costs.c.zero_reason.is_(None))
        ).all()  # fmt: skip
    return {row.record_id: (row.cost_minor, row.extension) for row in rows}


def _queue(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(unrated_calls.c.record_id, unrated_calls.c.reason)).all()
    return {row.record_id: row.reason for row in rows}


def test_exactly_the_calls_that_happened_are_billed(
    lcscdr_factory: LcsCdrFactory, datacentre: tuple[sa.Engine, Settings], tmp_path: Path
) -> None:
    engine, settings = datacentre
    site = lcscdr_factory(scenarios=False)
    expected = site.simulator.write_scenarios(BASE)
    parser = LyncCdrParser(CTX)

    def rid(call: ExpectedCall) -> str:
        return parser.record_id(call.session_time, call.session_seq)

    by_name = {call.scenario: call for call in expected}
    late = rid(by_name["late_end"])
    clock = Clock((BASE + timedelta(hours=2)).replace(tzinfo=UTC))
    options = {"connection_string": site.odbc, "overlap_hours": 1}
    with (
        Journal.open(tmp_path / "journal", source_id="lync") as journal,
        Spool.open(tmp_path / "agent", quota_bytes=10**8) as spool,
    ):
        pipeline = SourcePipeline.open(
            source_id="lync", parser=parser, journal=journal, spool=spool, clock=clock
        )
        batcher = Batcher(spool, state_dir=tmp_path / "agent", agent_id=AGENT, tenant="acme")
        poller = LcsCdrPoller(LyncOptions.from_mapping(CTX, options), clock=clock)
        poller.poll(pipeline)  # the session in progress leaves the 1 h window: sent incomplete
        _ship(batcher, engine, settings, clock.now)
        wanted = {rid(by_name[name]): (cost, OWNERS.get(name, by_name[name].calling))
                  for name, cost in BILLED.items() if name != "late_end"}  # fmt: skip
        assert _billed(engine) == wanted
        assert _queue(engine) == {late: "END_PENDING"}  # never priced as a 0-second call

        site.simulator.complete_pending(talk_seconds=240.0)
        clock.now += timedelta(hours=6)  # far outside the overlap window by now
        poller.poll(pipeline)
        _ship(batcher, engine, settings, clock.now)

    wanted[late] = (BILLED["late_end"], "erin@example.com")
    assert _billed(engine) == wanted
    assert _queue(engine) == {}
    with engine.connect() as conn:
        stored = conn.execute(sa.select(calls.c.record_id)).scalars().all()
    assert sorted(stored) == sorted(rid(c) for c in expected if c.pstn)  # each call once
