"""`datacenter store`: stats, monthly partitions and per-tenant retention.

``stats``: rows, sizes, partitions and bloat per table, rows per tenant. The figures come from
``datacenter.store.stats`` (exact on SQLite, catalogue estimates for large tables on PostgreSQL,
each marked); ``--json`` prints the same as one JSON document for scripts and monitoring. A
tenant that does not exist is a ``StoreError`` (8).

``partitions``: make months ahead, convert a store's DEFAULT partition into months, drop whole
months (``datacenter.store.partitions``; PostgreSQL only, a ``StoreError`` on SQLite).
``delete-calls``: one tenant's calls before a date, in batches (both backends).
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from datacenter.accounts.tenants import require_tenant
from datacenter.commands.options import config_option, open_configured_store
from datacenter.store import partitions
from datacenter.store.stats import StoreStats, TableStats, TenantStats, store_stats


@click.group("store")
def store_group() -> None:
    """Look at the store itself: how big it is, per table and per tenant."""


@store_group.command("stats")
@click.option("--tenant", "tenant_slug", default=None, help="Only this tenant (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@config_option
def stats_command(tenant_slug: str | None, as_json: bool, config_path: Path | None) -> None:
    """Rows, bytes, partitions and dead rows per table; rows and call span per tenant.

    On PostgreSQL large tables' rows are the planner's estimates (marked ~), never a scan;
    on SQLite every count is exact.

    \b
    Examples:
      datacenter store stats
      datacenter store stats --tenant acme --json
    """
    _settings, engine = open_configured_store(config_path)
    try:
        with engine.connect() as conn:
            if tenant_slug is not None:
                require_tenant(conn, tenant_slug)
            stats = store_stats(conn, tenant_slug=tenant_slug)
    finally:
        engine.dispose()
    if as_json:
        click.echo(stats.to_json().decode())
        return
    for line in _text(stats):
        click.echo(line)


def _text(stats: StoreStats) -> list[str]:
    size = _size(stats.database_bytes)
    lines = [f"store: {stats.backend}, {size}", "", _row("table", "rows", "size", "dead rows")]
    for table in stats.tables:
        lines.append(_table_line(table))
        for part in table.partitions:
            lines.append(_row(f"  {part.name}", f"~{part.rows:,}", _size(part.bytes), part.bounds))
    for tenant in stats.tenants:
        lines.extend(["", _tenant_header(tenant)])
        lines.extend(
            _row(f"  {each.table}", _count(each.rows, each.exact), "", "")
            for each in tenant.tables
            if each.rows
        )
    return lines


def _table_line(table: TableStats) -> str:
    dead = "" if table.dead_rows is None else f"{table.dead_rows:,}"
    return _row(table.name, _count(table.rows, table.exact), _size(table.bytes), dead)


def _tenant_header(tenant: TenantStats) -> str:
    if tenant.oldest_call is None or tenant.newest_call is None:
        span = "no calls"
    else:
        span = f"calls from {tenant.oldest_call:%Y-%m-%d %H:%M} to {tenant.newest_call:%Y-%m-%d %H:%M} UTC"
    return f"tenant {tenant.slug} (id {tenant.tenant_id}): {span}"


def _row(name: str, rows: str, size: str, last: str) -> str:
    return f"{name:<32} {rows:>14} {size:>10}  {last}".rstrip()


def _count(rows: int, exact: bool) -> str:
    return f"{rows:,}" if exact else f"~{rows:,}"


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GB"


def _month(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a month: write YYYY-MM, e.g. 2024-01") from None


@store_group.command("partitions")
@click.option(
    "--ahead",
    type=click.IntRange(min=0),
    default=None,
    help="Make this UTC month's and the next N months' partitions if missing.",
)
@click.option(
    "--convert",
    is_flag=True,
    help="Move the DEFAULT partition's calls into their months, one per transaction.",
)
@click.option(
    "--drop-before",
    "drop_before",
    callback=_month,
    metavar="YYYY-MM",
    help="Drop every whole month before this one (all four tables) and fix the rollups.",
)
@config_option
def partitions_command(
    ahead: int | None, convert: bool, drop_before: date | None, config_path: Path | None
) -> None:
    """The monthly partitions of calls and their costs (PostgreSQL; SQLite is not partitioned).

    Without an option, lists the months that have partitions and what DEFAULT holds. Ingest
    never makes partitions: the alarm loop (`datacenter alarms run`) keeps three months ahead,
    and a call of a month without one is stored in DEFAULT, shown by `datacenter store stats`.
    After `datacenter init` has converted an existing store, its calls are all in DEFAULT:
    `--convert` moves them month by month while ingest goes on. `--drop-before` is global
    retention: whole months are dropped, not deleted row by row; the calls' keys are kept, so
    a batch sent again later is still a duplicate.

    \b
    Examples:
      datacenter store partitions
      datacenter store partitions --ahead 3
      datacenter store partitions --convert
      datacenter store partitions --drop-before 2024-01
    """
    _settings, engine = open_configured_store(config_path)
    try:
        if ahead is not None:
            made = partitions.create_ahead(engine, ahead)
            click.echo(f"made {len(made)} partition(s)" + (f": {', '.join(made)}" if made else ""))
        if convert:
            _convert(engine)
        if drop_before is not None:
            dropped = partitions.drop_months_before(engine, drop_before)
            months = ", ".join(f"{m:%Y-%m}" for m in dropped.months) or "none"
            click.echo(
                f"dropped months: {months}; {dropped.default_rows:,} row(s) deleted from DEFAULT; "
                f"rollups rebuilt for {dropped.tenants_rebuilt} tenant(s) "
                f"in {dropped.seconds:.1f} s"
            )
        if ahead is None and not convert and drop_before is None:
            _list(engine)
    finally:
        engine.dispose()


def _convert(engine: Any) -> None:
    with ExitStack() as stack:
        bars: list[Any] = []

        def progress(step: partitions.MonthMoved) -> None:
            if not bars:
                bars.append(stack.enter_context(
                    click.progressbar(length=step.total, label="moving months", show_pos=True)
                ))  # fmt: skip
            bars[0].label = f"{step.month:%Y-%m}: {step.rows:,} rows"
            bars[0].update(1)

        result = partitions.convert(engine, progress)
    rate = result.rows / result.seconds if result.seconds else 0.0
    click.echo(
        f"moved {result.rows:,} row(s) in {len(result.months)} month(s) "
        f"in {result.seconds:.1f} s ({rate:,.0f} rows/s)"
    )


def _list(engine: Any) -> None:
    with engine.connect() as conn:
        partitions.require_partitioned(conn)
        months = partitions.attached_months(conn)
        waiting = partitions.default_rows(conn)
    if months:
        click.echo(f"months: {months[0]:%Y-%m} to {months[-1]:%Y-%m} ({len(months)} partitions)")
    else:
        click.echo("months: none yet (run --ahead 3)")
    click.echo(f"in DEFAULT: {waiting:,} call(s)" + (" (run --convert)" if waiting else ""))


@store_group.command("delete-calls")
@click.option("--tenant", "tenant_slug", required=True, help="The tenant whose calls go.")
@click.option(
    "--before",
    "before",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Delete the calls that started before this day (00:00 UTC).",
)
@config_option
def delete_calls_command(tenant_slug: str, before: datetime, config_path: Path | None) -> None:
    """Per-tenant retention: delete one tenant's calls (and their costs) before a day.

    Deletes in batches, one transaction each, so ingest goes on; then rebuilds the tenant's
    rollups of those days. Whole months of every tenant go faster with
    `datacenter store partitions --drop-before` (PostgreSQL).

    \b
    Example:
      datacenter store delete-calls --tenant acme --before 2024-01-01
    """
    _settings, engine = open_configured_store(config_path)
    try:
        with engine.connect() as conn:
            tenant = require_tenant(conn, tenant_slug)
        deleted = partitions.delete_calls_before(
            engine, tenant.tenant_id, before.replace(tzinfo=UTC)
        )
    finally:
        engine.dispose()
    click.echo(f"deleted {deleted:,} call(s) of {tenant_slug} before {before:%Y-%m-%d}")
