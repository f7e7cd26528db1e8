"""`edge-agent spool rebuild`: set a damaged spool aside and rebuild it from the journal."""

from __future__ import annotations

from pathlib import Path

import click

from edge_agent import config as agent_config
from edge_agent.commands.service import config_option
from edge_agent.rebuild import rebuild_spool
from edge_agent.service import AgentLock


@click.group("spool")
def spool_group() -> None:
    """The spool (STATE/spool.db): repair."""


@spool_group.command("rebuild")
@config_option
def rebuild_command(config_path: Path) -> None:
    """Set spool.db aside and rebuild it from the journal and the batch ledger.

    The old file is renamed spool.db.damaged-TIME (never deleted). Every journalled unit is
    parsed again (record ids are stable); batches come back under their own numbers from
    STATE/ledger/, so nothing already sent is sealed into a new batch. The agent does this by
    itself at start when SQLite says the spool is damaged; run it by hand when you suspect the
    file. The agent must be stopped (it refuses while `edge-agent run` holds the state).

    Example:

        edge-agent spool rebuild -c /etc/callcollect/agent.toml
    """
    settings = agent_config.load(config_path)
    lock = AgentLock(settings.agent.state_dir)
    lock.acquire()
    try:
        report = rebuild_spool(settings)
    finally:
        lock.release()
    for line in report.lines():
        click.echo(line)
