"""`edge-agent`: the appliance's command.

Every command lives in ``edge_agent/commands/`` (options and printing only; the work is in the
feature modules) and is registered here, one line each. Expected
failures (``CallCollectError``) print one sentence and exit with the error's code, never a
traceback.
"""

from __future__ import annotations

import importlib

import click

from edge_agent import __version__
from shared.cli_errors import FriendlyGroup

# Commands imported only when named (or listed by --help): `simulate` brings psycopg and the
# simulators, about 15 MB of RSS the running agent (`edge-agent run`) does not need.
LAZY_COMMANDS = {"simulate": "edge_agent.commands.simulate:simulate_command"}


class AgentGroup(FriendlyGroup):
    """The `edge-agent` group: ``FriendlyGroup`` plus the commands of ``LAZY_COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, _, name = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), name)
            assert isinstance(command, click.Command)
            self.add_command(command)
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=AgentGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="edge-agent")
def main() -> None:
    """callcollect edge agent: collects call records from PBXs and pushes them to the data centre.

    Start with `edge-agent check -c /etc/callcollect/agent.toml` to validate a configuration,
    then `edge-agent run -c ...` (systemd runs this on the appliance).
    """


# Registered commands (one line per command module):
from edge_agent.commands.parse import parse_command  # noqa: E402
from edge_agent.commands.service import check_command, flush_command, run_command, status_command  # noqa: E402
from edge_agent.commands.test_source import test_source_command  # noqa: E402

main.add_command(check_command)
main.add_command(run_command)
main.add_command(status_command)
main.add_command(flush_command)
main.add_command(parse_command)
main.add_command(test_source_command)
from edge_agent.commands.delivery import enroll_command, resend_command  # noqa: E402

main.add_command(enroll_command)
main.add_command(resend_command)
