"""`datacenter ingest`: one pass over the landing area, or --watch until stopped."""

from __future__ import annotations

from pathlib import Path

import click

from datacenter.commands.options import config_option, open_configured_store
from datacenter.ingest.worker import ingest_once, run_forever
from datacenter.signals import run_until_signalled


@click.command("ingest")
@config_option
@click.option(
    "--watch", is_flag=True, help="Keep scanning every ingest.poll_seconds until stopped."
)
@click.option("--once", is_flag=True, help="One pass, then exit (the default).")
def ingest_command(config_path: Path | None, watch: bool, once: bool) -> None:
    """Ingest landed batch files into the store.

    Scans <landing.root>/<tenant>/incoming/ for finished batch files, verifies each (decrypts
    it with the data centre's key, checks the agent's pinned signature), stores its calls once,
    writes a signed receipt to receipts/ for the agent, and moves it to archive/YYYY/MM/DD/ (or
    to quarantine/ with a .reason file). Needs the keys `datacenter init` makes.

    \b
    Example:
      datacenter ingest --config /etc/callcollect/datacenter.toml --watch

    --watch runs until SIGTERM or Ctrl-C (systemd runs it this way); any number of workers may
    run at once. Without it, one pass is made and a summary printed.
    """
    if watch and once:
        raise click.UsageError("choose --watch or --once, not both")
    settings, engine = open_configured_store(config_path)
    try:
        if not watch:
            report = ingest_once(engine, settings)
            click.echo(report.summary())
            for outcome in report.outcomes:
                if outcome.status == "quarantined":
                    click.echo(
                        f"quarantined {outcome.tenant}/{outcome.file_name}: {outcome.reason}"
                    )
            return
        run_until_signalled(lambda stop: run_forever(engine, settings, stop_event=stop))
    finally:
        engine.dispose()
