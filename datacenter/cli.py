"""`datacenter`: the data centre's command.

Every command lives in ``datacenter/commands/`` (one module per command or group) and is
registered here, one line each, imported when used (shared/lazy_group.py says why). Expected
failures (``CallCollectError``) print one sentence and exit with the error's code
(docs/operations.md), never a traceback.
"""

from __future__ import annotations

import click

from datacenter import __version__
from shared.lazy_group import LazyGroup

COMMANDS = {
    "serve": "datacenter.commands.serve:serve_command",
    "init": "datacenter.commands.init:init_command",
    "ingest": "datacenter.commands.ingest:ingest_command",
    "tenant": "datacenter.commands.tenant:tenant_group",
    "agent": "datacenter.commands.agent:agent_group",
    "user": "datacenter.commands.user:user_group",
    "rate": "datacenter.commands.rate:rate_command",
    "tariff": "datacenter.commands.tariff:tariff_group",
    "rerate": "datacenter.commands.rerate:rerate_command",
    "alarms": "datacenter.commands.alarms:alarms_group",
    "technician": "datacenter.commands.technician:technician_group",
    "keys": "datacenter.commands.keys:keys_group",
    "directory": "datacenter.commands.directory:directory_group",
    "token": "datacenter.commands.token:token_group",
    "rollups": "datacenter.commands.rollups:rollups_group",
    "jobs": "datacenter.commands.jobs:jobs_group",
    "store": "datacenter.commands.store:store_group",
    "reports": "datacenter.commands.reports:reports_group",
    "recordings": "datacenter.commands.recordings:recordings_group",
    "cost-alarms": "datacenter.commands.cost_alarms:cost_alarms_group",
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    install_hint="pip install 'callcollect[datacenter]'",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="datacenter")
def main() -> None:
    """callcollect data centre: ingests batches from edge agents, rates and stores calls, serves reports.

    Start with `datacenter init` to create the store, then `datacenter serve` and
    `datacenter ingest --watch` (systemd runs both in production).
    """
