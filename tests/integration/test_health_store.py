"""The health model's store layer on both backends: heartbeats in, facts out."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datacenter.health.console import heartbeat_history
from datacenter.health.facts import collect_site_facts
from datacenter.health.heartbeats import ingest_heartbeats
from datacenter.health.model import HealthPolicy, SequenceGap
from datacenter.ingest.worker import ingest_once
from datacenter.settings import Settings
from datacenter.store.scoped import TenantScope
from datacenter.store.tables.health import agent_heartbeats
from shared.heartbeat import HEARTBEAT_FOLDER, Heartbeat, UplinkStatus, heartbeat_file_name
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

NOW = datetime.now(UTC).replace(microsecond=0)


def heartbeat(sent_at: datetime, **overrides: object) -> Heartbeat:
    values: dict[str, object] = {
        "agent_id": "edge-1", "tenant": "acme", "sent_at": sent_at, "agent_version": "0.1.0",
        "started_at": sent_at - timedelta(hours=1), "interval_seconds": 60,
    }  # fmt: skip
    values.update(overrides)
    return Heartbeat(**values)  # type: ignore[arg-type]


def land_heartbeat(
    settings: Settings, hb: Heartbeat, *, slug: str = "acme", arrived: datetime | None = None,
    name: str | None = None, data: bytes | None = None,
) -> Path:  # fmt: skip
    folder = settings.landing.root / slug / HEARTBEAT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or heartbeat_file_name(hb.agent_id, hb.sent_at))
    path.write_bytes(hb.to_json() if data is None else data)
    when = (arrived or hb.sent_at).timestamp()
    os.utime(path, (when, when))
    return path


@pytest.fixture
def acme(store: sa.Engine) -> None:
    gen_tenant(store, "acme")
    gen_agent(store, "acme", "edge-1")


@pytest.mark.usefixtures("acme")
def test_heartbeats_are_stored_once_and_their_files_removed(
    store: sa.Engine, dc_settings: Settings
) -> None:
    first = heartbeat(NOW - timedelta(minutes=2))
    path = land_heartbeat(dc_settings, first, arrived=NOW - timedelta(seconds=100))
    assert ingest_heartbeats(store, dc_settings).stored == 1
    assert not path.exists()
    land_heartbeat(dc_settings, first)  # the same document again (a re-sent session)
    report = ingest_heartbeats(store, dc_settings)
    assert (report.stored, report.duplicates) == (0, 1)
    with store.connect() as conn:
        (stored,) = heartbeat_history(
            conn, tenant_id=1, agent_id="edge-1", since=NOW - timedelta(hours=1)
        )
    assert stored.heartbeat == first
    assert stored.delay_seconds == pytest.approx(20)


@pytest.mark.usefixtures("acme")
@pytest.mark.parametrize(
    ("hb", "name", "data", "reason"),
    [
        (heartbeat(NOW, tenant="other"), None, None, "names tenant 'other'"),
        (heartbeat(NOW, agent_id="edge-9"), None, None, "agent edge-9 is not enrolled"),
        (heartbeat(NOW), None, b"{}", "not a valid heartbeat document"),
        (heartbeat(NOW), "edge-1-20200101T000000000Z.json", None, "the file was renamed"),
        (heartbeat(NOW), "notes.json", None, "is not a heartbeat file name"),
    ],
)  # fmt: skip
def test_bad_heartbeats_are_quarantined_with_the_reason(
    store: sa.Engine, dc_settings: Settings, hb: Heartbeat, name: str | None,
    data: bytes | None, reason: str,
) -> None:  # fmt: skip
    path = land_heartbeat(dc_settings, hb, name=name, data=data)
    report = ingest_heartbeats(store, dc_settings)
    assert report.stored == 0
    ((where, why),) = report.rejected
    assert reason in why and where == f"acme/{path.name}"
    kept = dc_settings.landing.root / "acme" / "quarantine" / HEARTBEAT_FOLDER / path.name
    assert kept.exists() and reason in Path(f"{kept}.reason").read_text()


@pytest.mark.usefixtures("acme")
def test_old_heartbeats_are_pruned(store: sa.Engine, dc_settings: Settings) -> None:
    land_heartbeat(dc_settings, heartbeat(NOW - timedelta(days=40)))
    land_heartbeat(dc_settings, heartbeat(NOW - timedelta(days=1)))
    report = ingest_heartbeats(store, dc_settings, now=NOW)
    assert (report.stored, report.pruned) == (2, 1)
    with store.connect() as conn:
        left = conn.execute(sa.select(agent_heartbeats.c.sent_at)).scalars().all()
    assert left == [NOW - timedelta(days=1)]


@pytest.mark.usefixtures("acme")
def test_facts_carry_the_newest_heartbeat_trouble_and_gaps(
    store: sa.Engine, dc_settings: Settings
) -> None:
    for sequence in (1, 2, 5, 6, 9):
        name, data = gen_batch([gen_outgoing_call(sequence)], tenant="acme", sequence=sequence)
        land(dc_settings, "acme", name, data)
    failing = heartbeat(NOW - timedelta(minutes=5),
                        uplink=UplinkStatus(failures_in_a_row=4, last_error="refused"))  # fmt: skip
    land_heartbeat(dc_settings, failing, arrived=NOW - timedelta(minutes=1))  # 4 min late
    newest = heartbeat(NOW - timedelta(seconds=30))
    land_heartbeat(dc_settings, newest)
    ingest_once(store, dc_settings)
    with store.connect() as conn:
        (facts,) = collect_site_facts(conn, now=NOW, policy=HealthPolicy())
    assert facts.latest is not None and facts.latest.heartbeat == newest
    assert facts.trouble.max_failures == 4 and facts.trouble.last_error == "refused"
    assert facts.trouble.max_delay_seconds == pytest.approx(240)
    assert facts.trouble.late_sent_at == failing.sent_at
    assert facts.last_sequence == 9
    assert [(g.first, g.last) for g in facts.gaps] == [(3, 4), (7, 8)]
    assert all(isinstance(g, SequenceGap) for g in facts.gaps)


@pytest.mark.usefixtures("acme")
def test_call_counts_per_source_and_hour(store: sa.Engine, dc_settings: Settings) -> None:
    base = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    records = [gen_outgoing_call(n, start=base + timedelta(minutes=25 * n), source_id=f"pbx-{n % 2}")
               for n in range(6)]  # fmt: skip
    name, data = gen_batch(records, tenant="acme")
    land(dc_settings, "acme", name, data)
    ingest_once(store, dc_settings)
    with store.connect() as conn:
        scope = TenantScope(conn, 1)
        assert scope.count_calls_by_source(base, base + timedelta(hours=2), agent_id="edge-1") == {
            "pbx-0": 3, "pbx-1": 2,
        }  # fmt: skip
        assert scope.count_calls_by_source(base, base + timedelta(hours=3), agent_id="x") == {}
        assert scope.hourly_counts(base, base + timedelta(hours=3)) == [
            (base, 3), (base + timedelta(hours=1), 2), (base + timedelta(hours=2), 1),
        ]  # fmt: skip


def test_other_tenants_are_left_out(store: sa.Engine, dc_settings: Settings) -> None:
    gen_tenant(store, "acme")
    gen_tenant(store, "beta")
    gen_agent(store, "acme", "edge-1")
    gen_agent(store, "beta", "edge-1")
    with store.connect() as conn:
        everyone = collect_site_facts(conn, now=NOW, policy=HealthPolicy())
        only_beta = collect_site_facts(conn, now=NOW, policy=HealthPolicy(), tenant_ids=[2])
    assert [(f.tenant_slug, f.agent_id) for f in everyone] == [
        ("acme", "edge-1"),
        ("beta", "edge-1"),
    ]
    assert [f.tenant_slug for f in only_beta] == ["beta"]
    assert replace(only_beta[0], enrolled_at=None).latest is None
