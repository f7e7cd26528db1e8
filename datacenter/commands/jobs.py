"""`datacenter jobs`: the store jobs (re-rate and rollup days) any worker claims: list, run.

``list`` reads ``store_jobs`` (``datacenter.store.jobs.list_jobs``); ``run`` works through
every job queued or claimed when it starts, with N processes (``datacenter.jobs.workers``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from datacenter.accounts.tenants import list_tenants, require_tenant
from datacenter.commands.options import config_option, open_configured_store
from datacenter.jobs.workers import run_workers
from datacenter.store.jobs import JobRow, list_jobs, status_counts
from datacenter.store.tables.jobs import JOB_STATUSES


@click.group("jobs")
def jobs_group() -> None:
    """Store jobs: re-rate and rollup-rebuild days that any worker on any host claims."""


@jobs_group.command("list")
@click.option("--tenant", "tenant_slug", default=None, help="Only this tenant (default: all).")
@click.option("--status", "statuses", multiple=True, type=click.Choice(JOB_STATUSES),
              help="Only jobs with this status (repeat for several).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@config_option
def list_command(
    tenant_slug: str | None, statuses: tuple[str, ...], as_json: bool, config_path: Path | None
) -> None:
    """Each job with its status, attempts, claim, error; then the count per kind and status.

    A job is one tenant-local day of a re-rate (`datacenter rerate`) or of a rollup rebuild
    (`datacenter rollups rebuild`): queued, claimed (by WORKER = host:pid:id, since when),
    done, or failed after its attempts (its error is shown; run the command again once fixed).

    \b
    Examples:
      datacenter jobs list --status failed
      datacenter jobs list --tenant acme --json
    """
    _settings, engine = open_configured_store(config_path)
    try:
        with engine.connect() as conn:
            tenant_id = require_tenant(conn, tenant_slug).tenant_id if tenant_slug else None
            slugs = {t.tenant_id: t.slug for t in list_tenants(conn)}
        rows = list_jobs(engine, tenant_id=tenant_id, statuses=statuses)
        counts = status_counts(engine)
    finally:
        engine.dispose()
    if as_json:
        document = {
            "jobs": [_as_dict(row, slugs) for row in rows],
            "counts": [{"kind": k, "status": s, "jobs": n} for (k, s), n in sorted(counts.items())],
        }
        click.echo(json.dumps(document, indent=2))
        return
    for row in rows:
        claim = f"{row.claimed_by} at {row.claimed_at:%Y-%m-%d %H:%M:%S}" if row.claimed_at else "-"
        click.echo("\t".join([
            slugs.get(row.tenant_id, str(row.tenant_id)), row.kind, row.day.isoformat(),
            row.status, f"attempts={row.attempts}", claim, row.error or "",
        ]))  # fmt: skip
    summary = ", ".join(f"{kind} {status}: {n}" for (kind, status), n in sorted(counts.items()))
    click.echo(f"{len(rows)} job(s) listed; all jobs: {summary or 'none'}")


def _as_dict(row: JobRow, slugs: dict[int, str]) -> dict[str, object]:
    return {
        "tenant": slugs.get(row.tenant_id, str(row.tenant_id)), "kind": row.kind,
        "day": row.day.isoformat(), "status": row.status, "attempts": row.attempts,
        "claimed_by": row.claimed_by,
        "claimed_at": row.claimed_at.isoformat() if row.claimed_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "error": row.error, "result": row.result,
    }  # fmt: skip


@jobs_group.command("run")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes taking jobs at once.")  # fmt: skip
@config_option
def run_command(workers: int, config_path: Path | None) -> None:
    """Work through every job queued or claimed now, then exit.

    Jobs claimed by a worker that died are taken over once their claim is older than
    ingest.job_claim_timeout_seconds, so this waits for them that long at most.
    `datacenter ingest --watch` workers take jobs too when no file is waiting.

    \b
    Example:
      datacenter jobs run --workers 2
    """
    settings, engine = open_configured_store(config_path)
    try:
        rows = list_jobs(engine, statuses=("queued", "claimed"))
        keys = [(row.tenant_id, row.kind, row.day) for row in rows]
        if keys:
            run_workers(settings.store.url, keys, workers=workers,
                        timeout=settings.ingest.job_claim_timeout_seconds)  # fmt: skip
        done = list_jobs(engine, keys=keys)
    finally:
        engine.dispose()
    failed = [row for row in done if row.status == "failed"]
    click.echo(f"{len(keys)} job(s) run: {len(keys) - len(failed)} done, {len(failed)} failed")
    for row in failed:
        click.echo(f"tenant {row.tenant_id} {row.kind} {row.day}: failed: {row.error}")
