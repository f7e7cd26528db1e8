"""`datacenter reports run-due`: send the scheduled reports that are due (``reports.scheduler``).

`datacenter alarms run` does the same on every pass of its loop, so a data centre that runs the
alarm service needs nothing else; this command is the single pass for cron, a test of the SMTP
settings, or a catch-up by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from datacenter.commands.options import config_option, open_configured_store
from datacenter.reports.scheduler import ReportScheduler
from shared.errors import NotifyError


@click.group("reports")
def reports_group() -> None:
    """Saved and scheduled reports."""


@reports_group.command("run-due")
@config_option
def run_due_command(config_path: Path | None) -> None:
    """Send every scheduled report that is due, retry failed ones, and print what happened.

    Each due run is claimed in the store first (one row per schedule and due time), so several
    schedulers never send one twice; a run interrupted while talking to the SMTP server is
    marked interrupted rather than sent again (docs/reports.md, "Running"). Needs smtp.host;
    link delivery also needs alarms.console_url.

    \b
    Example:
      datacenter reports run-due --config /etc/callcollect/datacenter.toml

    Fails with NotifyError's exit code (docs/operations.md) when a run failed or will be
    retried; the reason of each is printed and shown on its schedule's page.
    """
    settings, engine = open_configured_store(config_path)
    try:
        report = ReportScheduler(engine, settings).run_due(datetime.now(UTC))
    finally:
        engine.dispose()
    click.echo(report.summary())
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
    if report.failures:
        raise NotifyError(f"{len(report.failures)} scheduled report(s) not delivered; see above")
