"""`datacenter store stats`: rows, sizes, partitions and bloat per table, rows per tenant.

The figures come from ``datacenter.store.stats`` (exact on SQLite, catalogue estimates for large
tables on PostgreSQL, each marked); ``--json`` prints the same as one JSON document for scripts
and monitoring. A tenant that does not exist is a ``StoreError`` (8).
"""

from __future__ import annotations

from pathlib import Path

import click

from datacenter.accounts.tenants import require_tenant
from datacenter.commands.options import config_option, open_configured_store
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
