"""`datacenter rollups`: rebuild the report rollups from the raw calls, or check them against them.

``rebuild`` replaces each tenant's rollup rows by the aggregate of its calls and costs, one
(tenant, local day) store job per day (``datacenter.store.rollups.rebuild_day``, run by
``datacenter.jobs.workers``); ``--check`` writes nothing and exits with ``RollupMismatch`` (12)
when any row differs, printing each difference.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click
import sqlalchemy as sa

from datacenter.accounts.tenants import Tenant, list_tenants, require_tenant
from datacenter.commands.options import config_option, open_configured_store
from datacenter.jobs.workers import JobsUnfinished, run_workers
from datacenter.store.jobs import JobKey, list_jobs, queue_jobs
from datacenter.store.rollups import RollupMismatch, differences, rollup_days

SHOWN = 20  # differences printed per tenant


@click.group("rollups")
def rollups_group() -> None:
    """The report rollups (per tenant, local day and dimension): rebuild or check them."""


@rollups_group.command("rebuild")
@click.option("--tenant", "tenant_slug", default=None, help="Only this tenant (default: all).")
@click.option("--check", is_flag=True, help="Compare with the raw calls; change nothing.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes rebuilding days at once (one tenant-local day per job).")  # fmt: skip
@config_option
def rebuild_command(
    tenant_slug: str | None, check: bool, workers: int, config_path: Path | None
) -> None:
    """Rebuild the report rollups from the raw calls and their costs, or --check them.

    Ingest and re-rating keep the rollups exact; rebuild after changing a tenant's time zone
    (rollup days are the tenant's local days) or if --check finds a difference. --check prints
    each difference and fails with the exit code docs/operations.md gives RollupMismatch.

    A rebuild is queued in the store as one job per tenant-local day (each its own
    transaction) and run by --workers N processes, helped by any `datacenter ingest --watch`
    or `datacenter jobs run` worker with nothing else to do.

    \b
    Examples:
      datacenter rollups rebuild --tenant acme
      datacenter rollups rebuild --check
    """
    settings, engine = open_configured_store(config_path)
    try:
        with engine.connect() as conn:
            chosen = [require_tenant(conn, tenant_slug)] if tenant_slug else list_tenants(conn)
        if check:
            failed = [t.slug for t in chosen if not _check(engine, t)]
        else:
            _rebuild(engine, settings.store.url, chosen, workers=workers,
                     timeout=settings.ingest.job_claim_timeout_seconds)  # fmt: skip
            failed = []
    finally:
        engine.dispose()
    if failed:
        raise RollupMismatch(
            f"rollups differ from the raw calls for tenant(s) {', '.join(failed)}: run "
            "`datacenter rollups rebuild` for them"
        )


def _check(engine: sa.Engine, tenant: Tenant) -> bool:
    """Check one tenant; False when it found differences."""
    began = time.monotonic()
    with engine.connect() as conn:
        found = differences(conn, tenant.tenant_id, tenant.zone)
    for each in found[:SHOWN]:
        click.echo(f"{tenant.slug}: {each.describe()}")
    if len(found) > SHOWN:
        click.echo(f"{tenant.slug}: ... and {len(found) - SHOWN} more")
    click.echo(f"{tenant.slug}: {len(found)} difference(s) ({time.monotonic() - began:.1f} s)")
    return not found


def _rebuild(
    engine: sa.Engine, url: str, tenants: list[Tenant], *, workers: int, timeout: float
) -> None:
    """Queue every tenant's day jobs, run them, report rows written per tenant."""
    began = time.monotonic()
    now = datetime.now(UTC)
    keys: list[JobKey] = []
    for tenant in tenants:
        with engine.connect() as conn:
            days = rollup_days(conn, tenant.tenant_id, tenant.zone)
        keys.extend(queue_jobs(engine, tenant.tenant_id, "rollups", days, now=now))
    with click.progressbar(length=len(keys), label=f"rebuilding {len(keys)} day(s)",
                           file=None) as bar:  # fmt: skip
        run_workers(url, keys, workers=workers, timeout=timeout,
                    progress=lambda done: bar.update(done - bar.pos))  # fmt: skip
    rows = list_jobs(engine, keys=keys)
    seconds = time.monotonic() - began
    for tenant in tenants:
        mine = [row for row in rows if row.tenant_id == tenant.tenant_id]
        written = sum(
            int(row.result["rows"]) for row in mine if row.result and row.status == "done"
        )
        click.echo(f"{tenant.slug}: {written} rollup row(s) written, {len(mine)} day(s) "
                   f"({seconds:.1f} s in all)")  # fmt: skip
    failed = [row for row in rows if row.status != "done"]
    for row in failed:
        click.echo(f"tenant {row.tenant_id} {row.day}: {row.status} after {row.attempts} "
                   f"attempt(s): {row.error}")  # fmt: skip
    if failed:
        raise JobsUnfinished(
            f"{len(failed)} day(s) not rebuilt (listed above): fix the cause and run the same "
            "command again"
        )
