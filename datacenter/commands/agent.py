"""`datacenter agent add|certificate|list`: enrol agents and pin their signing certificates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import sqlalchemy as sa
from cryptography import x509

from datacenter.accounts.agents import (
    Agent,
    enroll_agent,
    list_agents,
    rotate_agent_certificate,
    set_agent_certificate,
)
from datacenter.accounts.tenants import list_tenants, require_tenant
from datacenter.commands.options import (
    config_option,
    in_transaction,
    load_configured_settings,
    with_hint,
)
from datacenter.health.missing_batches import describe, missing_batches
from datacenter.landing.approve import ApproveOptions, approve
from datacenter.landing.users import AGENTS_GROUP, current_owner, owner_of
from shared.enrolment import LandingBundle, parse_request
from shared.errors import CallCollectError, ConfigError
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
    fingerprint, name, its own landing account (docs/landing.md). "-" means none.
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
            f"\t{agent.landing_account or '-'}"
        )


@agent_group.command("approve")
@click.argument("request_line", metavar="REQUEST")
@click.option("--landing-host", required=True, help="Host name the agents reach the landing at.")
@click.option("--landing-port", default=22, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host-key", "host_key_path", type=_certificate_file,
              default=Path("/etc/ssh/ssh_host_ed25519_key.pub"), show_default=True,
              help="The landing sshd's public host key.")  # fmt: skip
@click.option("--bundle", "bundle_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the bundle here (default: print it).")  # fmt: skip
@click.option(
    "--service-user",
    default=None,
    help="The user ingest runs as (owns incoming/ with the agent). Default: you.",
)
@click.option(
    "--group",
    default=AGENTS_GROUP,
    show_default=True,
    help="The group sshd's Match block names (callcollect-landing.conf).",
)
@click.option(
    "--no-system-user",
    is_flag=True,
    help="Make no system user: prepare the store and folders only (tests, non-root).",
)
@click.option("--name", default="", help="A label for technicians, e.g. the site.")
@config_option
def agent_approve_command(
    request_line: str,
    landing_host: str,
    landing_port: int,
    host_key_path: Path,
    bundle_path: Path | None,
    service_user: str | None,
    group: str,
    no_system_user: bool,
    name: str,
    config_path: Path | None,
) -> None:
    """Approve an agent's enrolment REQUEST: pin it, give it its own landing account.

    REQUEST is the line `edge-agent enroll` printed (quote it). Confirm its fingerprint with
    the site first. Run as root: it makes the system user `cc_...` in --group, the chroot
    <landing.root>/<account>/ and the key file sshd reads, then writes the bundle the
    appliance imports with `edge-agent enroll --import BUNDLE`.

    \b
    Example:
      datacenter agent approve "$(cat request.txt)" --landing-host landing.example.net \\
          --service-user callcollect --bundle acme-london-1.bundle
    """
    settings = load_configured_settings(config_path)
    request = parse_request(request_line)
    host_key = host_key_path.read_text(encoding="ascii")
    service = owner_of(service_user) if service_user else current_owner()

    def action(conn: sa.Connection) -> LandingBundle:
        options = ApproveOptions(
            landing_root=settings.landing.root, host=landing_host, port=landing_port,
            host_key=host_key,
            datacentre_certificates=_datacentre_certificates(settings.keys.certificates),
            service=service, system_users=not no_system_user, group=group, name=name,
        )  # fmt: skip
        return approve(conn, request, options)

    bundle = in_transaction(config_path, action)
    if bundle_path is None:
        click.echo(bundle.to_json(), nl=False)
    else:
        bundle_path.write_text(bundle.to_json(), encoding="utf-8")
        click.echo(f"bundle for {bundle.agent_id} written to {bundle_path}", err=True)
    click.echo(
        f"approved agent {bundle.agent_id} of tenant {bundle.tenant}: landing account "
        f"{bundle.account}, certificate {request.fingerprint}", err=True,
    )  # fmt: skip


def _datacentre_certificates(path: Path) -> str:
    if not path.exists():
        raise ConfigError(
            "keys.certificates", f"{path} does not exist", "run `datacenter keys init` first"
        )
    return path.read_text(encoding="ascii")


@agent_group.command("rotate")
@click.argument("agent_id")
@click.argument("certificate_path", metavar="FILE", type=_certificate_file)
@click.option("--tenant", "tenant_slug", required=True, help="Slug of the tenant the agent serves.")
@click.option("--overlap-days", default=7, show_default=True, type=click.IntRange(0, 365),
              help="How long the current certificate is still accepted.")  # fmt: skip
@config_option
def agent_rotate_command(
    agent_id: str, certificate_path: Path, tenant_slug: str, overlap_days: int,
    config_path: Path | None,
) -> None:  # fmt: skip
    """Pin the agent's new certificate; accept the current one too for --overlap-days.

    \b
    Example:
      datacenter agent rotate --tenant acme acme-london-1 agent-new.crt --overlap-days 7
    """
    certificate = _load_certificate(certificate_path)
    until = datetime.now(UTC) + timedelta(days=overlap_days)
    agent = in_transaction(
        config_path,
        lambda conn: rotate_agent_certificate(
            conn, tenant_slug, agent_id, certificate, overlap_until=until
        ),
    )
    click.echo(
        f"pinned certificate {agent.certificate_fingerprint} for agent {agent_id}; "
        f"{agent.previous_certificate_fingerprint} accepted until {until:%Y-%m-%d %H:%M} UTC"
    )
