"""`datacenter token create|list|revoke`: a user's API tokens (the page is /account/tokens)."""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa

from datacenter.accounts.users import User, get_user_by_email
from datacenter.api_tokens import ApiToken, create_token, list_tokens, revoke_token
from datacenter.commands.options import config_option, in_transaction
from shared.errors import StoreError, ValidationError

user_option = click.option("--user", "email", required=True, help="The owner's email.")


@click.group("token")
def token_group() -> None:
    """Make, list and revoke API tokens; a token acts as its owner (docs/web.md)."""


def _tenant_user(conn: sa.Connection, email: str) -> User:
    user = get_user_by_email(conn, email.strip().lower())
    if user is None:
        raise StoreError(f"no user {email}: add one with `datacenter user add`")
    if user.role != "tenant":
        raise ValidationError("user", f"{email} is a {user.role}: API tokens read a tenant's data")
    return user


@token_group.command("create")
@user_option
@click.option("--name", required=True, help="What the token is for (shown in lists).")
@config_option
def token_create_command(email: str, name: str, config_path: Path | None) -> None:
    """Make a token and print it once (only its SHA-256 is stored).

    \b
    Example:
      datacenter token create --user it@acme.example --name "billing export"
    """

    def action(conn: sa.Connection) -> tuple[ApiToken, str]:
        return create_token(conn, _tenant_user(conn, email).user_id, name)

    token, secret = in_transaction(config_path, action)
    click.echo(f"token {token.token_id} for {email} (shown once, keep it safe):", err=True)
    click.echo(secret)


@token_group.command("list")
@user_option
@config_option
def token_list_command(email: str, config_path: Path | None) -> None:
    """List a user's tokens: id, name, first characters, made, last used (UTC), state."""

    def action(conn: sa.Connection) -> list[ApiToken]:
        return list_tokens(conn, _tenant_user(conn, email).user_id)

    for t in in_transaction(config_path, action):
        used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never"
        state = "active" if t.active else "revoked"
        made = t.created_at.isoformat(timespec="seconds")
        click.echo(f"{t.token_id}\t{t.name}\t{t.prefix}...\t{made}\t{used}\t{state}")


@token_group.command("revoke")
@user_option
@click.argument("token_id", type=int)
@config_option
def token_revoke_command(email: str, token_id: int, config_path: Path | None) -> None:
    """Revoke one of a user's tokens by its id (from `datacenter token list`)."""

    def action(conn: sa.Connection) -> bool:
        return revoke_token(conn, _tenant_user(conn, email).user_id, token_id)

    if not in_transaction(config_path, action):
        raise StoreError(f"{email} has no active token {token_id}: see `datacenter token list`")
    click.echo(f"revoked token {token_id}")
