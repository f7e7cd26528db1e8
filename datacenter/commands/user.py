"""`datacenter user add|list|unlock`: web console users."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import sqlalchemy as sa

from datacenter.accounts import audit
from datacenter.accounts.passwords import check_password_policy
from datacenter.accounts.tenants import list_tenants, require_tenant
from datacenter.accounts.throttle import unlock
from datacenter.accounts.users import User, create_user, get_user_by_email, list_users
from datacenter.commands.options import (
    config_option,
    in_transaction,
)
from datacenter.store.tables.metadata import ROLES
from shared.errors import ValidationError


@click.group("user")
def user_group() -> None:
    """Add, list and unlock web console users."""


@user_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="tenant: sees one tenant's calls (within a scope); tenant_admin: the whole "
              "tenant and its users; technician: the assigned tenants' polling health; "
              "admin: everything, including users.")  # fmt: skip
@click.option(
    "--tenant", "tenant_slug", default=None, help="Tenant slug (roles tenant and tenant_admin)."
)
@click.option("--name", "display_name", default="", help="Display name.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (for scripts).")  # fmt: skip
@config_option
def user_add_command(
    email: str,
    role: str,
    tenant_slug: str | None,
    display_name: str,
    password_stdin: bool,
    config_path: Path | None,
) -> None:
    """Add a web console user; prompts for the password unless --password-stdin.

    Passwords need at least 10 characters; they are stored only as argon2id hashes.

    \b
    Examples:
      datacenter user add ops@example.com --role admin
      echo "$PASSWORD" | datacenter user add it@acme.example --role tenant --tenant acme --password-stdin
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    check_password_policy(password, email=email, name=display_name)

    def action(conn: sa.Connection) -> User:
        tenant_id = require_tenant(conn, tenant_slug).tenant_id if tenant_slug else None
        return create_user(conn, email, password, role, tenant_id, display_name=display_name)

    user = in_transaction(config_path, action)
    scope = f" of tenant {tenant_slug}" if tenant_slug else ""
    click.echo(f"added {user.role} {user.email}{scope}, id {user.user_id}")


@user_group.command("list")
@config_option
def user_list_command(config_path: Path | None) -> None:
    """List users: email, role, tenant, last login (UTC), enabled, disabled or locked."""

    def action(conn: sa.Connection) -> list[tuple[str, User]]:
        by_id = {t.tenant_id: t.slug for t in list_tenants(conn)}
        return [(by_id.get(u.tenant_id, "-") if u.tenant_id else "-", u) for u in list_users(conn)]

    for slug, user in in_transaction(config_path, action):
        login = user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never"
        state = "disabled" if user.disabled else "locked" if user.locked_at else "enabled"
        click.echo(f"{user.email}\t{user.role}\t{slug}\t{login}\t{state}")


@user_group.command("unlock")
@click.argument("email")
@config_option
def user_unlock_command(email: str, config_path: Path | None) -> None:
    """Lift a sign-in lock-out (after too many wrong passwords); recorded in the audit log.

    Tenant admins, technicians and admins can also unlock in the browser; this is for the one
    who has no one left to ask.
    """

    def action(conn: sa.Connection) -> bool:
        user = get_user_by_email(conn, email)
        if user is None:
            raise ValidationError("email", f"no user {email!r}: `datacenter user list` shows them")
        lifted = unlock(conn, user.user_id)
        if lifted:
            audit.record(conn, "unlocked", at=datetime.now(UTC), tenant_id=user.tenant_id,
                         actor="datacenter user unlock", subject=user.email)  # fmt: skip
        return lifted

    lifted = in_transaction(config_path, action)
    click.echo(f"unlocked {email}" if lifted else f"{email} was not locked")
