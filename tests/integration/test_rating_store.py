"""Rating in the store, on SQLite and PostgreSQL: configuration, ingest results, re-rating."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from datacenter.cli import main
from datacenter.ingest.rows import call_rows
from datacenter.ingest.worker import ingest_once
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.rerate import rerate, retry_unrated
from datacenter.rating.store import (
    import_tariff_plan,
    load_rating_config,
    rate_calls_for_ingest,
    set_site,
)
from datacenter.rating.tariffs import TariffPlan, load_tariff, parse_rates_csv
from datacenter.settings import Settings
from datacenter.store.bulk import append_rows
from datacenter.store.engine import write_transaction
from datacenter.store.tables.core import calls
from datacenter.store.tables.rating import (
    call_cost_history,
    call_costs,
    tariff_versions,
    unrated_calls,
)
from shared.errors import StoreError
from shared.icdr import ICDR, Direction, make_record_id
from tests.fixtures.store import cost_start_mismatches, gen_agent, gen_batch, gen_tenant, land

DEMO = Path(__file__).resolve().parents[2] / "datacenter" / "rating" / "demo"
AGENT = "edge-london"
NOW = datetime(2025, 8, 1, tzinfo=UTC)
LONDON = [
    # dialled, answer (UTC), seconds; all on britline
    ("9 00 33 6 12 34 56 78", datetime(2025, 7, 10, 10, 0, tzinfo=UTC), 1234),  # version 2025-01
    ("9 07700 900123", datetime(2025, 7, 10, 11, 0, tzinfo=UTC), 61),  # UK mobile, 2025-01
    ("9 07700 900123", datetime(2025, 7, 16, 11, 0, tzinfo=UTC), 61),  # UK mobile, 2025-07
    ("9 020 7946 0123", datetime(2025, 7, 16, 12, 0, tzinfo=UTC), 95),  # London local
    ("9 0055 11 2345 6789", datetime(2025, 7, 16, 13, 0, tzinfo=UTC), 30),  # no Brazil row
]


def london_calls() -> list[ICDR]:
    out = []
    for n, (dialled, answer, seconds) in enumerate(LONDON):
        out.append(ICDR(
            record_id=make_record_id("rating", str(n)), agent_id=AGENT, source_id="lcs-london",
            source_kind="lcscdr", start=answer - timedelta(seconds=5), answer=answer,
            end=answer + timedelta(seconds=seconds), talk_seconds=seconds, answered=True,
            direction=Direction.OUT, dialled_digits=dialled, route="gw-lon-1",
        ))  # fmt: skip
    return out


def store_calls(engine: sa.Engine, tenant_id: int, records: list[ICDR]) -> None:
    """Insert call rows as ingest does (its own row builder), without rating them."""
    with write_transaction(engine) as conn:
        append_rows(conn, calls, call_rows(conn, tenant_id, records, "test.ccb", NOW))


def configure(engine: sa.Engine, tenant_id: int) -> None:
    with write_transaction(engine) as conn:
        import_tariff_plan(conn, tenant_id, load_tariff(DEMO / "britline.toml"), now=NOW)
        set_site(
            conn, tenant_id, AGENT, dial_plan=load_dial_plan(DEMO / "london.toml"),
            carriers=load_carrier_rules(DEMO / "london-routes.toml"), now=NOW,
        )  # fmt: skip


def costs(engine: sa.Engine) -> dict[str, tuple[int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(call_costs.c.record_id, call_costs.c.cost_minor,
                                      call_costs.c.tariff_version)).all()  # fmt: skip
    return {row.record_id: (row.cost_minor, row.tariff_version) for row in rows}


def queue(engine: sa.Engine) -> dict[str, tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(unrated_calls.c.record_id, unrated_calls.c.reason,
                                      unrated_calls.c.attempts)).all()  # fmt: skip
    return {row.record_id: (row.reason, row.attempts) for row in rows}


def history_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(call_cost_history)).scalar_one()
        )


def test_ingest_hook_writes_one_row_per_call(store: sa.Engine) -> None:
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    records = london_calls()
    store_calls(store, tenant.tenant_id, records)
    configure(store, tenant.tenant_id)
    with write_transaction(store) as conn:
        results = rate_calls_for_ingest(conn, tenant.tenant_id, records)
    ids = [r.record_id for r in records]
    assert len(results) == len(records)
    assert costs(store) == {
        ids[0]: (309, "britline-2025-01"),  # worked example 5
        ids[1]: (8, "britline-2025-01"),  # 0.0800 x 61/60 = 0.0813 -> 0.08
        ids[2]: (7, "britline-2025-07"),  # mid-month version: 0.0700 x 61/60 -> 0.07
        ids[3]: (6, "britline-2025-07"),  # 0.0150 fee + 0.0200 x 2 min = 0.055 -> 0.06
    }
    assert queue(store) == {ids[4]: ("NO_PREFIX_MATCH", 1)}


def test_ingest_rates_every_stored_call_in_its_transaction(
    store: sa.Engine, dc_settings: Settings
) -> None:
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    gen_agent(store, "acme", AGENT)
    configure(store, tenant.tenant_id)
    records = london_calls()
    land(dc_settings, "acme", *gen_batch(records, agent_id=AGENT, sequence=1))
    report = ingest_once(store, dc_settings)
    assert report.inserted == 5
    assert sorted(cost for cost, _ in costs(store).values()) == [6, 7, 8, 309]
    assert list(queue(store).values()) == [("NO_PREFIX_MATCH", 1)]
    assert cost_start_mismatches(store) == (4, [])  # each cost row carries its call's start


def test_calls_of_a_site_without_dial_plan_are_queued_then_retried(store: sa.Engine) -> None:
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    records = london_calls()[:2]
    store_calls(store, tenant.tenant_id, records)
    with write_transaction(store) as conn:
        rate_calls_for_ingest(conn, tenant.tenant_id, records)
    assert {reason for reason, _ in queue(store).values()} == {"NO_DIAL_PLAN"}
    configure(store, tenant.tenant_id)
    report = retry_unrated(store, tenant.tenant_id, now=NOW)
    assert (report.examined, report.queued, queue(store)) == (2, 0, {})
    assert sorted(cost for cost, _ in costs(store).values()) == [8, 309]
    assert history_count(store) == 2  # unrated -> rated is a recorded change
    assert cost_start_mismatches(store) == (2, [])  # the retry's cost rows carry the starts


def test_rerate_after_a_rate_fix_records_old_and_new_and_is_idempotent(store: sa.Engine) -> None:
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    records = london_calls()
    store_calls(store, tenant.tenant_id, records)
    configure(store, tenant.tenant_id)
    with write_transaction(store) as conn:
        rate_calls_for_ingest(conn, tenant.tenant_id, records)
    # Fix version 2025-07: UK mobile 0.0700 -> 0.1200 (same id, new content).
    fixed = load_tariff(DEMO / "britline.toml")
    deck = (
        (DEMO / "britline-2025-07.csv")
        .read_text()
        .replace("447,mobile,UK mobile,day,0.0700", "447,mobile,UK mobile,day,0.1200")
    )
    v2 = fixed.versions[1]
    destinations = parse_rates_csv(deck, file="fix.csv", currency="GBP", bands=v2.calendar.bands)
    patched = TariffPlan("britline", (fixed.versions[0], type(v2)(
        carrier=v2.carrier, version=v2.version, valid_from=v2.valid_from, valid_to=v2.valid_to,
        currency=v2.currency, decimals=v2.decimals, rounding=v2.rounding,
        destinations=destinations, calendar=v2.calendar, band_rule=v2.band_rule,
    )))  # fmt: skip
    with write_transaction(store) as conn:
        report = import_tariff_plan(conn, tenant.tenant_id, patched, now=NOW)
    assert (report.replaced, report.earliest_change) == (("britline-2025-07",), v2.valid_from)

    since, until = datetime(2025, 7, 1, tzinfo=UTC), datetime(2025, 8, 1, tzinfo=UTC)
    zone = tenant.zone
    first = rerate(store, tenant.tenant_id, since=since, until=until, zone=zone, now=NOW)
    ids = [r.record_id for r in records]
    assert (first.examined, first.changed, first.unchanged, first.queued) == (5, 1, 4, 1)
    assert costs(store)[ids[2]] == (12, "britline-2025-07")  # 0.1200 x 61/60 = 0.122 -> 0.12
    assert cost_start_mismatches(store) == (4, [])  # the re-rated row keeps its call's start
    with store.connect() as conn:
        change = conn.execute(sa.select(call_cost_history)).one()
    assert (change.record_id, change.old_cost_minor, change.new_cost_minor) == (ids[2], 7, 12)
    assert change.old_explanation["tariff"]["version"] == "britline-2025-07"

    before = costs(store)
    again = rerate(store, tenant.tenant_id, since=since, until=until,
                   zone=zone, now=NOW + timedelta(hours=1))  # fmt: skip
    assert (again.changed, again.unchanged, history_count(store), costs(store)) == (0, 5, 1, before)
    assert queue(store)[ids[4]] == ("NO_PREFIX_MATCH", 3)  # ingest, then two re-rate attempts


def test_overlapping_versions_are_refused_and_nothing_is_written(store: sa.Engine) -> None:
    tenant = gen_tenant(store, "acme")
    configure(store, tenant.tenant_id)
    plan = load_tariff(DEMO / "britline.toml")
    early = plan.versions[0]
    clash = type(early)(
        carrier=early.carrier, version="clash", valid_from=early.valid_from + timedelta(days=1),
        valid_to=early.valid_from + timedelta(days=400), currency=early.currency,
        decimals=early.decimals, rounding=early.rounding, destinations=early.destinations,
        calendar=early.calendar,
    )  # fmt: skip
    with pytest.raises(StoreError, match="overlaps"), write_transaction(store) as conn:
        import_tariff_plan(conn, tenant.tenant_id, TariffPlan("britline", (clash,)), now=NOW)
    with store.connect() as conn:
        versions = conn.execute(sa.select(tariff_versions.c.version)).scalars().all()
    assert sorted(versions) == ["britline-2025-01", "britline-2025-07"]


def test_config_is_parsed_once_per_content(store: sa.Engine) -> None:
    tenant = gen_tenant(store, "acme")
    configure(store, tenant.tenant_id)
    with store.connect() as conn:
        first = load_rating_config(conn, tenant.tenant_id)
        second = load_rating_config(conn, tenant.tenant_id)
    assert first.tariffs["britline"].versions[0] is second.tariffs["britline"].versions[0]
    assert first.dial_plans[AGENT] is second.dial_plans[AGENT]
    assert first.fingerprint == second.fingerprint


# --- commands ---------------------------------------------------------------------------------


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)])


@pytest.fixture
def config_file(store: sa.Engine, tmp_path: Path) -> Path:
    path = tmp_path / "datacenter.toml"
    url = store.url.render_as_string(hide_password=False)
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n[store]\nurl = "{url}"\n')
    return path


def test_tariff_commands_import_list_export_and_rerate(
    store: sa.Engine, config_file: Path, tmp_path: Path
) -> None:
    tenant = gen_tenant(store, "acme", timezone="Europe/London")
    store_calls(store, tenant.tenant_id, london_calls())
    result = invoke(
        config_file, "tariff", "import", "--tenant", "acme", str(DEMO / "britline.toml")
    )
    assert result.exit_code == 0, result.output
    assert "2 version(s) added" in result.output
    result = invoke(config_file, "tariff", "set-site", "--tenant", "acme", "--agent", AGENT,
                    "--dial-plan", str(DEMO / "london.toml"),
                    "--carriers", str(DEMO / "london-routes.toml"))  # fmt: skip
    assert result.exit_code == 0, result.output
    result = invoke(config_file, "tariff", "list", "--tenant", "acme")
    assert [line.split("\t")[1] for line in result.output.splitlines()] == [
        "britline-2025-01", "britline-2025-07",
    ]  # fmt: skip
    result = invoke(config_file, "tariff", "export", "--tenant", "acme", "--carrier", "britline",
                    str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert load_tariff(tmp_path / "out" / "britline.toml").versions[1].version == "britline-2025-07"
    result = invoke(config_file, "rerate", "--tenant", "acme", "--since", "2025-07-01",
                    "--until", "2025-07-31", "--workers", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "5 call(s) examined" in result.output and "4 rated for the first time" in result.output
    result = invoke(config_file, "rerate", "--tenant", "acme", "--since", "2025-07-01",
                    "--until", "2025-07-31")  # fmt: skip
    assert "0 changed, 5 unchanged" in result.output


def test_tariff_import_reports_every_problem_and_writes_nothing(
    store: sa.Engine, config_file: Path, tmp_path: Path
) -> None:
    gen_tenant(store, "acme")
    (tmp_path / "bad.csv").write_text("prefix,destination,rate_per_minute\n33,France,0.1\n34,,x\n")
    (tmp_path / "plan.toml").write_text(
        'carrier = "x"\ncurrency = "EUR"\n[[version]]\nid = "a"\nvalid_from = "2025-01-01"\n'
        'rates = "bad.csv"\n'
    )
    result = invoke(
        config_file, "tariff", "import", "--tenant", "acme", str(tmp_path / "plan.toml")
    )
    assert result.exit_code == 3
    assert "bad.csv:3: column destination" in result.output
    assert "bad.csv:3: column rate_per_minute" in result.output
    with store.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(tariff_versions)).scalar_one() == 0
        )


def test_a_tariff_using_every_shape_round_trips_through_export_and_import(
    store: sa.Engine, config_file: Path, tmp_path: Path
) -> None:
    gen_tenant(store, "acme", timezone="Europe/London")
    plan_file = DEMO / "shapely.toml"
    result = invoke(config_file, "tariff", "import", "--tenant", "acme", str(plan_file))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    result = invoke(config_file, "tariff", "export", "--tenant", "acme", "--carrier", "shapely",
                    str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    exported = load_tariff(out / "shapely.toml")
    original = load_tariff(plan_file)

    def rows(plan: TariffPlan) -> list[tuple[object, ...]]:
        return [
            (d.direction, d.prefix, d.trunk, b, r.rate_per_minute, r.unpriced, r.shape,
             r.minimum_charge, r.max_cost)
            for d in plan.versions[0].destinations for b, r in sorted(d.rates.items())
        ]  # fmt: skip

    assert sorted(rows(exported), key=repr) == sorted(rows(original), key=repr)
    assert any(row[6] is not None for row in rows(exported))  # the shapes survived
    result = invoke(config_file, "tariff", "import", "--tenant", "acme", str(out / "shapely.toml"))
    assert result.exit_code == 0, result.output
    assert "1 unchanged" in result.output
