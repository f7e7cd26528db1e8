"""`datacenter user add|list`: web console users."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import sqlalchemy as sa

from datacenter.accounts.passwords import check_password_policy
from datacenter.accounts.tenants import list_tenants, require_tenant
from datacenter.accounts.users import User, create_user, list_users
from datacenter.commands.options import (
    config_option,
    in_transaction,
)
from datacenter.store.tables.metadata import ROLES


@click.group("user")
def user_group() -> None:
    """Add and list web console users."""


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
    """List users: email, role, tenant, last login (UTC), enabled or disabled."""

    def action(conn: sa.Connection) -> list[tuple[str, User]]:
        by_id = {t.tenant_id: t.slug for t in list_tenants(conn)}
        return [(by_id.get(u.tenant_id, "-") if u.tenant_id else "-", u) for u in list_users(conn)]

    for slug, user in in_transaction(config_path, action):
        login = user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never"
        state = "disabled" if user.disabled else "enabled"
        click.echo(f"{user.email}\t{user.role}\t{slug}\t{login}\t{state}")
