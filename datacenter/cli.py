"""`datacenter`: the appliance's command.

Each command lives in ``datacenter/commands/<group>.py`` and is registered here, one line each. Expected
failures (``CallCollectError``) print one sentence and exit with the error's code, never a
traceback.
"""

from __future__ import annotations

import click

from datacenter import __version__
from datacenter.commands.agent import agent_group
from datacenter.commands.alarms import alarms_group
from datacenter.commands.ingest import ingest_command
from datacenter.commands.init import init_command
from datacenter.commands.keys import keys_group
from datacenter.commands.rate import rate_command
from datacenter.commands.rerate import rerate_command
from datacenter.commands.serve import serve_command
from datacenter.commands.tariff import tariff_group
from datacenter.commands.technician import technician_group
from datacenter.commands.tenant import tenant_group
from datacenter.commands.user import user_group
from shared.cli_errors import FriendlyGroup


@click.group(
    cls=FriendlyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="datacenter")
def main() -> None:
    """callcollect data centre: ingests batches from edge agents, rates and stores calls, serves reports.

    Start with `datacenter init` to create the store, then `datacenter serve` and
    `datacenter ingest --watch` (systemd runs both in production).
    """


# Registered commands (one line per module of datacenter/commands/):
main.add_command(serve_command)
main.add_command(init_command)
main.add_command(ingest_command)
main.add_command(tenant_group)
main.add_command(agent_group)
main.add_command(user_group)
main.add_command(rate_command)
main.add_command(tariff_group)
main.add_command(rerate_command)
main.add_command(alarms_group)
main.add_command(technician_group)
main.add_command(keys_group)
