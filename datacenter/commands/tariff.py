"""`datacenter tariff`: import, export and list tariff plans; set a site's dial plan and routes.

Editing a tariff is export -> edit the CSV/TOML -> import: the import validates everything
first (every problem with file, line and column) and writes nothing unless all of it is good.
After a change, queued (unrated) calls are retried at once; already rated calls are re-rated
with `datacenter rerate`, which the import suggests with the right date.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click
import sqlalchemy as sa

from datacenter.accounts.tenants import require_tenant
from datacenter.commands.options import config_option, open_configured_store
from datacenter.rating.carriers import load_carrier_rules
from datacenter.rating.numbering import load_dial_plan
from datacenter.rating.rerate import RerateReport, retry_unrated
from datacenter.rating.store import ImportReport, import_tariff_plan, load_rating_config, set_site
from datacenter.rating.tariffs import (
    TariffPlan,
    TariffVersion,
    load_tariff,
    plan_to_toml,
    rates_to_csv,
)
from datacenter.store.engine import write_transaction
from datacenter.store.tables.rating import TENANT_DEFAULT_SITE, tariff_versions
from shared.icdr import format_time

_T = TypeVar("_T")
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("tariff")
def tariff_group() -> None:
    """Tariff plans, dial plans and route maps in the store (see docs/rating.md)."""


@tariff_group.command("import")
@click.option(
    "--tenant", "tenant_slug", required=True, help="Slug of the tenant the tariff is for."
)
@click.argument("plan_file", type=_FILE)
@config_option
def import_command(tenant_slug: str, plan_file: Path, config_path: Path | None) -> None:
    """Import a tariff plan (TOML) and its CSV rate decks for a tenant.

    Versions with a new id are added, versions with a known id are replaced, stored versions
    the file does not mention are kept; overlapping validity is refused. Check the plan first
    with `datacenter rate`.

    \b
    Example:
      datacenter tariff import --tenant acme datacenter/rating/demo/britline.toml
    """
    plan = load_tariff(plan_file)  # TariffImportError: every problem, nothing written
    now = datetime.now(UTC)

    def action(conn: sa.Connection, tenant_id: int) -> ImportReport:
        return import_tariff_plan(conn, tenant_id, plan, now=now)

    report, retried = _write_then_retry(config_path, tenant_slug, action)
    click.echo(
        f"carrier {report.carrier}: {len(report.added)} version(s) added, "
        f"{len(report.replaced)} replaced, {len(report.unchanged)} unchanged"
    )
    if report.earliest_change is not None:
        click.echo(
            "calls already rated with the old prices keep them until re-rated: run "
            f"`datacenter rerate --tenant {tenant_slug} --since "
            f"{report.earliest_change.date().isoformat()}`"
        )
    _echo_retry(retried)


@tariff_group.command("set-site")
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the tenant.")
@click.option("--agent", "agent_id", default=TENANT_DEFAULT_SITE, show_default=True,
              help="The site's agent id; '*' sets the tenant-wide default.")  # fmt: skip
@click.option("--dial-plan", "dial_plan_file", type=_FILE, default=None, help="Dial plan (TOML).")
@click.option("--carriers", "carriers_file", type=_FILE, default=None, help="Route map (TOML).")
@config_option
def set_site_command(
    tenant_slug: str,
    agent_id: str,
    dial_plan_file: Path | None,
    carriers_file: Path | None,
    config_path: Path | None,
) -> None:
    """Store a site's dial plan and/or route map, then retry the unrated queue.

    \b
    Example:
      datacenter tariff set-site --tenant acme --agent edge-london \\
          --dial-plan london.toml --carriers london-routes.toml
    """
    if dial_plan_file is None and carriers_file is None:
        raise click.UsageError("give --dial-plan, --carriers or both")
    dial_plan = load_dial_plan(dial_plan_file) if dial_plan_file is not None else None
    carriers = load_carrier_rules(carriers_file) if carriers_file is not None else None
    now = datetime.now(UTC)

    def action(conn: sa.Connection, tenant_id: int) -> None:
        set_site(conn, tenant_id, agent_id, dial_plan=dial_plan, carriers=carriers, now=now)

    _result, retried = _write_then_retry(config_path, tenant_slug, action)
    click.echo(f"site {agent_id} of tenant {tenant_slug} updated")
    _echo_retry(retried)


@tariff_group.command("list")
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the tenant.")
@config_option
def list_command(tenant_slug: str, config_path: Path | None) -> None:
    """List a tenant's tariff versions: carrier, version, validity, currency, destinations."""
    _settings, engine = open_configured_store(config_path)
    try:
        with engine.connect() as conn:
            tenant = require_tenant(conn, tenant_slug)
            rows = conn.execute(
                sa.select(
                    tariff_versions.c.carrier, tariff_versions.c.version,
                    tariff_versions.c.valid_from, tariff_versions.c.valid_to,
                    tariff_versions.c.currency, tariff_versions.c.destinations,
                )
                .where(tariff_versions.c.tenant_id == tenant.tenant_id)
                .order_by(tariff_versions.c.carrier, tariff_versions.c.valid_from)
            ).all()  # fmt: skip
    finally:
        engine.dispose()
    if not rows:
        click.echo(
            f"tenant {tenant_slug} has no tariffs: import one with `datacenter tariff import`"
        )
    for row in rows:
        valid_to = "open" if row.valid_to is None else format_time(row.valid_to)
        click.echo(
            f"{row.carrier}\t{row.version}\t{format_time(row.valid_from)}\t{valid_to}\t"
            f"{row.currency}\t{row.destinations} destinations"
        )


