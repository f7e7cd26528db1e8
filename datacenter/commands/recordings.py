"""`datacenter recordings policy | permit | purge`: call recordings' retention and who may listen.

The feature modules are ``datacenter.recordings.access`` (policy, permissions) and
``datacenter.recordings.retention`` (purge); docs/capture.md explains both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
import sqlalchemy as sa

from datacenter.accounts import audit
from datacenter.accounts.tenants import require_tenant
from datacenter.accounts.users import get_user_by_email
from datacenter.commands.options import config_option, in_transaction, open_configured_store
from datacenter.recordings.access import RecordingPolicy, grant, policy_of, revoke, set_policy
from datacenter.recordings.retention import purge_expired
from datacenter.store.tables.recordings import PERMISSIONS
from shared.errors import ValidationError


@click.group("recordings")
def recordings_group() -> None:
    """Call recordings: a tenant's retention and technician access, users' permissions, purge."""


@recordings_group.command("policy")
@click.argument("tenant_slug")
@click.option("--retention-days", type=click.IntRange(1, 36_500), default=None,
              help="Delete audio this many days after the call.")  # fmt: skip
@click.option("--keep-forever", is_flag=True, help="Keep audio until deleted by hand.")
@click.option("--technicians/--no-technicians", default=None,
              help="Whether technicians assigned to the tenant may play its recordings.")  # fmt: skip
@config_option
def policy_command(
    tenant_slug: str,
    retention_days: int | None,
    keep_forever: bool,
    technicians: bool | None,
    config_path: Path | None,
) -> None:
    """Show or change a tenant's recording policy; every change is in its audit log.

    Without options it prints the policy. The next `datacenter recordings purge` (or the alarm
    loop, hourly) deletes audio older than the retention period.

    \b
    Examples:
      datacenter recordings policy acme --retention-days 90
      datacenter recordings policy acme --keep-forever --technicians
    """
    if retention_days is not None and keep_forever:
        raise click.BadParameter("give --retention-days or --keep-forever, not both")

    def action(conn: sa.Connection) -> RecordingPolicy:
        tenant = require_tenant(conn, tenant_slug)
        old = policy_of(conn, tenant.tenant_id)
        if retention_days is None and not keep_forever and technicians is None:
            return old
        new = RecordingPolicy(
            None if keep_forever else retention_days or old.retention_days,
            old.technicians_may_play if technicians is None else technicians,
        )
        set_policy(conn, tenant.tenant_id, new)
        audit.record(
            conn, "recording_policy_changed", at=datetime.now(UTC), tenant_id=tenant.tenant_id,
            actor="datacenter recordings policy", subject=tenant.slug,
            details={"retention_days": new.retention_days,
                     "technicians_may_play": new.technicians_may_play},
        )  # fmt: skip
        return new

    policy = in_transaction(config_path, action)
    kept = f"{policy.retention_days} days" if policy.retention_days else "for ever"
    allowed = "may" if policy.technicians_may_play else "may not"
    click.echo(f"{tenant_slug}: audio kept {kept}; technicians {allowed} play recordings")


@recordings_group.command("permit")
@click.argument("email")
@click.option("--permission", type=click.Choice(PERMISSIONS), default="recordings",
              show_default=True,
              help="recordings: play on the call page; recordings_download: download the WAV.")  # fmt: skip
@click.option("--revoke", "take_away", is_flag=True, help="Take the permission away instead.")
@config_option
def permit_command(email: str, permission: str, take_away: bool, config_path: Path | None) -> None:
    """Let a tenant user play (or download) the recordings of calls in their scope, or stop it.

    Tenant admins may always play and download; technicians only where the tenant's policy
    allows (`datacenter recordings policy TENANT --technicians`), and never download.

    \b
    Examples:
      datacenter recordings permit alice@acme.example
      datacenter recordings permit alice@acme.example --permission recordings_download
      datacenter recordings permit alice@acme.example --revoke
    """

    def action(conn: sa.Connection) -> bool:
        user = get_user_by_email(conn, email)
        if user is None:
            raise ValidationError("email", f"no user {email}: add it with `datacenter user add`")
        changed = revoke(conn, user, permission) if take_away else grant(conn, user, permission)
        if changed:
            audit.record(
                conn, "permission_changed", at=datetime.now(UTC), tenant_id=user.tenant_id,
                actor="datacenter recordings permit", subject=user.email,
                details={"permission": permission, "granted": not take_away},
            )  # fmt: skip
        return changed

    changed = in_transaction(config_path, action)
    verb = "no longer has" if take_away else "has"
    click.echo(f"{email} {verb} {permission}" + ("" if changed else " (unchanged)"))


@recordings_group.command("purge")
@config_option
def purge_command(config_path: Path | None) -> None:
    """Delete the audio of recordings older than their tenant's retention period.

    Each tenant's deletion is one `recordings_deleted` event in its audit log. The metadata
    stays, so the call page says the audio was deleted and when. Safe to run at any time; the
    alarm loop (`datacenter alarms run`) also runs it hourly.

    \b
    Example:
      datacenter recordings purge --config /etc/callcollect/datacenter.toml
    """
    settings, engine = open_configured_store(config_path)
    try:
        purged = purge_expired(engine, settings, now=datetime.now(UTC))
    finally:
        engine.dispose()
    for item in purged:
        click.echo(f"{item.tenant_slug}: deleted the audio of {item.recordings} recording(s) "
                   f"from before {item.cutoff:%Y-%m-%d %H:%M} UTC ({item.retention_days} days)")  # fmt: skip
    if not purged:
        click.echo("no recording past its retention period")
