"""`edge-agent enroll | resend`: the appliance's credentials, and re-sending by date."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from edge_agent import config as agent_config
from edge_agent.commands.service import config_option
from edge_agent.delivery.batches import Batcher
from edge_agent.delivery.bundle_import import Imported, import_bundle
from edge_agent.delivery.enrollment import Enrolment, enroll, request_line
from edge_agent.delivery.key_rotation import prepare_next_key, switch_to_next_key
from edge_agent.delivery.retention import resend, resendable
from edge_agent.spool import Spool
from shared import keys
from shared.icdr import format_time

# --- enroll ----------------------------------------------------------------------------------


@click.command("enroll")
@config_option
@click.option("--import", "bundle_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Install the bundle `datacenter agent approve` wrote.")  # fmt: skip
@click.option(
    "--new-key",
    is_flag=True,
    help="Prepare a new signing key (kept unused) and print its certificate.",
)
@click.option(
    "--use-new-key",
    is_flag=True,
    help="Sign with the prepared key from now on (after `datacenter agent rotate`).",
)
def enroll_command(
    config_path: Path, bundle_path: Path | None, new_key: bool, use_new_key: bool
) -> None:
    """Create this appliance's keys (if missing) and print its enrolment request.

    Makes the SSH key of the SFTP login (uplink.private_key) and the batch-signing key and
    certificate (STATE/identity/), never replacing one that exists, so running it again is
    safe and just prints the same request. Send the data centre the one-line REQUEST printed
    last (public: a certificate and an SSH public key) and confirm its fingerprint with them by
    phone; they approve it with `datacenter agent approve` and send back a bundle, which
    `--import` installs (known_hosts, their certificates, the landing account).
    Private keys never leave the appliance.

    Example:
        edge-agent enroll -c /etc/callcollect/agent.toml
        edge-agent enroll -c /etc/callcollect/agent.toml --import acme-london-1.bundle
    """
    settings = agent_config.load(config_path)
    if new_key or use_new_key:
        click.echo(_rotate(settings, switch=use_new_key))
        return
    if bundle_path is not None:
        imported = import_bundle(settings, bundle_path.read_text(encoding="utf-8"))
        click.echo(render_import(imported))
        return
    enrolment = enroll(settings)
    click.echo(render_enrolment(enrolment, settings))
    click.echo("")
    click.echo(request_line(enrolment))


def _rotate(settings: agent_config.AgentSettings, *, switch: bool) -> str:
    agent, tenant = settings.agent.id, settings.agent.tenant
    if switch:
        previous, new = switch_to_next_key(settings)
        return (f"agent {agent} now signs with {new} (previous {previous}, kept in "
                "identity/previous/): restart the agent")  # fmt: skip
    prepared = prepare_next_key(settings)
    return "\n".join([
        f"{'created' if prepared.created else 'already prepared'}: new signing key of agent "
        f"{agent}, certificate {prepared.certificate_path}, fingerprint {prepared.fingerprint}:",
        prepared.certificate_pem.rstrip(),
        "The data centre pins it (the current key stays accepted for the overlap) with",
        f"   datacenter agent rotate --tenant {tenant} {agent} agent-new.crt",
        "then run `edge-agent enroll --use-new-key` here and restart the agent.",
    ])  # fmt: skip


def render_import(imported: Imported) -> str:
    b = imported.bundle
    return "\n".join([
        f"installed the landing of agent {b.agent_id} (tenant {b.tenant}): account {b.account}",
        f"   host key {b.host_key_fingerprint} pinned in {imported.known_hosts}",
        f"   data centre certificates in {imported.certificates}:",
        f"     envelope {imported.envelope_fingerprint}",
        f"     receipts {imported.receipts_fingerprint}",
        "Confirm these fingerprints with the data centre, and set in the agent's config:",
        *(f"   {line}" for line in imported.config_lines()),
    ])  # fmt: skip


def render_enrolment(e: Enrolment, settings: agent_config.AgentSettings) -> str:
    bundle = settings.delivery.datacentre_certificates
    lines = [f"Agent {e.agent_id} (tenant {e.tenant})", ""]
    lines += [f"created {path}" for path in e.created] or ["nothing created: every key exists"]
    lines += [
        "",
        "Send these to the data centre (both are public):",
        "",
        f"1. SSH public key for the SFTP account of tenant {e.tenant}:",
        f"   {e.ssh_public_key}",
        "",
        f"2. Batch-signing certificate of agent {e.agent_id} ({e.certificate_path}),",
        f"   fingerprint {e.certificate_fingerprint}:",
        e.certificate_pem.rstrip(),
        "",
        "   The data centre enrols it with",
        f"   `datacenter agent add --tenant {e.tenant} {e.agent_id} --certificate agent.crt`,",
        "   or, with its own landing account, approves the one-line request printed last",
        "   (`datacenter agent approve`) and sends back a bundle for `enroll --import`.",
        "",
        "From the data centre, install:",
        f"   - its SSH host key line in {settings.uplink.known_hosts} (uplink.known_hosts);",
        f"   - its certificate bundle at {bundle or 'a path named by delivery.datacentre_certificates'}.",
    ]  # fmt: skip
    if e.datacentre is not None:
        lines += [
            "",
            "Installed data centre certificates (confirm these fingerprints with them):",
            f"   envelope {keys.fingerprint(e.datacentre.envelope)}",
            f"   receipts {keys.fingerprint(e.datacentre.receipts)}",
        ]
    return "\n".join(lines)


# --- resend ----------------------------------------------------------------------------------


@click.command("resend")
@config_option
@click.option(
    "--since", required=True, help="First day (YYYY-MM-DD in agent.timezone) or ISO time."
)
@click.option("--until", "until_text", help="Last day, inclusive (default: up to now).")
@click.option("--dry-run", is_flag=True, help="List the batches; change nothing.")
def resend_command(config_path: Path, since: str, until_text: str | None, dry_run: bool) -> None:
    """Re-send the batches sealed in a date range, for a technician's request.

    Acknowledged batches and batches still awaiting a receipt (lost or quarantined in the
    landing area) go again under their own names with the same bytes; the data centre stores
    any call it does not hold and never one twice, then sends new receipts. Only batches still
    kept on the appliance can go (delivery.retention_days, default 30). Safe while the agent runs: it sends
    them in its next session (SIGUSR1 sends at once).

    Example:

        edge-agent resend -c /etc/callcollect/agent.toml --since 2026-03-01 --until 2026-03-03
    """
    settings = agent_config.load(config_path)
    zone = settings.agent.timezone
    start = parse_when(since, zone, option="--since")
    end = parse_when(until_text, zone, option="--until", end_of_day=True) if until_text else None
    if end is not None and end <= start:
        raise click.BadParameter("it is before --since", param_hint="--until")
    state = settings.agent.state_dir
    with Spool.open(state, quota_bytes=settings.spool.quota_bytes) as spool:
        if dry_run:
            batches = resendable(spool, since=start, until=end)
        else:
            batcher = Batcher(spool, state_dir=state, agent_id=settings.agent.id,
                              tenant=settings.agent.tenant)  # fmt: skip
            batches = resend(spool, batcher, since=start, until=end)
    span = f"{format_time(start)} to {format_time(end) if end else 'now'}"
    verb = "would re-send" if dry_run else "re-queued"
    for batch in batches:
        click.echo(
            f"{verb} {batch.file_name} ({batch.record_count} records, sealed {batch.created})"
        )
    if not batches:
        click.echo(f"no acknowledged batch kept on this appliance was sealed from {span}")
    elif not dry_run:
        click.echo(f"{len(batches)} batches re-queued ({span}); the agent sends them in its next "
                   "session (SIGUSR1 sends at once)")  # fmt: skip


def parse_when(text: str, zone: ZoneInfo, *, option: str, end_of_day: bool = False) -> datetime:
    """``YYYY-MM-DD`` is a whole day in the site's zone; an ISO time without zone is local."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        start = datetime.combine(day, time(0), tzinfo=zone)
        return start + timedelta(days=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not a date (2026-03-01) or a time (2026-03-01T14:00)", param_hint=option
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)
