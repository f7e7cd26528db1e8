"""`datacenter technician assign|unassign|list`: who looks after which tenant."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from datacenter.accounts.technicians import assign, digest_recipients, tenants_of, unassign
from datacenter.commands.options import config_option, open_configured_store
from datacenter.store.engine import write_transaction


@click.group("technician")
def technician_group() -> None:
    """Which tenants each technician looks after (console and alarm email)."""


@technician_group.command("assign")
@click.argument("email")
@click.argument("tenant_slug")
@config_option
def assign_command(email: str, tenant_slug: str, config_path: Path | None) -> None:
    """Let a technician look after a tenant: see its sites and receive its alarms.

    Example:

    \b
        datacenter technician assign tess@callcollect.example acme
    """
    _, engine = open_configured_store(config_path)
    try:
        with write_transaction(engine) as conn:
            added = assign(conn, email, tenant_slug, now=datetime.now(UTC))
    finally:
        engine.dispose()
    click.echo(f"{email} {'now looks' if added else 'already looked'} after {tenant_slug}")


@technician_group.command("unassign")
@click.argument("email")
@click.argument("tenant_slug")
@config_option
def unassign_command(email: str, tenant_slug: str, config_path: Path | None) -> None:
    """Stop a technician looking after a tenant.

    Example:

    \b
        datacenter technician unassign tess@callcollect.example acme
    """
    _, engine = open_configured_store(config_path)
    try:
        with write_transaction(engine) as conn:
            removed = unassign(conn, email, tenant_slug)
    finally:
        engine.dispose()
    click.echo(f"{email} {'no longer looks' if removed else 'did not look'} after {tenant_slug}")


@technician_group.command("list")
@config_option
def list_command(config_path: Path | None) -> None:
    """List technicians and admins with the tenants each looks after.

    Example:

    \b
        datacenter technician list
    """
    _, engine = open_configured_store(config_path)
    try:
        with engine.connect() as conn:
            for user in digest_recipients(conn):
                slugs = ", ".join(t.slug for t in tenants_of(conn, user)) or "(none)"
                scope = "all tenants" if user.role == "admin" else slugs
                click.echo(f"{user.email}\t{user.role}\t{scope}")
    finally:
        engine.dispose()
