"""`datacenter store stats` on both backends: per-table and per-tenant figures match the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from datacenter.cli import main
from datacenter.ingest.worker import ingest_once
from datacenter.settings import Settings
from datacenter.store import stats as stats_module
from datacenter.store.tables.core import calls
from tests.factories import gen_icdr
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land


@pytest.fixture
def config(tmp_path: Path, dc_settings: Settings) -> Path:
    path = tmp_path / "datacenter.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[store]\nurl = "{dc_settings.store.url}"\n'
        "[ingest]\naccept_unprotected = true\n"
    )
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["store", "stats", *args, "--config", str(config)])


def _fill(store: sa.Engine, settings: Settings) -> None:
    """acme: 30 calls over two days; globex: 5 calls; initech: none."""
    for slug, count in (("acme", 30), ("globex", 5), ("initech", 0)):
        gen_tenant(store, slug)
        gen_agent(store, slug, "agent-1")
        if count:
            records = [gen_icdr(n * 90, agent_id="agent-1") for n in range(count)]
            land(settings, slug, *gen_batch(records, tenant=slug, agent_id="agent-1"))
    assert ingest_once(store, settings, keys=None).inserted == 35
    if store.dialect.name == "postgresql":
        with store.connect() as conn:  # the estimates come from the statistics ANALYZE keeps
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def test_figures_match_the_store(store: sa.Engine, dc_settings: Settings, config: Path) -> None:
    _fill(store, dc_settings)
    result = run(config, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["backend"] == store.dialect.name
    assert document["database_bytes"] > 0
    tables = {t["name"]: t for t in document["tables"]}
    assert tables["calls"]["rows"] == 35 and tables["tenants"]["rows"] == 3
    assert tables["calls"]["exact"] is (store.dialect.name == "sqlite")
    assert tables["calls"]["bytes"] > 0
    tenants = {t["slug"]: t for t in document["tenants"]}
    with store.connect() as conn:
        span = conn.execute(
            sa.select(sa.func.min(calls.c.start_utc), sa.func.max(calls.c.start_utc)).where(
                calls.c.tenant_id == tenants["acme"]["tenant_id"]
            )
        ).one()
    assert tenants["acme"]["oldest_call"] == span[0].isoformat()
    assert tenants["acme"]["newest_call"] == span[1].isoformat()
    assert tenants["initech"]["oldest_call"] is None
    rows = {slug: {r["table"]: r["rows"] for r in t["tables"]} for slug, t in tenants.items()}
    assert (rows["acme"]["calls"], rows["globex"]["calls"], rows["initech"]["calls"]) == (30, 5, 0)
    assert rows["acme"]["landed_files"] == 1 and rows["acme"]["agents"] == 1

    text = run(config, "--tenant", "globex")
    assert text.exit_code == 0, text.output
    assert "tenant globex" in text.output and "tenant acme" not in text.output
    assert "calls from 2026-03-02 09:00" in text.output


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_large_tables_are_estimated_per_tenant(
    store: sa.Engine, dc_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past EXACT_BELOW a tenant's rows are the planner's estimate: exact after ANALYZE here."""
    _fill(store, dc_settings)
    monkeypatch.setattr(stats_module, "EXACT_BELOW", 10)
    with store.connect() as conn:
        found = stats_module.store_stats(conn, tenant_slug="acme")
    (acme,) = found.tenants
    by_table = {each.table: each for each in acme.tables}
    assert by_table["calls"].exact is False and by_table["calls"].rows == 30
    assert by_table["agents"].exact is True  # 3 rows in all: counted


def test_unknown_tenant_is_a_store_error(store: sa.Engine, config: Path) -> None:
    result = run(config, "--tenant", "nobody")
    assert result.exit_code == 8 and "no tenant 'nobody'" in result.output


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_partitions_are_listed_with_their_bounds(store: sa.Engine, dc_settings: Settings) -> None:
    """The store's monthly partitions of ``calls`` (migration 0018) show their months and rows."""
    _fill(store, dc_settings)  # every call in March 2026
    with store.connect() as conn:
        found = stats_module.store_stats(conn)
    tables = {t.name: t for t in found.tables}
    table = tables["calls"]
    by_name = {p.name: p for p in table.partitions}
    assert {"calls_default", "calls_y2026m02", "calls_y2026m03"} <= set(by_name)
    assert (by_name["calls_y2026m02"].rows, by_name["calls_y2026m03"].rows) == (0, 35)
    assert by_name["calls_default"].bounds == "DEFAULT"
    assert "FOR VALUES FROM ('2026-03-01" in by_name["calls_y2026m03"].bounds
    assert table.rows == 35 and table.bytes == sum(p.bytes for p in table.partitions)
    assert tables["call_keys"].rows == 35 and not tables["call_keys"].partitions
