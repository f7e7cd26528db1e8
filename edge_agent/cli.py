"""`edge-agent`: the appliance's command.

Every command lives in ``edge_agent/commands/`` (options and printing only; the work is in the
feature modules) and is registered here, one line each, imported when used. Expected failures
(``CallCollectError``) print one sentence and exit with the error's code, never a traceback.
"""

from __future__ import annotations

import click

from edge_agent import __version__
from shared.lazy_group import LazyGroup

# Registered commands, one line each, imported when used (shared/lazy_group.py says why):
COMMANDS = {
    "check": "edge_agent.commands.service:check_command",
    "run": "edge_agent.commands.service:run_command",
    "status": "edge_agent.commands.service:status_command",
    "flush": "edge_agent.commands.service:flush_command",
    "parse": "edge_agent.commands.parse:parse_command",
    "simulate": "edge_agent.commands.simulate:simulate_command",
    "test-source": "edge_agent.commands.test_source:test_source_command",
    "enroll": "edge_agent.commands.delivery:enroll_command",
    "resend": "edge_agent.commands.delivery:resend_command",
    "spool": "edge_agent.commands.spool:spool_group",
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    install_hint="pip install 'callcollect[agent]'",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="edge-agent")
def main() -> None:
    """callcollect edge agent: collects call records from PBXs and pushes them to the data centre.

    Start with `edge-agent check -c /etc/callcollect/agent.toml` to validate a configuration,
    then `edge-agent run -c ...` (systemd runs this on the appliance).
    """
