"""`datacenter tenant add|list`: the customers whose calls the data centre holds."""

from __future__ import annotations

from pathlib import Path

import click

from datacenter.accounts.tenants import create_tenant, list_tenants
from datacenter.commands.options import (
    config_option,
    in_transaction,
    load_configured_settings,
)
from datacenter.settings import LANDING_FOLDERS


@click.group("tenant")
def tenant_group() -> None:
    """Add and list tenants (customers whose calls the data centre holds)."""


@tenant_group.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="The customer's name, as reports show it.")
@click.option("--timezone", "timezone", default="UTC", show_default=True,
              help="IANA zone for the tenant's days and reports, e.g. Europe/London.")  # fmt: skip
@config_option
def tenant_add_command(slug: str, name: str, timezone: str, config_path: Path | None) -> None:
    """Add a tenant and create its landing folders.

    SLUG names the tenant's folder in the landing area (<landing.root>/SLUG/incoming/ and
    archive/, quarantine/, receipts/) and is what its agents put in their batch manifests.

    \b
    Example:
      datacenter tenant add acme --name "Acme Widgets Ltd" --timezone Europe/London
    """
    settings = load_configured_settings(config_path)
    tenant = in_transaction(config_path, lambda conn: create_tenant(conn, slug, name, timezone))
    try:
        for folder in LANDING_FOLDERS:
            settings.landing.tenant_dir(slug, folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(
            f"tenant {slug} added, but its landing folders could not be created under "
            f"{settings.landing.root}: {exc.strerror}; create them or fix landing.root"
        ) from exc
    click.echo(
        f"added tenant {tenant.slug} ({tenant.name}, {tenant.timezone}), id {tenant.tenant_id}"
    )


@tenant_group.command("list")
@config_option
def tenant_list_command(config_path: Path | None) -> None:
    """List tenants: slug, id, time zone, name."""
    for tenant in in_transaction(config_path, list_tenants):
        click.echo(f"{tenant.slug}\t{tenant.tenant_id}\t{tenant.timezone}\t{tenant.name}")
