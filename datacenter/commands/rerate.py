"""`datacenter rerate`: re-rate a tenant's stored calls (``datacenter.rating.rerate``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import click

from datacenter.accounts.tenants import require_tenant
from datacenter.commands.options import config_option, open_configured_store
from datacenter.jobs.workers import JobsUnfinished
from datacenter.rating.rerate import count_calls
from datacenter.rating.rerate_jobs import rerate_with_workers
from datacenter.reports.periods import local_midnight


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
    table (old -> new). Days are the tenant's local days; each day is one store job (its own
    transaction) queued in the store, and --workers N processes take them in turn, helped by
    any `datacenter ingest --watch` or `datacenter jobs run` worker with nothing else to do. A
    failing day is retried (3 attempts) and then listed with its error; see `datacenter jobs
    list`.

    \b
    Example:
      datacenter rerate --tenant acme --since 2025-07-01 --until 2025-07-31
    """
    settings, engine = open_configured_store(config_path)
    try:
        with engine.connect() as conn:
            tenant = require_tenant(conn, tenant_slug)
        zone = tenant.zone
        last_day = until.date() if until is not None else datetime.now(zone).date()
        if last_day < since.date():
            raise click.BadParameter("is before --since", param_hint="--until")
        first, end = (
            local_midnight(since.date(), zone),
            local_midnight(last_day + timedelta(1), zone),
        )
        total = count_calls(engine, tenant.tenant_id, first, end)
        days = (last_day - since.date()).days + 1
        label = f"re-rating {total} call(s), {days} day job(s)"
        with click.progressbar(length=days, label=label, file=None) as bar:
            outcome = rerate_with_workers(
                settings.store.url, tenant.tenant_id, first_day=since.date(), last_day=last_day,
                workers=workers, timeout=settings.ingest.job_claim_timeout_seconds,
                progress=lambda done: bar.update(done - bar.pos),
            )  # fmt: skip
    finally:
        engine.dispose()
    click.echo(outcome.report.summary())
    if outcome.failed:
        for row in outcome.failed:
            click.echo(f"{row.day}: {row.status} after {row.attempts} attempt(s): {row.error}")
        raise JobsUnfinished(
            f"{len(outcome.failed)} day(s) not re-rated (listed above): fix the cause and run "
            "the same command again (days already done find their calls unchanged)"
        )