@tariff_group.command("export")
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the tenant.")
@click.option("--carrier", required=True, help="The carrier whose plan to export.")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@config_option
def export_command(tenant_slug: str, carrier: str, out_dir: Path, config_path: Path | None) -> None:
    """Write a carrier's plan as CARRIER.toml plus one CSV per version into OUT_DIR.

    The files are in the import format: edit them and import them again.

    \b
    Example:
      datacenter tariff export --tenant acme --carrier britline ./britline-export
    """
    _settings, engine = open_configured_store(config_path)
    try:
        with engine.connect() as conn:
            tenant = require_tenant(conn, tenant_slug)
            plan = load_rating_config(conn, tenant.tenant_id).tariffs.get(carrier)
    finally:
        engine.dispose()
    if plan is None:
        raise click.ClickException(
            f"tenant {tenant_slug} has no tariff for carrier {carrier!r}: see `datacenter tariff list`"
        )
    written = _write_plan(plan, out_dir)
    click.echo(f"wrote {', '.join(str(p) for p in written)}")


def _write_plan(plan: TariffPlan, out_dir: Path) -> list[Path]:
    def csv_name(version: TariffVersion) -> str:
        return f"{plan.carrier}-{version.version}.csv"

    try:
        text = plan_to_toml(plan, rates_name=csv_name)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for version in plan.versions:
            path = out_dir / csv_name(version)
            path.write_text(rates_to_csv(version), encoding="utf-8")
            written.append(path)
        toml_path = out_dir / f"{plan.carrier}.toml"
        toml_path.write_text(text, encoding="utf-8")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write to {out_dir}: {exc.strerror}") from exc
    return [toml_path, *written]


def _write_then_retry(
    config_path: Path | None, tenant_slug: str, action: Callable[[sa.Connection, int], _T]
) -> tuple[_T, RerateReport]:
    """Run ``action`` in one write transaction, then retry the tenant's unrated queue."""
    _settings, engine = open_configured_store(config_path)
    try:
        with write_transaction(engine) as conn:
            tenant = require_tenant(conn, tenant_slug)
            result = action(conn, tenant.tenant_id)
        return result, retry_unrated(engine, tenant.tenant_id)
    finally:
        engine.dispose()


def _echo_retry(report: RerateReport) -> None:
    if report.examined:
        rated = report.examined - report.queued
        click.echo(
            f"unrated queue: {report.examined} retried, {rated} now rated, {report.queued} still queued"
        )
