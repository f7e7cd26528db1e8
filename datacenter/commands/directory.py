"""`datacenter directory import|sync|list`: a tenant's directory from CSV or LDAP."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa

from datacenter.accounts.tenants import require_tenant
from datacenter.commands.options import config_option, in_transaction, open_configured_store
from datacenter.directory.csv_import import CsvPreview, parse_directory_csv
from datacenter.directory.entries import (
    ApplyReport,
    DirectoryEntry,
    EntryFilter,
    apply_entries,
    list_entries,
)
from datacenter.directory.ldap_config import load_ldap_config
from datacenter.directory.sync import sync_forever, sync_once
from datacenter.signals import run_until_signalled
from datacenter.store.engine import write_transaction
from shared.errors import ValidationError

tenant_option = click.option("--tenant", "tenant_slug", required=True, help="Tenant slug.")


@click.group("directory")
def directory_group() -> None:
    """Import, sync and list a tenant's directory (extension -> person, department, site)."""


@directory_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@tenant_option
@click.option("--apply", "apply_", is_flag=True, help="Write it (default: preview only).")
@config_option
def directory_import_command(
    csv_file: Path, tenant_slug: str, apply_: bool, config_path: Path | None
) -> None:
    """Preview a directory CSV (errors by line), or with --apply write it.

    Columns: extension, person, email, department, cost_centre, site, valid_from, valid_to
    (docs/directory.md). Nothing is written while any line has an error.

    \b
    Examples:
      datacenter directory import staff.csv --tenant acme
      datacenter directory import staff.csv --tenant acme --apply
    """
    try:
        text = csv_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("csv", f"{csv_file} is not UTF-8 text: save it as CSV UTF-8") from exc

    def action(conn: sa.Connection) -> tuple[CsvPreview, ApplyReport | None]:
        tenant = require_tenant(conn, tenant_slug)
        preview = parse_directory_csv(text, ZoneInfo(tenant.timezone))
        problems = list(preview.problems)
        report = None
        if apply_ and preview.ok:
            report = apply_entries(conn, tenant.tenant_id, preview.entries, source="csv")
            problems += report.problems
        for problem in problems:
            click.echo(f"line {problem.line}: {problem.message}", err=True)
        if problems:  # raising rolls the transaction back: all or nothing
            raise ValidationError("csv", f"{csv_file}: fix the lines above; nothing was written")
        return preview, report

    preview, report = in_transaction(config_path, action)
    if report is None:
        click.echo(f"{len(preview.entries)} entries read, no errors; --apply writes them")
    else:
        click.echo(report.summary())


@directory_group.command("sync")
@tenant_option
@click.option("--source", "source_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The LDAP settings file (TOML, [ldap]; docs/directory.md).")  # fmt: skip
@click.option("--watch", is_flag=True, help="Sync again every ldap.interval_minutes until stopped.")
@config_option
def directory_sync_command(
    tenant_slug: str, source_path: Path, watch: bool, config_path: Path | None
) -> None:
    """Import the directory from LDAP / Active Directory (read-only bind, paged search).

    \b
    Examples:
      datacenter directory sync --tenant acme --source /etc/callcollect/acme-ldap.toml
      datacenter directory sync --tenant acme --source acme-ldap.toml --watch
    """
    _settings, engine = open_configured_store(config_path)
    try:
        ldap = load_ldap_config(source_path)
        with write_transaction(engine) as conn:
            tenant_id = require_tenant(conn, tenant_slug).tenant_id
        if watch:
            run_until_signalled(lambda stop: sync_forever(engine, tenant_id, ldap, stop_event=stop))
            return
        report = sync_once(engine, tenant_id, ldap)
        for problem in report.problems:
            click.echo(f"refused: {problem.message}", err=True)
        click.echo(report.summary())
    finally:
        engine.dispose()


@directory_group.command("list")
@tenant_option
@click.option("--search", default="", help="Part of an extension, name, email, department...")
@click.option("--current", is_flag=True, help="Only periods that have not ended.")
@config_option
def directory_list_command(
    tenant_slug: str, search: str, current: bool, config_path: Path | None
) -> None:
    """List entries: extension, person, department, cost centre, site, valid from/to (UTC)."""

    def action(conn: sa.Connection) -> list[DirectoryEntry]:
        tenant = require_tenant(conn, tenant_slug)
        return list_entries(conn, tenant.tenant_id, EntryFilter(text=search, current_only=current))

    entries = in_transaction(config_path, action)
    if not entries:
        click.echo(f"no directory entries of {tenant_slug} match", err=True)
    for e in entries:
        until = e.valid_to.isoformat(timespec="minutes") if e.valid_to else "-"
        click.echo("\t".join((e.extension, e.person, e.department, e.cost_centre, e.site,
                              e.valid_from.isoformat(timespec="minutes"), until, e.source)))  # fmt: skip
