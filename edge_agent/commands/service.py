"""`edge-agent check | run | status | flush`: the commands that drive the agent service."""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import click

from edge_agent import config as agent_config
from edge_agent.config import DEFAULT_CONFIG_PATH, AgentSettings
from edge_agent.delivery.enrollment import load_delivery
from edge_agent.delivery.uplink import check_key_files, connect
from edge_agent.health.status import read_health_file, render_health
from edge_agent.pipeline import REPORT_KEY, SourceReport
from edge_agent.rebuild import REBUILT_KEY
from edge_agent.service import LOCK_FILE, Service, holder_pid
from edge_agent.sources import registry
from edge_agent.sources.base import SourceContext
from edge_agent.spool import AGENT_STATE, SPOOL_FILE, BatchStatus, Spool, open_spool
from edge_agent.systemd_service import configure_logging
from shared.clock import utc_now

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_CONFIG_PATH,
    show_default=True,
    help="The agent's TOML configuration.",
)


# --- check -----------------------------------------------------------------------------------


@click.command("check")
@config_option
@click.option(
    "--connect",
    "try_connect",
    is_flag=True,
    help="Also log in to the data centre and list remote_dir.",
)
def check_command(config_path: Path, try_connect: bool) -> None:
    """Validate a configuration and the files it names, and print what it sets up.

    Exits 0 when the agent could start with it; otherwise prints the key and the fix and exits
    with the error's code (docs/operations.md, "Exit codes": 2 for a bad setting or key file;
    with --connect, 6 or 7 for the uplink). The private key must load, known_hosts must pin the
    data centre's host key, and every source's options must satisfy its driver. Nothing
    connects unless --connect is given.

    Example:

        edge-agent check -c /etc/callcollect/agent.toml --connect
    """
    settings = agent_config.load(config_path)
    check_key_files(settings.uplink)
    load_delivery(settings)  # the signing identity and the data centre's certificates load
    for source in settings.sources:
        ctx = SourceContext(settings.agent.id, source.id, settings.agent.timezone)
        registry.make_source(source.kind, ctx, source.options)
    click.echo(_summary(settings))
    if try_connect:
        with connect(settings.uplink) as session:
            names = session.list_remote_dir()
            receipts = session.list_receipts()
        click.echo(
            f"uplink: logged in to {settings.uplink.host}:{settings.uplink.port}; "
            f"{settings.uplink.remote_dir}/ holds {len(names)} files; "
            + (f"{settings.uplink.receipts_dir}/ holds {len(receipts)}" if receipts is not None
               else f"{settings.uplink.receipts_dir}/ is MISSING (no batch can be acknowledged)")
        )  # fmt: skip
    click.echo("configuration OK")


def _summary(settings: AgentSettings) -> str:
    a, s, u = settings.agent, settings.spool, settings.uplink
    lines = [
        f"agent:   {a.id} (tenant {a.tenant}), time zone {a.timezone.key}",
        f"state:   {a.state_dir}",
        f"spool:   quota {s.quota_mb} MB; batches of up to {s.batch_max_records} records or "
        f"{s.batch_max_age_seconds} s",
        f"uplink:  sftp://{u.username}@{u.host}:{u.port}/{u.remote_dir}/ "
        f"{u.schedule.describe()} (cycle {u.interval_seconds} s), key {u.private_key}"
        + (f", via {u.proxy.display}" if u.proxy else "")
        + (f", max {u.max_kbps} kbit/s" if u.max_kbps else ""),
        f"batches: protection {settings.delivery.protection}, acknowledged kept "
        f"{settings.delivery.retention_days} days",
        f"metrics: {settings.metrics.listen or 'off'}",
        f"sources: {len(settings.sources)}",
    ]
    for source in settings.sources:
        options = ", ".join(f"{k}={v!r}" for k, v in sorted(source.options.items()))
        lines.append(f"  - {source.id} ({source.kind}) {options}".rstrip())
    return "\n".join(lines)


# --- run -------------------------------------------------------------------------------------


@click.command("run")
@config_option
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def run_command(config_path: Path, log_level: str) -> None:
    """Run the agent: read every source, spool, seal and upload until stopped.

    systemd runs this on the appliance. SIGTERM or Ctrl-C stops it cleanly (sources stop,
    journals and spool are synced); SIGUSR1 seals and uploads at once. Logs go to the journal
    under systemd (Type=notify: READY=1 once sources run, WATCHDOG=1 every loop), else stderr.

    Example:

        edge-agent run -c /etc/callcollect/agent.toml
    """
    configure_logging(log_level)  # the journal under systemd, stderr otherwise
    service = Service(agent_config.load(config_path))

    def stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %d: stopping", signum)
        service.request_stop()

    def flush(signum: int, frame: FrameType | None) -> None:
        service.request_flush()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, flush)
    service.run()


