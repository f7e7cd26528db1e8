"""The directory on both backends: imports keep periods apart, and calls go to whoever had the
extension when they started (through TenantScope, the only call read path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from datacenter.cli import main
from datacenter.directory.entries import EntryInput, apply_entries, list_entries
from datacenter.ingest.worker import ingest_once
from datacenter.settings import Settings
from datacenter.store.engine import write_transaction
from datacenter.store.scoped import CallFilter, TenantScope
from datacenter.store.tables.directory import directory_entries
from tests.factories import gen_outgoing_call
from tests.fixtures.store import gen_agent, gen_batch, gen_tenant, land

JAN = datetime(2025, 1, 1, tzinfo=UTC)
JUN = datetime(2025, 6, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _apply(engine: sa.Engine, tenant_id: int, *entries: EntryInput, source: str = "csv") -> str:
    with write_transaction(engine) as conn:
        report = apply_entries(conn, tenant_id, list(entries), source=source, now=NOW)
    return report.summary()


def _periods(engine: sa.Engine, tenant_id: int, extension: str) -> list[tuple[str, object, object]]:
    t = directory_entries.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.person, t.valid_from, t.valid_to)
            .where(t.tenant_id == tenant_id, t.extension == extension)
            .order_by(t.valid_from)
        ).all()
    return [tuple(row) for row in rows]


def test_a_new_holder_closes_the_old_period_and_reimport_updates_in_place(
    store: sa.Engine,
) -> None:
    tenant = gen_tenant(store)
    ann = EntryInput("201", "Ann", department="Sales", valid_from=JAN)
    assert _apply(store, tenant.tenant_id, ann).startswith("1 added")
    # The same person again, with a new department: updated, no new period.
    moved = EntryInput("201", "Ann", department="Support", valid_from=JAN)
    assert _apply(store, tenant.tenant_id, moved).startswith("0 added, 1 updated")
    assert _apply(store, tenant.tenant_id, moved).startswith("0 added, 0 updated, 1 unchanged")
    # Bob takes the extension in June: Ann's period ends where his begins.
    summary = _apply(store, tenant.tenant_id, EntryInput("201", "Bob", valid_from=JUN))
    assert summary == "1 added, 0 updated, 0 unchanged, 1 periods closed"
    assert _periods(store, tenant.tenant_id, "201") == [("Ann", JAN, JUN), ("Bob", JUN, None)]
    with store.connect() as conn:
        (entry,) = [e for e in list_entries(conn, tenant.tenant_id) if e.person == "Ann"]
    assert entry.department == "Support"


def test_an_entry_overlapping_a_later_period_is_refused_and_nothing_written(
    store: sa.Engine,
) -> None:
    tenant = gen_tenant(store)
    _apply(store, tenant.tenant_id, EntryInput("201", "Bob", valid_from=JUN))
    with write_transaction(store) as conn:
        report = apply_entries(
            conn, tenant.tenant_id, [EntryInput("201", "Ann", valid_from=JAN, line=7)],
            source="csv", now=NOW,
        )  # fmt: skip
    assert [(p.line, "already has a period" in p.message) for p in report.problems] == [(7, True)]
    assert _periods(store, tenant.tenant_id, "201") == [("Bob", JUN, None)]
    # With a valid_to before Bob's start, the history fits.
    _apply(store, tenant.tenant_id, EntryInput("201", "Ann", valid_from=JAN, valid_to=JUN))
    assert _periods(store, tenant.tenant_id, "201") == [("Ann", JAN, JUN), ("Bob", JUN, None)]


def test_a_past_call_stays_with_who_had_the_extension_then(
    store: sa.Engine, dc_settings: Settings
) -> None:
    tenant = gen_tenant(store)
    other = gen_tenant(store, "globex")
    gen_agent(store)
    calls = [
        gen_outgoing_call(1, start=JAN + timedelta(days=10), extension="201"),
        gen_outgoing_call(2, start=JUN + timedelta(days=10), extension="201"),
        gen_outgoing_call(3, start=JUN + timedelta(days=11), extension="299"),  # nobody's
        gen_outgoing_call(4, start=JUN, extension="201"),  # the instant Bob's period starts
    ]
    land(dc_settings, "acme", *gen_batch(calls))
    assert ingest_once(store, dc_settings).inserted == 4
    _apply(store, tenant.tenant_id, EntryInput("201", "Ann", department="Sales", valid_from=JAN))
    _apply(store, tenant.tenant_id, EntryInput("201", "Bob", department="Support", valid_from=JUN))
    # Another tenant's directory for the same extension must not leak into acme's calls.
    _apply(store, other.tenant_id, EntryInput("201", "Mallory", valid_from=JAN))
    with store.connect() as conn:
        scope = TenantScope(conn, tenant.tenant_id)
        listed = scope.list_calls(CallFilter(), per_page=10)
        by_id = {c.record_id: (c.person, c.department) for c in listed.calls}
        assert listed.total == 4 and len(listed.calls) == 4  # the join multiplies nothing
        assert by_id == {
            calls[0].record_id: ("Ann", "Sales"),
            calls[1].record_id: ("Bob", "Support"),
            calls[2].record_id: ("", ""),
            calls[3].record_id: ("Bob", "Support"),
        }
        detail = scope.get_call(calls[0].record_id)
        assert detail is not None and detail.call.person == "Ann"
        after = scope.list_calls_after(CallFilter(extension="201"), limit=10)
        assert [c.person for c in after] == ["Bob", "Bob", "Ann"]


def test_the_import_command_previews_then_applies(
    store: sa.Engine, dc_settings: Settings, tmp_path: Path
) -> None:
    gen_tenant(store)
    config = tmp_path / "dc.toml"
    url = store.url.render_as_string(hide_password=False)
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[store]\nurl = "{url}"\n')
    bad = tmp_path / "bad.csv"
    bad.write_text("extension,person\n201,Ann\n,Nobody\n202,\n")
    runner = CliRunner()
    result = runner.invoke(main, ["directory", "import", str(bad), "--tenant", "acme",
                                  "--apply", "--config", str(config)])  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "line 3: extension is empty" in result.output
    assert "line 4: person is empty" in result.output
    good = tmp_path / "good.csv"
    good.write_text("extension,person,department\n201,Ann,Sales\n202,Bob,Support\n")
    args = ["directory", "import", str(good), "--tenant", "acme", "--config", str(config)]
    preview = runner.invoke(main, args)
    assert preview.exit_code == 0 and "2 entries read, no errors" in preview.output
    applied = runner.invoke(main, [*args, "--apply"])
    assert applied.exit_code == 0 and "2 added" in applied.output, applied.output
    listed = runner.invoke(main, ["directory", "list", "--tenant", "acme", "--search", "Sales",
                                  "--config", str(config)])  # fmt: skip
    assert listed.exit_code == 0
    assert [line.split("\t")[:3] for line in listed.output.splitlines()] == [
        ["201", "Ann", "Sales"]
    ]


@pytest.mark.parametrize("source", ["csv", "manual"])
def test_a_manual_or_csv_entry_without_a_start_begins_now(store: sa.Engine, source: str) -> None:
    tenant = gen_tenant(store)
    _apply(store, tenant.tenant_id, EntryInput("201", "Ann", valid_from=JAN), source=source)
    _apply(store, tenant.tenant_id, EntryInput("201", "Bob"), source=source)
    assert _periods(store, tenant.tenant_id, "201") == [("Ann", JAN, NOW), ("Bob", NOW, None)]
