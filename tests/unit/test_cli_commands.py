"""`edge-agent`'s command list: every command is there, and the lazy ones load only when named."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from edge_agent.cli import main

COMMANDS = ["check", "enroll", "flush", "parse", "resend", "run", "simulate", "spool", "status",
            "test-source"]  # fmt: skip


def test_help_lists_every_command_in_order() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    rows = result.output.split("Commands:\n", 1)[1].splitlines()
    names = [row.split()[0] for row in rows if row.startswith("  ") and row[2] != " "]
    assert names == COMMANDS


def test_simulate_loads_when_named() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0, result.output
    assert "mivb-smdr" in result.output and "lync-cdr" in result.output


def test_the_running_agent_does_not_import_the_simulators() -> None:
    probe = "import sys, edge_agent.cli; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "psycopg" not in out.stdout and "'edge_agent'" in out.stdout
