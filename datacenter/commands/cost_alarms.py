"""`datacenter cost-alarms rules show|set|check`, `secret`, `list`, `run`: tenants' cost alarms.

The rules document is described in docs/cost-alarms.md; the same document is edited by tenant
admins on the portal's Cost alarm rules page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import click
import sqlalchemy as sa

from datacenter.accounts.tenants import Tenant, get_tenant
from datacenter.commands.options import config_option, in_transaction, open_configured_store
from datacenter.cost_alarms.rules import parse_rules
from datacenter.cost_alarms.runner import CostAlarmRunner
from datacenter.cost_alarms.store import (
    list_alarms,
    load_rules,
    rotate_webhook_secret,
    save_rules,
)
from datacenter.health.notify import Mailer

ACTOR = "datacenter cost-alarms"
tenant_option = click.option("--tenant", "slug", required=True, help="The tenant's slug.")


@click.group("cost-alarms")
def cost_alarms_group() -> None:
    """Tenants' cost and fraud alarm rules, their alarms, and one evaluation pass."""


@cost_alarms_group.group("rules")
def rules_group() -> None:
    """Show, check and set a tenant's rules document (TOML, docs/cost-alarms.md)."""


def _tenant(conn: sa.Connection, slug: str) -> Tenant:
    tenant = get_tenant(conn, slug)
    if tenant is None:
        raise click.BadParameter(
            f"no tenant {slug!r}: see `datacenter tenant list`", param_hint="--tenant"
        )
    return tenant


@rules_group.command("show")
@tenant_option
@config_option
def rules_show_command(slug: str, config_path: Path | None) -> None:
    """Print the tenant's rules document as stored (nothing when it has none)."""

    def show(conn: sa.Connection) -> str:
        stored = load_rules(conn, _tenant(conn, slug).tenant_id)
        return stored.document if stored else ""

    click.echo(in_transaction(config_path, show), nl=False)


@rules_group.command("check")
@click.argument("document", type=click.File("r", encoding="utf-8"))
def rules_check_command(document: TextIO) -> None:
    """Check a rules document without storing it; the error names the key and the fix.

    \b
    Example:
      datacenter cost-alarms rules check acme-rules.toml
    """
    rules = parse_rules(document.read())
    click.echo(f"ok: {len(rules.rules)} rule(s): {', '.join(r.rule_id for r in rules.rules)}")


@rules_group.command("set")
@tenant_option
@click.argument("document", type=click.File("r", encoding="utf-8"))
@config_option
def rules_set_command(slug: str, document: TextIO, config_path: Path | None) -> None:
    """Store a tenant's rules document (DOCUMENT, or - for standard input).

    The rules apply to calls ingested or rated from the first time a tenant's rules are set.
    A document that does not parse is refused whole, with the key that is wrong.

    \b
    Example:
      datacenter cost-alarms rules set --tenant acme acme-rules.toml
    """
    text = document.read()

    def store(conn: sa.Connection) -> int:
        tenant = _tenant(conn, slug)
        stored = save_rules(conn, tenant.tenant_id, text, actor=ACTOR, now=datetime.now(UTC))
        return len(stored.rules.rules)

    click.echo(f"saved {in_transaction(config_path, store)} rule(s) for {slug}")


@cost_alarms_group.command("secret")
@tenant_option
@click.option("--rotate", is_flag=True, help="Replace the secret with a new one first.")
@config_option
def secret_command(slug: str, rotate: bool, config_path: Path | None) -> None:
    """Print the tenant's webhook signing secret (give it to the receiver).

    Every webhook body is signed with it (HMAC-SHA256, docs/cost-alarms.md). --rotate makes
    a new one: the receiver must be given it before the next alarm."""

    def secret(conn: sa.Connection) -> str:
        tenant_id = _tenant(conn, slug).tenant_id
        stored = load_rules(conn, tenant_id)
        if stored is None:
            raise click.ClickException(
                f"tenant {slug} has no rules yet: `datacenter cost-alarms rules set` first"
            )
        return rotate_webhook_secret(conn, tenant_id) if rotate else stored.webhook_secret

    click.echo(in_transaction(config_path, secret))


@cost_alarms_group.command("list")
@tenant_option
@config_option
def list_command(slug: str, config_path: Path | None) -> None:
    """List the tenant's alarms, newest first: raised, rule, subject, period, calls, state."""

    def rows(conn: sa.Connection) -> list[str]:
        tenant = _tenant(conn, slug)
        return [
            f"{a.raised_at:%Y-%m-%d %H:%M}Z\t{a.rule_id}\t{a.subject or '-'}\t{a.period}\t"
            f"{a.calls}\t{'acknowledged by ' + (a.acknowledged_by or '') if a.acknowledged_at else 'open'}"
            for a in list_alarms(conn, tenant.tenant_id)
        ]

    for line in in_transaction(config_path, rows):
        click.echo(line)


@cost_alarms_group.command("run")
@config_option
def run_command(config_path: Path | None) -> None:
    """One pass: evaluate every tenant's new and re-rated calls, send what is due, exit.

    `datacenter alarms run` makes this pass after each polling-health pass; this command is
    for a check after changing rules, or cron."""
    settings, engine = open_configured_store(config_path)
    try:
        runner = CostAlarmRunner(
            engine,
            mailer=Mailer(settings.smtp),
            portal_url=settings.alarms.console_url,
            allow_private_webhooks=settings.alarms.tenant_webhooks_private,
        )
        report = runner.run_once(datetime.now(UTC))
    finally:
        engine.dispose()
    click.echo(report.summary())
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
