"""`datacenter rerate`: re-rate a tenant's stored calls (``datacenter.rating.rerate``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import click

from datacenter.accounts.tenants import require_tenant
from datacenter.commands.options import config_option, open_configured_store
from datacenter.rating.rerate import count_calls, local_midnight
from datacenter.rating.rerate_jobs import rerate_with_workers


@click.command("rerate")
@click.option(
    "--tenant", "tenant_slug", required=True, help="Slug of the tenant whose calls to re-rate."
)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="First day (the tenant's local date), inclusive.")  # fmt: skip
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day, inclusive; default today.")  # fmt: skip
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes re-rating days at once (one tenant-local day per job).")  # fmt: skip
@config_option
def rerate_command(
    tenant_slug: str,
    since: datetime,
    until: datetime | None,
    workers: int,
    config_path: Path | None,
) -> None:
    """Re-rate a tenant's stored calls with the tariffs, dial plans and route maps now stored.

    Run it after fixing a tariff version or a dial plan. It is idempotent: calls whose cost
    does not change are left alone, and each changed call keeps its old cost in the history
    table (old -> new). Days are the tenant's local days; each day is one transaction, and
    with --workers N, N processes take days in turn. A day interrupted by the store going away
    (a failover) is tried again.

    \b
    Example:
      datacenter rerate --tenant acme --since 2025-07-01 --until 2025-07-31
    """
    settings, engine = open_configured_store(config_path)
    try:
        with engine.connect() as conn:
            tenant = require_tenant(conn, tenant_slug)
        zone = tenant.zone
        first = local_midnight(since.date(), zone)
        last_day = until.date() if until is not None else datetime.now(zone).date()
        if last_day < since.date():
            raise click.BadParameter("is before --since", param_hint="--until")
        end = local_midnight(last_day + timedelta(days=1), zone)
        total = count_calls(engine, tenant.tenant_id, first, end)
        with click.progressbar(length=total, label=f"re-rating {total} call(s)", file=None) as bar:
            report = rerate_with_workers(
                settings.store.url, tenant.tenant_id, since=first, until=end, zone=zone,
                workers=workers, progress=bar.update,
            )  # fmt: skip
    finally:
        engine.dispose()
    click.echo(report.summary())