# --- status ----------------------------------------------------------------------------------


@click.command("status")
@config_option
def status_command(config_path: Path) -> None:
    """Show each source's last outcome, the spool's contents and use, the batches, and health.

    The health table is the agent's last heartbeat (STATE/health.json, rewritten every cycle):
    per source the last poll, last success, last record, failures and reconnects; backlog,
    spool, disk, uplink failures and the clock offset to the landing host.

    Reads the spool only; safe while `edge-agent run` is running.

    Example:

        edge-agent status -c /etc/callcollect/agent.toml
    """
    settings = agent_config.load(config_path)
    state = settings.agent.state_dir
    pid = holder_pid(state / LOCK_FILE)
    click.echo(f"agent {settings.agent.id} (tenant {settings.agent.tenant}), state {state}")
    click.echo(f"running: {'yes, pid ' + str(pid) if pid else 'no'}")
    if not (state / SPOOL_FILE).exists():
        click.echo("spool: none yet (the agent has not run with this state directory)")
        return
    with open_spool(settings) as spool:
        click.echo(render_status(settings, spool))
        rebuilt = spool.get_state(AGENT_STATE, REBUILT_KEY)
        if rebuilt:
            click.echo(f"ALARM: {rebuilt}")
    heartbeat = read_health_file(state)  # what the running agent last sent as its heartbeat
    click.echo("")
    click.echo(render_health(heartbeat, now=utc_now()) if heartbeat else
               "health: no snapshot yet (`edge-agent run` writes one every cycle)")  # fmt: skip


def render_status(settings: AgentSettings, spool: Spool) -> str:
    usage = spool.usage()
    lines = [
        f"spool: {usage.used_bytes / 1e6:.1f} MB of {usage.quota_bytes / 1e6:.1f} MB "
        f"({usage.percent:.1f} %), {usage.level}"
        + (" (limited by free disk)" if usage.disk_limited else ""),
        "",
    ]
    header = ("SOURCE", "KIND", "LAST OUTCOME", "CURSOR", "SPOOLED", "UNBATCHED", "QUARANTINED",
              "LAST RECORD")  # fmt: skip
    rows = [header]
    for source in settings.sources:
        counts = spool.source_counts(source.id)
        text = spool.get_state(source.id, REPORT_KEY)
        outcome = _outcome(SourceReport.from_json(text)) if text else "never reported"
        rows.append((source.id, source.kind, outcome, str(counts.cursor), str(counts.spooled),
                     str(counts.unbatched), str(counts.quarantined), counts.last_record_at or "-"))  # fmt: skip
    lines.extend(_table(rows))
    batches = spool.batch_counts()
    lines.append("")
    lines.append("batches: " + ", ".join(f"{batches[status]} {status}" for status in BatchStatus))
    uploaded = spool.batches(status=BatchStatus.UPLOADED)
    if uploaded:
        lines.append(f"last uploaded: {uploaded[-1].file_name} at {uploaded[-1].uploaded}")
    return "\n".join(lines)


def _outcome(report: SourceReport) -> str:
    state = "ok" if report.ok else f"ERROR ({report.failures_in_a_row} in a row)"
    message = f": {report.message}" if report.message else ""
    return f"{state} at {report.at}{message}"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]  # fmt: skip


# --- flush -----------------------------------------------------------------------------------


@click.command("flush")
@config_option
def flush_command(config_path: Path) -> None:
    """Seal everything spooled into batches and upload them now; print what was sent.

    Parses any journalled units first (after a crash), so nothing waits for the batch age.
    While `edge-agent run` is running it refuses: send that process SIGUSR1 instead
    (`systemctl kill -s USR1 callcollect-agent`).

    Example:

        edge-agent flush -c /etc/callcollect/agent.toml
    """
    service = Service(agent_config.load(config_path))
    result = service.flush()
    for batch in result.sealed:
        click.echo(f"sealed   {batch.file_name} ({batch.record_count} records)")
    for outcome in result.uploaded:
        click.echo(f"uploaded {outcome.file_name} ({outcome.bytes} bytes, {outcome.status})")
    if result.error is not None:
        raise result.error
    if not result.uploaded:
        click.echo("nothing to upload")
