"""`datacenter agent add|certificate|list`: enrol agents and pin their signing certificates."""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa
from cryptography import x509

from datacenter.accounts.agents import Agent, enroll_agent, list_agents, set_agent_certificate
from datacenter.accounts.tenants import list_tenants, require_tenant
from datacenter.commands.options import (
    config_option,
    in_transaction,
    with_hint,
)
from datacenter.health.missing_batches import describe, missing_batches
from shared.errors import CallCollectError
from shared.keys import load_certificates


@click.group("agent")
def agent_group() -> None:
    """Enrol and list edge agents (which appliances may deliver batches for which tenant)."""


_certificate_file = click.Path(exists=True, dir_okay=False, path_type=Path)


@agent_group.command("add")
@click.argument("agent_id")
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the tenant the agent serves.")
@click.option("--certificate", "certificate_path", type=_certificate_file, default=None,
              help="The agent's batch-signing certificate (PEM), as `edge-agent enroll` "
              "printed it. Without it the agent can send only unprotected batches.")  # fmt: skip
@click.option("--name", default="", help="A label for technicians, e.g. the site.")
@config_option
def agent_add_command(
    agent_id: str,
    tenant_slug: str,
    certificate_path: Path | None,
    name: str,
    config_path: Path | None,
) -> None:
    """Enrol an agent for a tenant; until then its batch files are quarantined.

    The certificate is pinned: ingest accepts the agent's signed, encrypted batches only when
    they are signed by exactly this certificate. Confirm its fingerprint (printed below and by
    `edge-agent enroll` on the appliance) with the site by phone.

    \b
    Example:
      datacenter agent add --tenant acme acme-london-1 --certificate agent.crt --name "London office"
    """
    certificate = _load_certificate(certificate_path) if certificate_path else None
    agent = in_transaction(
        config_path,
        lambda conn: enroll_agent(conn, tenant_slug, agent_id, name=name, certificate=certificate),
    )
    click.echo(f"enrolled agent {agent.agent_id} for tenant {tenant_slug}")
    if agent.certificate_fingerprint:
        click.echo(f"pinned certificate {agent.certificate_fingerprint}")
    else:
        click.echo(
            "warning: no certificate pinned, so its signed batches are quarantined; pin it with "
            f"`datacenter agent certificate --tenant {tenant_slug} {agent_id} agent.crt`",
            err=True,
        )


@agent_group.command("certificate")
@click.argument("agent_id")
@click.argument("certificate_path", metavar="FILE", type=_certificate_file)
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the tenant the agent serves.")
@config_option
def agent_certificate_command(
    agent_id: str, certificate_path: Path, tenant_slug: str, config_path: Path | None
) -> None:
    """Pin a new batch-signing certificate for an enrolled agent.

    For a replaced appliance, a new key, or an agent enrolled without one. Batches signed with
    the previous certificate are quarantined from now on.

    \b
    Example:
      datacenter agent certificate --tenant acme acme-london-1 agent.crt
    """
    certificate = _load_certificate(certificate_path)
    agent = in_transaction(
        config_path,
        lambda conn: set_agent_certificate(conn, tenant_slug, agent_id, certificate),
    )
    click.echo(
        f"pinned certificate {agent.certificate_fingerprint} for agent {agent.agent_id} of "
        f"tenant {tenant_slug}"
    )


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        certificates = load_certificates(path)
    except CallCollectError as exc:
        raise with_hint(exc, ": pass the agent.crt that `edge-agent enroll` printed") from exc
    if len(certificates) != 1:
        raise click.ClickException(
            f"{path} holds {len(certificates)} certificates; pass the agent's own agent.crt, "
            "which holds one"
        )
    return certificates[0]


@agent_group.command("list")
@click.option("--tenant", "tenant_slug", default=None, help="Only this tenant's agents.")
@config_option
def agent_list_command(tenant_slug: str | None, config_path: Path | None) -> None:
    """List agents, tab-separated.

    Columns: tenant, agent id, last batch sequence stored, last seen (UTC), missing batch
    numbers (never landed or quarantined; ask the site to re-send them), the pinned certificate's
    fingerprint, name. "-" means none.
    """

    def action(conn: sa.Connection) -> list[tuple[str, Agent, str]]:
        by_id = {t.tenant_id: t.slug for t in list_tenants(conn)}
        tenant_id = require_tenant(conn, tenant_slug).tenant_id if tenant_slug else None
        return [
            (by_id[a.tenant_id], a, describe(missing_batches(conn, a.tenant_id, a.agent_id)))
            for a in list_agents(conn, tenant_id)
        ]

    for slug, agent, missing in in_transaction(config_path, action):
        seen = agent.last_seen_at.isoformat(timespec="seconds") if agent.last_seen_at else "never"
        sequence = "-" if agent.last_sequence is None else str(agent.last_sequence)
        pinned = agent.certificate_fingerprint or "-"
        click.echo(
            f"{slug}\t{agent.agent_id}\t{sequence}\t{seen}\t{missing}\t{pinned}\t{agent.name}"
        )
