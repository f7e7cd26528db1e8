"""`datacenter alarms run`: the polling-health alarm loop (``datacenter.health.runner``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from datacenter.commands.options import config_option, open_configured_store
from datacenter.health.runner import AlarmRunner, run_forever
from datacenter.reports.scheduler import ReportScheduler
from datacenter.signals import run_until_signalled


@click.group("alarms")
def alarms_group() -> None:
    """Polling-health alarms (email, webhook, the daily digest) and tenants' cost alarms."""


@alarms_group.command("run")
@config_option
@click.option("--once", is_flag=True, help="One pass, print what it did, then exit.")
def run_command(config_path: Path | None, once: bool) -> None:
    """Assess every site, raise and clear alarms, send notices and the daily digests.

    Every alarms.interval_seconds (default 60) it compares each site's polling-health state
    with the open alarms: a new problem raises an alarm and emails the tenant's technicians
    (and POSTs alarms.webhook_url), an open alarm nobody acknowledged is repeated every
    alarms.renotify_minutes, a site that is ok again clears its alarm. After digest.time
    each technician gets one digest a day. Then it evaluates the tenants' cost and fraud alarm
    rules on the calls ingested or re-rated since, and sends what is due (docs/cost-alarms.md).
    Each pass also sends the scheduled reports that are due (as `datacenter reports run-due`
    does).

    \b
    Example (systemd runs it like this):
      datacenter alarms run --config /etc/callcollect/datacenter.toml

    --once makes a single pass and prints a summary (cron, or a check after changing SMTP
    settings). Stops on SIGTERM or Ctrl-C after the current pass.
    """
    settings, engine = open_configured_store(config_path)
    try:
        runner = AlarmRunner(engine, settings)
        if once:
            report = runner.run_once(datetime.now(UTC))
            click.echo(report.summary())
            for failure in report.failures:
                click.echo(f"failed: {failure}", err=True)
            return
        run_until_signalled(
            lambda stop: run_forever(
                runner,
                interval=settings.alarms.interval_seconds,
                stop_event=stop,
                reports=ReportScheduler(engine, settings),
            )
        )
    finally:
        engine.dispose()
