"""`datacenter rollups`: rebuild the report rollups from the raw calls, or check them against them.

``rebuild`` replaces each tenant's rollup rows by the aggregate of its calls and costs, one
tenant per transaction (``datacenter.store.rollups.rebuild``); ``--check`` writes nothing and
exits with ``RollupMismatch`` (12) when any row differs, printing each difference.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import sqlalchemy as sa

from datacenter.accounts.tenants import Tenant, list_tenants, require_tenant
from datacenter.commands.options import config_option, open_configured_store
from datacenter.store.engine import write_transaction
from datacenter.store.rollups import RollupMismatch, differences, rebuild

SHOWN = 20  # differences printed per tenant


@click.group("rollups")
def rollups_group() -> None:
    """The report rollups (per tenant, local day and dimension): rebuild or check them."""


@rollups_group.command("rebuild")
@click.option("--tenant", "tenant_slug", default=None, help="Only this tenant (default: all).")
@click.option("--check", is_flag=True, help="Compare with the raw calls; change nothing.")
@config_option
def rebuild_command(tenant_slug: str | None, check: bool, config_path: Path | None) -> None:
    """Rebuild the report rollups from the raw calls and their costs, or --check them.

    Ingest and re-rating keep the rollups exact; rebuild after changing a tenant's time zone
    (rollup days are the tenant's local days) or if --check finds a difference. --check prints
    each difference and fails with the exit code docs/operations.md gives RollupMismatch.

    \b
    Examples:
      datacenter rollups rebuild --tenant acme
      datacenter rollups rebuild --check
    """
    _settings, engine = open_configured_store(config_path)
    try:
        with engine.connect() as conn:
            chosen = [require_tenant(conn, tenant_slug)] if tenant_slug else list_tenants(conn)
        failed = [t.slug for t in chosen if not _one(engine, t, check=check)]
    finally:
        engine.dispose()
    if failed:
        raise RollupMismatch(
            f"rollups differ from the raw calls for tenant(s) {', '.join(failed)}: run "
            "`datacenter rollups rebuild` for them"
        )


def _one(engine: sa.Engine, tenant: Tenant, *, check: bool) -> bool:
    """Rebuild or check one tenant; False when a check found differences."""
    began = time.monotonic()
    if check:
        with engine.connect() as conn:
            found = differences(conn, tenant.tenant_id, tenant.zone)
        for each in found[:SHOWN]:
            click.echo(f"{tenant.slug}: {each.describe()}")
        if len(found) > SHOWN:
            click.echo(f"{tenant.slug}: ... and {len(found) - SHOWN} more")
        click.echo(f"{tenant.slug}: {len(found)} difference(s) ({time.monotonic() - began:.1f} s)")
        return not found
    with write_transaction(engine) as conn:
        rows = rebuild(conn, tenant.tenant_id, tenant.zone)
    click.echo(f"{tenant.slug}: {rows} rollup row(s) written ({time.monotonic() - began:.1f} s)")
    return True
