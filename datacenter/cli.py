"""`datacenter`: the appliance's command.

Each command lives beside the code it drives and is registered here, one line each. Expected
failures (``CallCollectError``) print one sentence and exit with the error's code, never a
traceback.
"""

from __future__ import annotations

import click

from datacenter import __version__
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


# Registered commands (one line per command module):
